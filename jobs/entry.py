"""The start of every job: `python -m jobs.<kind> --run-dir DIR`, the recipe read and checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from launcher.config.checks import check_inputs
from launcher.config.recipe import Recipe, read_resolved
from launcher.errors import UserError
from launcher.runs import logtimes

BAD_INPUT = 2
REQUEUE_EXIT = 3
"""Stopped by SIGUSR2 after checkpointing: the backend requeues the job."""


def bad_input(err: Exception | str) -> int:
    """One line on stderr; the exit code of a job given input it cannot use."""
    print(f"error: {err}", file=sys.stderr)
    return BAD_INPUT


def start_log_times() -> None:
    """Index when each line of this job's stdout/stderr files was written (launcher/runs/logtimes.py),
    for `launch logs --merged`; a no-op where the files are not ours (Ray: its wrapper does it)."""
    logtimes.start_for_this_process()


def read_run(argv: list[str] | None, description: str) -> tuple[Recipe, Path] | None:
    """The run directory from `--run-dir` and its resolved recipe, with its local inputs checked;
    None (after one line on stderr) when the recipe does not validate or names missing files.
    Starts the log-time index first."""
    start_log_times()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--run-dir", type=Path, required=True)
    run_dir = parser.parse_args(argv).run_dir
    try:
        recipe = read_resolved(run_dir)
        check_inputs(recipe)
    except UserError as err:
        bad_input(err)
        return None
    return recipe, run_dir


def read_run_params(argv: list[str] | None, description: str) -> tuple[Recipe, Path, dict[str, Any]] | None:
    """`read_run` for a lab's own job kind (`job: my_lab.jobs.probe`): also its `params:` section,
    exactly as the recipe gives it ({} when it has none). A job module is then a few lines:

        found = read_run_params(argv, "probe the model")
        if found is None:
            return BAD_INPUT
        recipe, run_dir, params = found
    """
    found = read_run(argv, description)
    if found is None:
        return None
    recipe, run_dir = found
    return recipe, run_dir, dict(recipe.params or {})
