"""`launch sweep` end to end on the local backend with tiny_smoke (a model-free job of a few steps):
every point with its overrides, two at once, cancel, recorded overrides of a plain run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from launcher.config.recipe import load_recipe
from tests.support.cli import Launch, wait_for
from tests.support.sweeps import FAST, GRID, POINTS, launch_info, registry_rows, submit_sweep, sweep_states


def test_local_sweep_runs_every_point_with_its_overrides_two_at_once(launch: Launch, tmp_path: Path) -> None:
    sweep_id, runs = submit_sweep(launch, *GRID, "--set", FAST, "--max-parallel", "2")
    assert sweep_id.startswith("sweep-tiny_smoke-") and len(runs) == 4
    wait_for(lambda: set(sweep_states(launch, sweep_id).values()) == {"completed"}, timeout=90, every=1)
    for run_id, point in zip(runs, POINTS, strict=True):
        info = launch_info(tmp_path, run_id)
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
    assert registry_rows(tmp_path, "sweeps")[0][:4] == (
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
    info = launch_info(tmp_path, proc.stdout.split()[0])
    assert info["overrides"] == ["train.max_steps=2", FAST] and info["sweep"] is None
    assert info["recipe_hash_base"] == load_recipe("tiny_smoke").digest()
    assert launch("show", "tiny_smoke", check=True).stdout.startswith(
        "# resolved from "
    )  # a recipe stays a recipe


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
    sweep_id, runs = submit_sweep(
        launch, "--grid", "train.max_steps=300,301,302", "--set", slow, "--max-parallel", "2"
    )
    wait_for(lambda: "running" in sweep_states(launch, sweep_id).values(), timeout=30, every=0.5)
    out = launch("cancel", sweep_id, check=True).stdout
    assert sorted(out.splitlines()) == sorted(f"{r}: cancelled" for r in runs)
    assert set(sweep_states(launch, sweep_id).values()) == {"cancelled"}
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
    sweep_id, runs = submit_sweep(launch, *args)
    try:
        wait_for(lambda: "running" in sweep_states(launch, sweep_id).values(), timeout=30, every=0.5)
        time.sleep(3)
        states = sweep_states(launch, sweep_id)
        assert sorted(states.values()) == ["pending", "running"]
        waiting = next(r for r in runs if states[r] == "pending")
        state = json.loads((tmp_path / "runs" / waiting / ".local_state.json").read_text())
        assert state["reason"] == "array limit: 1 of 1 runs at once"
    finally:
        launch("cancel", sweep_id)
