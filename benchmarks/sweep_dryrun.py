"""`launch sweep --dry-run` of a 100-point grid (10 x 10 on tiny_ner), as a ratio to `launch --help`.

python benchmarks/sweep_dryrun.py [--repeat 5] [--cluster local|dev-slurm]

Every point is loaded, validated and planned (the fit check included) as a real sweep does before
it submits; nothing is created (a scratch $LAUNCH_HOME and runs root, removed at the end).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

LRS = ",".join(f"{i}e-5" for i in range(1, 11))
STEPS = ",".join(str(10 * i) for i in range(1, 11))


def median_seconds(args: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """Median (wall, CPU) seconds of `launch ARGS`; CPU (user + system) is what a loaded machine
    does not inflate."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "launcher.cli", *args], capture_output=True, env=env, check=True
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cluster", default="local")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "LAUNCH_HOME": f"{scratch}/home", "LAUNCH_RUNS": f"{scratch}/runs"}
        sweep = ["sweep", "tiny_ner", "--cluster", args.cluster, "--grid", f"train.lr={LRS}"]
        sweep += ["--grid", f"train.max_steps={STEPS}", "--dry-run"]
        help_s = median_seconds(["--help"], args.repeat, env)
        sweep_s = median_seconds(sweep, args.repeat, env)
    print(f"{'launch --help':38} wall {help_s[0] * 1000:7.1f} ms  CPU {help_s[1] * 1000:7.1f} ms")
    for label, (wall, cpu) in (("launch sweep --dry-run (100 points)", sweep_s),):
        ratio = f"  ({wall / help_s[0]:.1f}x --help wall, {cpu / help_s[1]:.1f}x CPU)"
        print(f"{label:38} wall {wall * 1000:7.1f} ms  CPU {cpu * 1000:7.1f} ms{ratio}")


if __name__ == "__main__":
    main()
