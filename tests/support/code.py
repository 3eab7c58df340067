"""A run's code fixed for tests that render scripts: a snapshot id and a working directory that
hold no machine paths (goldens), and a temporary copy of the code to submit from (snapshot tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from launcher.runs.code import Code, GitState
from launcher.runs.snapshot import Planned
from tests.support.cli import Launch
from tests.support.paths import ROOT

SNAPSHOT_ID = "0123456789abcdef"


def fixed_code(
    workdir: str = "/project", runs_root: str = "/runs", live: bool = False, git: GitState | None = None
) -> Code:
    """Code of snapshot SNAPSHOT_ID under `<runs_root>/.snapshots`, run in `workdir`, with no
    inherited PYTHONPATH (`live`: the packages under /src instead)."""
    packages = (Path("/src/launcher"), Path("/src/jobs"))
    planned = None if live else Planned(SNAPSHOT_ID, Path(runs_root) / ".snapshots", packages, ())
    return Code(Path(workdir), packages, planned, git)


CUDA_LINE = '    print(f"CUDA_VISIBLE_DEVICES='
FILE_LINE = '    print(f"job file {Path(__file__).resolve()}", flush=True)\n'
MARKER = "EDITED-CHECKOUT-MARKER"


def smoke_job(checkout: Path) -> Path:
    return checkout / "jobs" / "smoke" / "job.py"


def copy_checkout(target: Path) -> Path:
    """A copy of this repository's `launcher` and `jobs` packages under `target` (a "checkout" to
    submit from with PYTHONPATH=target), without caches. Its smoke job also prints the file it runs
    from (`job file <path>`)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")
    for package in ("launcher", "jobs"):
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    job = smoke_job(target)
    text = job.read_text()
    assert CUDA_LINE in text, "jobs/smoke/job.py changed: update tests/support/code.py"
    job.write_text(text.replace(CUDA_LINE, FILE_LINE + CUDA_LINE, 1))
    return target


def edit_checkout(checkout: Path) -> None:
    """The one-line edit: the checkout's smoke job prints MARKER."""
    job = smoke_job(checkout)
    job.write_text(job.read_text().replace(FILE_LINE, f'    print("{MARKER}", flush=True)\n' + FILE_LINE, 1))


def checkout_env(env: dict[str, str], checkout: Path) -> dict[str, str]:
    """`env` with the copy first on PYTHONPATH."""
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**env, "PYTHONPATH": os.pathsep.join([str(checkout), *rest])}


def copy_launcher(env: dict[str, str], cwd: Path, default_timeout: float) -> Launch:
    """`launch ARGS...` as the `launch` fixture runs it, importing the launcher and jobs of the copy
    that `env` (from `checkout_env`) names."""

    def run(
        *args: str, timeout: float = default_timeout, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "launcher.cli", *args], env=env, cwd=cwd,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"launch {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run
