"""Sweeps and recorded overrides: grid expansion by hand, then `launch sweep` end to end on the
local backend and the dev Slurm cluster with tiny_smoke (a model-free job of a few steps)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from jobs.wandb_run import run_name
from launcher.config.grid import (
    expand,
    parse_grid,
    point_overrides,
    short_overrides,
    split_values,
    value_text,
)
from launcher.config.recipe import load_recipe
from launcher.errors import UserError
from tests.conftest import Launch, wait_for
from tests.test_slurm_cluster import require_slurm

FAST = "env={SMOKE_STEP_SECONDS: '0.05'}"
GRID = ["--grid", "train.lr=1e-5,2e-5", "--grid", "train.max_steps=2,3"]
POINTS = [
    {"train.lr": 1e-5, "train.max_steps": 2},
    {"train.lr": 1e-5, "train.max_steps": 3},
    {"train.lr": 2e-5, "train.max_steps": 2},
    {"train.lr": 2e-5, "train.max_steps": 3},
]


# ------------------------------------------------------------------ pure logic


def test_grid_values_are_read_as_yaml_and_split_outside_brackets() -> None:
    assert split_values('1,[2,3],"a,b", x') == ["1", "[2,3]", '"a,b"', "x"]
    grid = parse_grid(["train.lr=1e-5,5e-5", "train.packing=true,false", "eval.split=test", "x.y=[1,2],3"])
    assert grid == {
        "train.lr": [1e-5, 5e-5],
        "train.packing": [True, False],
        "eval.split": ["test"],
        "x.y": [[1, 2], 3],
    }


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["train.lr"], "--grid train.lr: expected KEY=V1,V2,..."),
        (["train.lr=1,2", "train.lr=3"], "--grid train.lr: given twice"),
        (["train.lr=,"], "--grid train.lr: no values"),
    ],
)
def test_bad_grid_options_are_user_errors(texts: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("[", r"\[")):
        parse_grid(texts)


def test_cartesian_grid_varies_the_first_key_slowest() -> None:
    grid = {"train.lr": [1e-5, 2e-5, 5e-5], "train.epochs": [3, 5]}
    assert expand(grid) == [
        {"train.lr": 1e-5, "train.epochs": 3},
        {"train.lr": 1e-5, "train.epochs": 5},
        {"train.lr": 2e-5, "train.epochs": 3},
        {"train.lr": 2e-5, "train.epochs": 5},
        {"train.lr": 5e-5, "train.epochs": 3},
        {"train.lr": 5e-5, "train.epochs": 5},
    ]


def test_zip_pairs_lists_and_refuses_unequal_lengths() -> None:
    grid = {"train.lr": [1e-5, 2e-5], "train.epochs": [3, 5]}
    assert expand(grid, zip_=True) == [
        {"train.lr": 1e-5, "train.epochs": 3},
        {"train.lr": 2e-5, "train.epochs": 5},
    ]
    with pytest.raises(UserError) as err:
        expand({"train.lr": [1e-5, 2e-5], "train.epochs": [3, 5, 7]}, zip_=True)
    assert str(err.value) == (
        "--zip: the grid lists must have one length to be paired: train.lr has 2, train.epochs has 3 values"
    )


def test_point_overrides_read_back_as_the_same_values() -> None:
    point = {
        "train.lr": 1e-5,
        "train.epochs": 3,
        "train.packing": False,
        "model.name_or_path": "a/b",
        "s": "3",
    }
    assert point_overrides(point) == [
        "train.lr=1e-05", "train.epochs=3", "train.packing=false", "model.name_or_path=a/b", 's="3"',
    ]  # fmt: skip
    assert value_text([1, 2]) == "[1, 2]" and value_text(None) == "null"
    assert parse_grid([f"k={value_text(v)}" for v in ("3", 1e-5, True)][:1]) == {"k": ["3"]}
    assert short_overrides(["train.lr=1e-05", "train.epochs=3"]) == "lr=1e-05,epochs=3"
    assert (
        short_overrides(["train.seed=1", "data.seed=2", "eval.shots=0"]) == "train.seed=1,data.seed=2,shots=0"
    )


def test_wandb_run_name_carries_the_overrides() -> None:
    info = {"run_id": "r-1", "overrides": ["train.max_steps=9", "train.lr=1e-05"]}
    assert run_name(info, Path("/x")) == "r-1 max_steps=9,lr=1e-05"
    point = {**info, "sweep_point": {"train.lr": 1e-05}}
    assert run_name(point, Path("/x")) == "r-1 lr=1e-05"
    assert run_name({}, Path("/runs/r-2")) == "r-2"


def test_wandb_gets_the_overrides_in_config_and_name_and_the_sweep_as_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs import wandb_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    overrides = ["tracking.wandb.mode=offline", "train.lr=1e-05"]
    recipe = load_recipe("tiny_smoke", overrides)
    info = {"run_id": "r-1", "overrides": overrides, "sweep": "sweep-s-1", "sweep_point": {"train.lr": 1e-05}}
    (tmp_path / "launch.json").write_text(json.dumps(info))
    run = wandb_run.start(recipe, tmp_path, "train")
    try:
        assert run.name == "r-1 lr=1e-05" and run.group == "sweep-s-1"
        assert run.config["overrides"] == overrides and run.config["sweep"] == "sweep-s-1"
        assert run.config["train"]["lr"] == 1e-05
    finally:
        run.finish()


def test_bench_rows_carry_the_overrides(tmp_path: Path) -> None:
    from launcher.scoring import bench

    run_dir = tmp_path / "tiny_ner-1"
    (run_dir / "results" / "checkpoint-10").mkdir(parents=True)
    (run_dir / "launch.json").write_text(json.dumps({"overrides": ["train.lr=1e-05", "train.epochs=3"]}))
    strict = {"precision": 0.5, "recall": 0.25, "f1": 1 / 3}
    metrics = {"strict": strict, "step": 10, "sentences": 20, "parse_failures": 0, "recipe": "tiny_ner_eval"}
    (run_dir / "results" / "checkpoint-10" / "metrics.json").write_text(json.dumps(metrics))
    (row,) = bench.run_rows(run_dir)
    assert row.overrides == "train.lr=1e-05 train.epochs=3" and "lr=1e-05,epochs=3" in row.notes
    bench.write_csv([row], tmp_path / "b.csv")
    header, line = (tmp_path / "b.csv").read_text().splitlines()
    assert header.endswith(",overrides") and line.endswith(",train.lr=1e-05 train.epochs=3")


def test_hash_before_overrides_and_sweep_section_never_resolved(tmp_path: Path) -> None:
    plain = load_recipe("tiny_smoke")
    changed = load_recipe("tiny_smoke", ["train.lr=1e-5"])
    assert changed.base_digest() == plain.digest() != changed.digest()
    assert changed.overrides == ["train.lr=1e-5"]
    text = Path("recipes/tiny_smoke.yaml").read_text()
    (tmp_path / "plain.yaml").write_text(text)
    (tmp_path / "swept.yaml").write_text(text + "sweep: {grid: {train.lr: [1e-5, 2e-5]}, max_parallel: 2}\n")
    swept = load_recipe(str(tmp_path / "swept.yaml"))
    assert swept.sweep is not None and swept.sweep.grid == {"train.lr": [1e-5, 2e-5]}
    assert swept.sweep.max_parallel == 2 and swept.sweep.zip is False
    assert "sweep" not in swept.to_yaml()
    assert swept.digest() == load_recipe(str(tmp_path / "plain.yaml")).digest()


# ------------------------------------------------------------------ the CLI, local backend


def _rows(tmp_path: Path, table: str = "runs") -> list[tuple]:
    db = tmp_path / "home" / "registry.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()


def _sweep(launch: Launch, *args: str, cluster: str = "local", timeout: float = 120) -> tuple[str, list[str]]:
    proc = launch("sweep", "tiny_smoke", "--cluster", cluster, *args, check=True, timeout=timeout)
    sweep_id = proc.stdout.split()[0]
    runs = [line.split()[0] for line in proc.stderr.splitlines() if line.startswith("  tiny_smoke-")]
    return sweep_id, runs


def _info(tmp_path: Path, run_id: str) -> dict:
    return json.loads((tmp_path / "runs" / run_id / "launch.json").read_text())


def _states(launch: Launch, sweep_id: str) -> dict[str, str]:
    out = launch("status", sweep_id, check=True).stdout
    return {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in out.splitlines()
        if "│ tiny_smoke-" in line
    }


def test_local_sweep_runs_every_point_with_its_overrides_two_at_once(launch: Launch, tmp_path: Path) -> None:
    sweep_id, runs = _sweep(launch, *GRID, "--set", FAST, "--max-parallel", "2")
    assert sweep_id.startswith("sweep-tiny_smoke-") and len(runs) == 4
    wait_for(lambda: set(_states(launch, sweep_id).values()) == {"completed"}, timeout=90, every=1)
    for run_id, point in zip(runs, POINTS, strict=True):
        info = _info(tmp_path, run_id)
        assert info["sweep"] == sweep_id and info["parent"] == sweep_id and info["sweep_point"] == point
        assert info["overrides"] == [
            FAST,
            f"train.lr={point['train.lr']!r}",
            f"train.max_steps={point['train.max_steps']}",
        ]
        assert info["recipe_hash_base"] == load_recipe("tiny_smoke").digest() != info["recipe_hash"]
        steps = point["train.max_steps"]
        assert f"max_steps: {steps}" in (tmp_path / "runs" / run_id / "recipe.yaml").read_text()
        assert (tmp_path / "runs" / run_id / "checkpoints" / f"checkpoint-{steps}" / "COMPLETE").exists()
    # never more than 2 of the 4 ran at once: the supervisors' recorded start and end times
    spans = [json.loads((tmp_path / "runs" / r / ".local_state.json").read_text()) for r in runs]
    for s in spans:
        overlapping = sum(o["started"] < s["started"] < o["ended"] for o in spans if o is not s)
        assert overlapping <= 1
    table = launch("status", sweep_id[:-2], check=True).stdout
    assert "4 points: 4 completed" in table
    assert "train.lr" in table and "train.max_steps" in table and "2e-05" in table
    assert _rows(tmp_path, "sweeps")[0][:4] == (
        sweep_id,
        "tiny_smoke",
        "local",
        '["train.lr", "train.max_steps"]',
    )

    detail = launch("status", runs[3], check=True).stdout
    assert f"overrides      {FAST} train.lr=2e-05 train.max_steps=3" in detail
    assert f"sweep          {sweep_id}" in detail
    shown = launch("show", runs[3], check=True).stdout
    assert f"# overrides: {FAST} train.lr=2e-05 train.max_steps=3" in shown
    assert (
        "  lr: 2.0e-05\n" in shown
        and "  max_steps: 3\n" in shown
        and "sweep:" not in shown.split("\n", 5)[-1]
    )
    assert (
        launch("show", str(tmp_path / "runs" / runs[0]), check=True).stdout == launch("show", runs[0]).stdout
    )


def test_plain_run_records_its_overrides(launch: Launch, tmp_path: Path) -> None:
    proc = launch(
        "recipe", "tiny_smoke", "-c", "local", "--set", "train.max_steps=2", "--set", FAST, check=True
    )
    info = _info(tmp_path, proc.stdout.split()[0])
    assert info["overrides"] == ["train.max_steps=2", FAST] and info["sweep"] is None
    assert info["recipe_hash_base"] == load_recipe("tiny_smoke").digest()
    assert launch("show", "tiny_smoke", check=True).stdout.startswith(
        "# resolved from "
    )  # a recipe stays a recipe


def test_a_bad_point_refuses_the_sweep_and_creates_nothing(launch: Launch, tmp_path: Path) -> None:
    proc = launch(
        "sweep", "tiny_smoke", "-c", "local", "--grid", "train.lr=1e-5,abc", "--grid", "train.max_steps=2,3"
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: sweep point 2 (train.lr=abc, train.max_steps=2): --set train.lr: ")
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert _rows(tmp_path) == [] and _rows(tmp_path, "sweeps") == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    unknown = launch("sweep", "tiny_smoke", "-c", "local", "--grid", "train.lrr=1,2")
    assert unknown.returncode == 2 and "unknown key 'lrr' (did you mean 'lr'?)" in unknown.stderr
    unequal = launch(
        "sweep", "tiny_smoke", "-c", "local", "--zip", *GRID[:2], "--grid", "train.max_steps=2,3,4"
    )
    assert unequal.returncode == 2
    assert "train.lr has 2, train.max_steps has 3 values" in unequal.stderr


def test_dry_run_of_a_zip_prints_the_points_and_creates_nothing(launch: Launch, tmp_path: Path) -> None:
    proc = launch("sweep", "tiny_smoke", "-c", "local", "--zip", *GRID, "--dry-run", check=True)
    points = [line for line in proc.stdout.splitlines() if "tiny_smoke-" in line and "│" in line]
    assert len(points) == 2
    assert "1e-05" in points[0] and "│ 2 " in points[0] and "2e-05" in points[1] and "│ 3 " in points[1]
    assert "2 point(s) of tiny_smoke on local" in proc.stdout and "-m jobs.smoke --run-dir" in proc.stdout
    assert not (tmp_path / "runs").exists() and not (tmp_path / "home" / "registry.db").exists()


def test_recipe_sweep_section_runs_with_launch_sweep_and_is_ignored_by_launch_recipe(
    launch: Launch, tmp_path: Path
) -> None:
    recipe = tmp_path / "swept.yaml"
    base = Path("recipes/tiny_smoke.yaml").resolve().read_text().replace("name: tiny_smoke", "name: swept")
    recipe.write_text(base + "sweep: {grid: {train.max_steps: [2, 3, 4]}, max_parallel: 2}\n")
    proc = launch("sweep", str(recipe), "-c", "local", "--dry-run", check=True)
    assert "3 point(s) of swept on local (local), at most 2 at once" in proc.stdout
    plain = launch("recipe", str(recipe), "-c", "local", "--dry-run", check=True)
    assert "note: one plain run; `launch sweep" in plain.stderr
    assert "sweep" not in plain.stdout.split("# ---- recipe.yaml ----")[1]


def test_cancel_a_sweep_cancels_every_point(launch: Launch, tmp_path: Path) -> None:
    slow = "env={SMOKE_STEP_SECONDS: '1'}"
    sweep_id, runs = _sweep(
        launch, "--grid", "train.max_steps=300,301,302", "--set", slow, "--max-parallel", "2"
    )
    wait_for(lambda: "running" in _states(launch, sweep_id).values(), timeout=30, every=0.5)
    out = launch("cancel", sweep_id, check=True).stdout
    assert sorted(out.splitlines()) == sorted(f"{r}: cancelled" for r in runs)
    assert set(_states(launch, sweep_id).values()) == {"cancelled"}
    listing = launch("status", check=True).stdout
    assert f"{sweep_id}: 3 points: 3 cancelled" in listing
    assert not any(line.startswith(runs[0]) for line in listing.splitlines())  # collapsed into its sweep


def test_local_points_without_gpus_share_the_machines_cores(launch: Launch, tmp_path: Path) -> None:
    """Two CPU jobs that each ask for every core run one after the other, not side by side."""
    cores = len(os.sched_getaffinity(0))
    args = ["--grid", "train.max_steps=300,301", "--set", "env={SMOKE_STEP_SECONDS: '1'}",
            "--set", f"resources.cpus_per_gpu={cores}", "--max-parallel", "2"]  # fmt: skip
    dry = launch("sweep", "tiny_smoke", "--cluster", "local", *args, "--dry-run", check=True)
    assert "2 point(s) of tiny_smoke on local (local), at most 1 at once" in dry.stdout
    sweep_id, runs = _sweep(launch, *args)
    try:
        wait_for(lambda: "running" in _states(launch, sweep_id).values(), timeout=30, every=0.5)
        time.sleep(3)
        states = _states(launch, sweep_id)
        assert sorted(states.values()) == ["pending", "running"]
        waiting = next(r for r in runs if states[r] == "pending")
        state = json.loads((tmp_path / "runs" / waiting / ".local_state.json").read_text())
        assert state["reason"] == "array limit: 1 of 1 runs at once"
    finally:
        launch("cancel", sweep_id)


# ------------------------------------------------------------------ the dev Slurm cluster


def test_slurm_sweep_is_one_array_throttled_to_two(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    sweep_id, runs = _sweep(launch, *GRID, "--set", FAST, "--max-parallel", "2", cluster="dev-slurm")
    job_ids = [_info(tmp_path, r)["job_ids"][0] for r in runs]
    array = job_ids[0].split("_")[0]
    assert job_ids == [f"{array}_{i}" for i in range(4)]
    script = (tmp_path / "runs" / runs[0] / "submit.sh").read_text()
    assert "#SBATCH --array=0-3%2" in script
    show = subprocess.run(
        ["scontrol", "show", "job", array], capture_output=True, text=True, timeout=30
    ).stdout
    assert "ArrayTaskThrottle=2" in show or "COMPLETED" in show
    wait_for(lambda: set(_states(launch, sweep_id).values()) == {"completed"}, timeout=120, every=1)
    for run_id, point in zip(runs, POINTS, strict=True):
        info = _info(tmp_path, run_id)
        assert info["sweep_point"] == point and info["overrides"][-2:] == [
            f"train.lr={point['train.lr']!r}", f"train.max_steps={point['train.max_steps']}"
        ]  # fmt: skip
        assert (
            tmp_path / "runs" / run_id / "checkpoints" / f"checkpoint-{point['train.max_steps']}"
        ).is_dir()
