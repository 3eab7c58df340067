"""Median wall time of `launch --help` and `launch recipes` (target: under 0.5 s each).

python benchmarks/cli_startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "launcher.cli", *args], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    repeat = parser.parse_args().repeat
    baseline = median_seconds_python(repeat)
    print(f"python -c pass       {baseline * 1000:7.1f} ms (interpreter start, for scale)")
    for args in (["--help"], ["recipes"]):
        t = median_seconds(args, repeat)
        verdict = "ok" if t < 0.5 else "TOO SLOW"
        print(f"launch {' '.join(args):13} {t * 1000:7.1f} ms  ({t / baseline:.1f}x bare python) {verdict}")


def median_seconds_python(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
