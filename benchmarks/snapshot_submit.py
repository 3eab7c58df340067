"""What code snapshots cost at submit: time against `--live-code`, the size of one snapshot, and the
time and disk a 100-point sweep spends on its snapshots. One run, one machine, ratios.

python benchmarks/snapshot_submit.py [--repeat 10] [--no-slurm]

Submits `launch recipe tiny_smoke -c local` from a copy of launcher/ and jobs/ (first on PYTHONPATH,
as a checkout would be), alternating four ways, and cancels each run at once:
  live        --live-code: no snapshot
  same code   the snapshot exists already (every submit after the first of unchanged code)
  one edit    a one-line edit before each submit: a new snapshot, unchanged files linked
  cold        a fresh runs root each time: every file copied
Then a 100-point `launch sweep` (on the dev Slurm cluster, held with --hold and cancelled; or, with
--no-slurm, a dry run on the local cluster, which plans but stores nothing), with and without
--live-code, and the snapshot calls themselves in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELD = "  extra: {hold: true}\n"


def _copy(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")
    for package in ("launcher", "jobs"):
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    return target


class World:
    def __init__(self, base: Path, code: Path) -> None:
        self.base, self.code = base, code
        pythonpath = os.pathsep.join(p for p in [str(code), os.environ.get("PYTHONPATH", "")] if p)
        self.env = {**os.environ, "LAUNCH_HOME": str(base / "home"), "LAUNCH_RUNS": str(base / "runs"),
                    "LAUNCH_GPU_TABLE": str(base / "gpus"), "WANDB_MODE": "disabled",
                    "PYTHONPATH": pythonpath}  # fmt: skip

    def launch(self, *args: str, runs: Path | None = None) -> tuple[float, str]:
        env = dict(self.env, LAUNCH_RUNS=str(runs)) if runs else self.env
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "launcher.cli", *args], env=env, cwd=self.base,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"launch {' '.join(args)} failed:\n{proc.stderr}")
        return took, proc.stdout


def _du(path: Path) -> int:
    """Bytes on disk under `path`, a hard-linked file counted once."""
    seen, total = set(), 0
    for p in path.rglob("*"):
        st = p.lstat()
        if p.is_file() and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def submits(world: World, repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"live": [], "same code": [], "one edit": [], "cold": []}
    recipe = ["recipe", "tiny_smoke", "-c", "local", "--set", "train.max_steps=100000"]
    world.launch(*recipe)  # the first snapshot of this code, so that `same code` finds it
    job = world.code / "jobs" / "smoke" / "job.py"
    for i in range(repeat):
        for way in times:
            runs = world.base / f"cold-{i}" if way == "cold" else None
            if way == "one edit":
                job.write_text(job.read_text() + f"# edit {i}\n")
            took, out = world.launch(*recipe, *(["--live-code"] if way == "live" else []), runs=runs)
            times[way].append(took)
            world.launch("cancel", out.split()[0], runs=runs)
    return times


def sweep(world: World, slurm: bool, live: bool) -> float:
    grid = ["--grid", "train.seed=" + ",".join(str(i) for i in range(100))]
    if not slurm:
        took, _ = world.launch("sweep", "tiny_smoke", "-c", "local", *grid, "--dry-run",
                               *(["--live-code"] if live else []))  # fmt: skip
        return took
    profile = world.base / "held.yaml"
    profile.write_text(
        (ROOT / "cluster" / "dev-slurm.yaml").read_text().replace("name: dev-slurm", "name: held") + HELD
    )
    before = set((world.base / "runs").glob("*/launch.json"))
    took, _ = world.launch(
        "sweep", "tiny_smoke", "-c", str(profile), *grid, *(["--live-code"] if live else [])
    )
    new = sorted(set((world.base / "runs").glob("*/launch.json")) - before)
    array = json.loads(new[0].read_text())["job_ids"][0].split("_")[0]
    subprocess.run(["scancel", array], check=False)  # held: nothing of it ran
    return took


def in_process(code: Path, runs: Path) -> tuple[float, float, float]:
    """(plan, store, 100 x plan+store of the same code) in seconds, in a fresh interpreter."""
    script = (
        "import sys, time; from pathlib import Path; from launcher.runs import snapshot\n"
        f"dirs = [Path({str(code / 'launcher')!r}), Path({str(code / 'jobs')!r})]\n"
        f"runs = Path({str(runs)!r})\n"
        "t = time.perf_counter(); p = snapshot.plan(dirs, runs); a = time.perf_counter() - t\n"
        "t = time.perf_counter(); snapshot.store(p); b = time.perf_counter() - t\n"
        "t = time.perf_counter()\n"
        "for _ in range(100): snapshot.store(snapshot.plan(dirs, runs))\n"
        "print(a, b, time.perf_counter() - t)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    a, b, c = (float(x) for x in out.stdout.split())
    return a, b, c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--no-slurm", action="store_true", help="a dry-run sweep on the local cluster instead"
    )
    args = parser.parse_args()
    slurm = not args.no_slurm and shutil.which("sbatch") is not None
    with tempfile.TemporaryDirectory(prefix="snapshot-bench-") as tmp:
        base = Path(tmp)
        world = World(base, _copy(base / "code"))
        times = submits(world, args.repeat)
        live = statistics.median(times["live"])
        print(f"submit `launch recipe tiny_smoke -c local`, median of {args.repeat} (alternating), one run:")
        for way, values in times.items():
            median = statistics.median(values)
            print(f"  {way:10} {median * 1000:7.0f} ms   {median / live:5.2f}x live")
        snaps = base / "runs" / ".snapshots"
        one = next(p for p in snaps.iterdir() if p.name != "objects")
        files = [p for p in one.rglob("*") if p.is_file() and p.name != "SNAPSHOT.json"]
        size = sum(p.stat().st_size for p in files)
        count = len([p for p in snaps.iterdir() if p.name != "objects"])
        print(f"one snapshot: {len(files)} files, {size / 1e6:.1f} MB "
              f"(jobs/data/files: {_du(one / 'jobs' / 'data' / 'files') / 1e6:.1f} MB of it)")  # fmt: skip
        print(f"{count} snapshots of one-line edits: {_du(snaps) / 1e6:.1f} MB on disk "
              f"(as copies: {count * size / 1e6:.1f} MB)")  # fmt: skip

        sweep_world = World(base / "sweep", world.code)
        sweep_world.base.mkdir()
        with_snap, without = sweep(sweep_world, slurm, False), sweep(sweep_world, slurm, True)
        where = "dev Slurm, held and cancelled" if slurm else "local, --dry-run"
        print(f"100-point sweep ({where}): {with_snap:.2f} s with the snapshot, {without:.2f} s with "
              f"--live-code ({with_snap / without:.2f}x)")  # fmt: skip
        if slurm:
            sweep_snaps = sweep_world.base / "runs" / ".snapshots"
            trees = [p for p in sweep_snaps.iterdir() if p.name != "objects"]
            print(f"  its snapshots: {len(trees)} tree, {_du(sweep_snaps) / 1e6:.1f} MB on disk "
                  f"(a copy per point: {100 * size / 1e6:.0f} MB)")  # fmt: skip
        plan_s, store_s, hundred = in_process(world.code, base / "inproc")
        print(f"in-process: plan (hash) {plan_s * 1000:.0f} ms, store (cold) {store_s * 1000:.0f} ms, "
              f"100 x plan+store of the same code {hundred * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
