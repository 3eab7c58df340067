"""Time from submit to the first training step on the dev Slurm cluster: one node with two CPU ranks
against two nodes with one rank each (same tiny_ner run, same global batch). One run, alternating,
so the machine's noise falls on both; prints the medians and their ratio.

python benchmarks/multinode_start.py [--repeat 3]

Needs the two-node dev cluster (`bash cluster/dev/slurm-up.sh`). The clock starts before `launch
recipe` is called and stops when the run's stdout log shows `step 1/`; each run is cancelled then.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "1 node x 2 ranks": ["resources.ranks_per_node=2"],
    "2 nodes x 1 rank": ["resources.nodes=2"],
}
COMMON = ["data.max_train_samples=64", "train.max_steps=50", "train.logging_steps=1",
          "resources.cpus_per_gpu=1", "tracking.wandb.mode=disabled"]  # fmt: skip


def _launch(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "launcher.cli", *args], env=env, capture_output=True,
                          text=True, cwd=Path(env["LAUNCH_RUNS"]).parent, check=True)  # fmt: skip
    return proc.stdout


def first_step(env: dict[str, str], settings: list[str], timeout: float = 300) -> float:
    """Seconds from submit to the run's `step 1/` line; the run is cancelled after."""
    started = time.monotonic()
    sets = [a for s in [*COMMON, *settings] for a in ("--set", s)]
    run_id = _launch(env, "recipe", "tiny_ner", "--cluster", "dev-slurm", *sets).split()[0]
    run_dir = Path(env["LAUNCH_RUNS"]) / run_id
    try:
        while time.monotonic() - started < timeout:
            job_ids = json.loads((run_dir / "launch.json").read_text()).get("job_ids") or []
            out = run_dir / "logs" / f"{job_ids[0]}.out" if job_ids else None
            if out is not None and out.exists() and "step 1/" in out.read_text(errors="replace"):
                return time.monotonic() - started
            time.sleep(0.2)
        raise SystemExit(f"{run_id}: no first step within {timeout:.0f} s")
    finally:
        _launch(env, "cancel", run_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "LAUNCH_HOME": f"{tmp}/home",
            "LAUNCH_RUNS": f"{tmp}/runs",
            "WANDB_MODE": "disabled",
        }
        times: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(args.repeat):
            for name, settings in CASES.items():
                times[name].append(first_step(env, settings))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name}:  median {medians[name]:.1f} s  ({', '.join(f'{x:.1f}' for x in t)})")
    one, two = medians.values()
    print(f"ratio {two / one:.2f} (two nodes / one node)")


if __name__ == "__main__":
    main()
