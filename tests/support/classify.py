"""What the classify tests share on every endpoint: running the job on the local backend and reading
its results back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.support.cli import Launch


def run_dir_of(output: str) -> Path:
    """The run directory of the run id `launch recipe` prints first (LAUNCH_RUNS: the launch fixture's)."""
    return Path(os.environ["LAUNCH_RUNS"]) / output.split()[0]


def run_job(
    launch: Launch, recipe: str, *args: str
) -> tuple[Path, dict[str, Any], list[dict[str, Any]], str]:
    """`launch recipe RECIPE --cluster local --follow ARGS`: (results dir, metrics, rows, job log)."""
    proc = launch("recipe", recipe, "--cluster", "local", "--follow", *args, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = run_dir_of(proc.stdout)
    log = "".join(p.read_text() for p in sorted((run_dir / "logs").glob("*")))
    results = next((run_dir / "results").glob("*/*/metrics.json")).parent
    rows = [json.loads(line) for line in (results / "predictions.jsonl").read_text().splitlines()]
    return results, json.loads((results / "metrics.json").read_text()), rows, log
