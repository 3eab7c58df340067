"""How long `plan()` takes: the median over repeated calls, for a plan that fits and for one that
does not (which also re-plans every candidate fix). Target: well under 100 ms.

    python benchmarks/plan_speed.py [--repeat 50]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.config.cluster import load_cluster  # noqa: E402
from launcher.config.recipe import load_recipe  # noqa: E402
from launcher.plan import plan  # noqa: E402

NO_ZERO = [
    "distributed.strategy=none",
    "distributed.zero_stage=0",
    "distributed.offload_optimizer=none",
    "distributed.offload_params=none",
    "resources.gpus_per_node=1",
]
CASES = [
    ("ds7b_fft", "a800", []),
    ("ds7b_fft (no ZeRO, 1 GPU: does not fit)", "a800", NO_ZERO),
    ("ds1.5b_eval", "2080ti", []),
    ("llama4_scout_qlora", "a800", []),
    ("ds7b_fft on 2080ti (does not fit)", "2080ti", [*NO_ZERO, "model.dtype=fp16"]),
]


def median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    importing = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import launcher.plan.planner"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stderr.strip().splitlines()[-1]  # fmt: skip
    print(f"import launcher.plan.planner (cumulative us): {importing.split('|')[1].strip()}")
    print(f"{'case':45s} {'median ms':>10s} {'fits':>5s} {'fixes':>5s}")
    for label, cluster, overrides in CASES:
        name = label.split()[0]
        recipe, profile = load_recipe(name, overrides), load_cluster(cluster)
        result = plan(recipe, profile)
        ms = median_ms(lambda r=recipe, p=profile: plan(r, p), args.repeat)
        print(f"{label:45s} {ms:10.2f} {result.fits!s:>5s} {len(result.fixes):5d}")


if __name__ == "__main__":
    main()
