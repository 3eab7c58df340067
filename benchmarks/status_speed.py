"""Median wall time of `launch status` over 1,000 registered runs, as a ratio to `launch --help`.

python benchmarks/status_speed.py [--repeat 7] [--runs 1000]

The registry is fabricated in a scratch $LAUNCH_HOME: training runs with results (old and new
layout) and progress files, eval runs under them, failed runs with a stderr log, a sweep's points,
and a few local runs that are really running (a live `sleep`), so `launch status` asks the local
backend about those and reads only small files for the rest.
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

from launcher.backends.procs import Proc, boot_id


def fabricate(root: Path, runs: int) -> tuple[dict[str, str], list[subprocess.Popen]]:
    """A registry of `runs` rows under `root`; returns the environment and the live processes."""
    env = {**os.environ, "LAUNCH_HOME": str(root / "home"), "LAUNCH_RUNS": str(root / "runs")}
    env["WANDB_MODE"] = "disabled"
    os.environ.update(LAUNCH_HOME=env["LAUNCH_HOME"], LAUNCH_RUNS=env["LAUNCH_RUNS"])
    from launcher.runs.registry import Registry

    registry = Registry()
    live: list[subprocess.Popen] = []
    made = 0

    def add(run_id: str, recipe: str, job: str, state: str, parent: str | None = None) -> Path:
        nonlocal made
        run_dir = root / "runs" / run_id
        (run_dir / "logs").mkdir(parents=True)
        info = {"run_id": run_id, "recipe": recipe, "wandb": {"offline_dir": str(run_dir / "wandb")}}
        (run_dir / "launch.json").write_text(json.dumps(info))
        cluster, backend, job_id = "dev-slurm", "slurm", str(10_000 + made)
        if state == "running":
            proc = subprocess.Popen(["sleep", "600"])
            live.append(proc)
            cluster, backend, job_id = "local", "local", str(Proc.of(proc.pid))
            local = Path(env["LAUNCH_HOME"], "local")
            local.mkdir(parents=True, exist_ok=True)
            (local / f"{job_id}.json").write_text(json.dumps({"run_dir": str(run_dir), "boot": boot_id()}))
            (run_dir / ".local_state.json").write_text(json.dumps({"state": "running"}))
        registry.add(run_id, recipe, cluster, backend, job, run_dir, [job_id], state=state, parent=parent)
        made += 1
        return run_dir

    def progress(run_dir: Path, step: int) -> None:
        data = {"step": step, "total_steps": 600, "epoch": step / 300, "loss": 1.5, "lr": 2e-5,
                "tokens_per_s": 410.0, "eta_s": 600 - step, "updated_at": "2026-12-01T00:00"}  # fmt: skip
        (run_dir / "progress.json").write_text(json.dumps(data))

    trainings = max(1, runs // 50)
    for t in range(trainings):
        train_id = f"tiny_ner-20261201-{t:04d}-abcd"
        run_dir = add(train_id, "tiny_ner", "train", "completed" if t % 7 else "failed")
        progress(run_dir, 600)
        if t % 7 == 0:
            (run_dir / "logs" / "0.err").write_text("Traceback (most recent call last):\nValueError: bad\n")
        for c, step in enumerate(range(100, 700, 100)):
            layout = f"results/checkpoint-{step}" + ("/tiny_ner_eval" if c % 2 else "")
            (run_dir / layout).mkdir(parents=True)
            metrics = {"strict": {"precision": 0.5, "recall": 0.5, "f1": 0.1 * c}, "step": step}
            (run_dir / layout / "metrics.json").write_text(json.dumps(metrics))
    sweep = "sweep-tiny_ner-20261201-0000-beef"
    for p in range(16):
        state = "running" if p < 2 else "completed"
        run_dir = add(f"tiny_ner-20261201-9{p:03d}-swp", "tiny_ner", "train", state, parent=sweep)
        progress(run_dir, 120)
    t = 0
    while made < runs:
        parent = f"tiny_ner-20261201-{t % trainings:04d}-abcd"
        state = "failed" if t % 31 == 0 else "completed"
        run_dir = add(f"tiny_ner_eval-20261201-{t:05d}-ef01", "tiny_ner_eval", "evaluate", state, parent)
        if state == "failed":
            (run_dir / "logs" / "0.err").write_text("RuntimeError: CUDA out of memory\n")
        t += 1
    registry.close()
    return env, live


def median_seconds(args: list[str], env: dict[str, str], repeat: int) -> float | None:
    """The median wall time, or None when the command fails (an option this version lacks)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "launcher.cli", *args], env=env, capture_output=True)
        if proc.returncode != 0:
            return None
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--runs", type=int, default=1000)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env, live = fabricate(Path(tmp), opts.runs)
        try:
            env["COLUMNS"] = "120"
            help_s = median_seconds(["--help"], env, opts.repeat)
            assert help_s is not None
            print(f"launch --help         {help_s * 1000:7.1f} ms")
            for args in (["status"], ["status", "--all"], ["status", "--json"]):
                t = median_seconds(args, env, opts.repeat)
                if t is None:
                    print(f"launch {' '.join(args):14} (fails in this version)")
                    continue
                print(f"launch {' '.join(args):14} {t * 1000:7.1f} ms  ({t / help_s:.1f}x --help)")
        finally:
            for proc in live:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
