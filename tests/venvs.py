"""Virtualenvs for tools whose pins clash with the project's (axolotl), built by the tests themselves.

A venv lives in `~/.cache/recipe-launcher/venvs/<name>-<hash of its install steps>`, is built once
per machine under a file lock (parallel test sessions wait for the first), and counts only once
its `READY` marker is written, so a build cut short is rebuilt. Torch is always the CPU wheel
`torch==2.13.0` from this machine's wheel directory, installed first and held by a constraint:
pip never resolves torch by itself (that would pull a multi-GB CUDA build).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

TORCH = "torch==2.13.0"


def venv_root() -> Path:
    return Path.home() / ".cache" / "recipe-launcher" / "venvs"


def cached_venv(name: str, steps: list[list[str]]) -> tuple[Path, float | None]:
    """(python of the venv, seconds its build took, None when it was already built).

    `steps` are `pip install` argument lists run in order after `pip install torch==2.13.0`; each
    runs with `-c` a constraints file pinning torch."""
    digest = hashlib.sha256(repr([TORCH, *steps]).encode()).hexdigest()[:12]
    root = venv_root() / f"{name}-{digest}"
    python = root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "READY").is_file():
            return python, None
        started = time.monotonic()
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
        constraints = root / "constraints.txt"
        constraints.write_text(TORCH + "\n")
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, TORCH], check=True)
        for step in steps:
            subprocess.run([*pip, "-c", str(constraints), *step], check=True)
        seconds = time.monotonic() - started
        (root / "READY").write_text(f"built in {seconds:.0f}s\n")
        return python, seconds
