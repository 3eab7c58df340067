"""Median wall time of `launch status` over 1,000 registered runs, as a ratio to `launch --help`.

python benchmarks/status_speed.py [--repeat 7] [--runs 1000]

Also the verbs that name runs, in that registry and in one that holds only their runs (`alone`):
`launch status RUN`, `launch bench RUN` over a run with 10,000 evaluated checkpoints, `launch
compare` of two runs; each should cost what its runs cost, not the registry. The first `--all` after
the registry was made reads every run's files (`--all (cold)`); later ones find the facts of ended
runs cached in the registry. The fabricated files are synced to disk and the cold `--all` is run
before `--help` is timed, so that neither the writeback nor a cold page cache lands on `--help`.

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
    big = add(BIG, "tiny_ner", "train", "completed")
    for step in range(1, CHECKPOINTS + 1):
        (big / "results" / f"checkpoint-{step}").mkdir(parents=True)
        metrics = {"strict": {"precision": 0.5, "recall": 0.5, "f1": step / CHECKPOINTS}, "step": step}
        (big / "results" / f"checkpoint-{step}" / "metrics.json").write_text(json.dumps(metrics))
    recipe = subprocess.run([sys.executable, "-m", "launcher.cli", "show", "tiny_ner"], env=env,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    for run_id in (BIG, FIRST):
        (root / "runs" / run_id / "recipe.yaml").write_text(recipe)
    registry.close()
    return env, live


BIG = "tiny_ner-20261201-bigr-abcd"
FIRST = "tiny_ner-20261201-0001-abcd"
CHECKPOINTS = 10_000


def alone(root: Path, env: dict[str, str]) -> dict[str, str]:
    """An environment whose registry holds only the runs the named verbs read (BIG, FIRST)."""
    from launcher.runs.registry import Registry

    home = root / "alone"
    source, registry = Registry(Path(env["LAUNCH_HOME"]) / "registry.db"), Registry(home / "registry.db")
    for run_id in (BIG, FIRST):
        r = source.get(run_id)
        assert r is not None
        registry.add(r.run_id, r.recipe, r.cluster, r.backend, r.job, Path(r.run_dir), r.job_ids, r.state)
    source.close()
    registry.close()
    return {**env, "LAUNCH_HOME": str(home)}


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
        start = time.perf_counter()
        env, live = fabricate(Path(tmp), opts.runs)
        print(f"(fabricated {opts.runs} runs in {time.perf_counter() - start:.0f} s)", flush=True)
        os.sync()  # the fabricated files written back now, not during the first timings
        try:
            env["COLUMNS"] = "120"
            cold_s = median_seconds(["status", "--all"], env, 1)  # first: it reads every run's files
            help_s = median_seconds(["--help"], env, opts.repeat)
            assert help_s is not None
            print(f"launch --help         {help_s * 1000:7.1f} ms", flush=True)

            def line(name: str, t: float | None) -> None:
                if t is None:
                    print(f"launch {name:14} (fails in this version)", flush=True)
                else:
                    print(f"launch {name:14} {t * 1000:7.1f} ms  ({t / help_s:.1f}x --help)", flush=True)

            line("status --all (cold)", cold_s)
            for args in (["status"], ["status", "--all"], ["status", "--json"]):
                line(" ".join(args), median_seconds(args, env, opts.repeat))
            out = ["--no-wandb", "--out", str(Path(tmp) / "bench")]
            named = {"status RUN": ["status", FIRST], "bench RUN": ["bench", BIG, *out],
                     "compare": ["compare", BIG, FIRST]}  # fmt: skip
            single = alone(Path(tmp), env)
            for name, args in named.items():  # once each: the 10,000 checkpoints cost minutes
                line(name, median_seconds(args, env, 1))
                line(f"{name} (alone)", median_seconds(args, single, 1))
        finally:
            for proc in live:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
