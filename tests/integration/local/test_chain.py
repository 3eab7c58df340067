"""`launch recipe R --cluster local --then reeval[=E] --then bench`: the chain runs on the local
backend's detached processes after the CLI exited, sweeps with --then, cancel and follow.

Training is tiny_ner for 4 steps (checkpoints 2 and 4); the eval recipe is tiny_ner_eval cut to 8
sentences, written into the test's $LAUNCH_HOME/recipes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.chain import (
    EVAL_RECIPE,
    THEN,
    TRAIN,
    chain_line,
    check_results,
    eval_runs,
    submit_and_leave,
)
from tests.support.cli import Launch, run_state, wait_for


@pytest.mark.slow
def test_local_chain_evaluates_and_benches_after_the_cli_exited(
    launch: Launch, chain_world: Path, launch_env: dict[str, str]
) -> None:
    run_id = submit_and_leave(launch, "local")
    wait_for(lambda: chain_line(launch, run_id).startswith(("chain: completed", "chain: failed")), 240, 2)
    assert chain_line(launch, run_id) == "chain: completed (2 evaluation(s) completed)"
    check_results(chain_world, run_id)
    status = launch("status", run_id, check=True).stdout
    assert f"chain bench: {chain_world / run_id / 'bench' / 'benchmark.md'}" in status

    # run again (a requeued chain job, or one a manual reeval got ahead of): nothing is left to
    # evaluate, and the table is built from the results there are (it used to build none)
    shutil.rmtree(chain_world / run_id / "bench")
    rerun = subprocess.run(
        [sys.executable, "-m", "launcher.loop.chain", "--run-dir", str(chain_world / run_id)],
        env=launch_env, cwd=chain_world.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert chain_line(launch, run_id) == "chain: completed (2 checkpoint(s) were scored already)"
    assert len(eval_runs(chain_world)) == 2  # nothing evaluated twice
    check_results(chain_world, run_id)


def test_no_table_when_every_evaluation_failed(
    launch: Launch, chain_world: Path, launch_env: dict[str, str]
) -> None:
    """A tokenizer directory that holds none passes every launch-time check and fails in the job."""
    recipes = Path(launch_env["LAUNCH_HOME"]) / "recipes"
    broken = EVAL_RECIPE.replace("name: chain_eval", "name: broken_eval").replace(
        "dtype: auto}", f'dtype: auto, tokenizer: "{recipes}"}}'
    )
    (recipes / "broken_eval.yaml").write_text(broken)
    proc = launch("recipe", "tiny_ner", "--cluster", "local", *TRAIN, "--then", "reeval=broken_eval",
                  "--then", "bench", check=True)  # fmt: skip
    run_id = proc.stdout.split()[0]
    wait_for(lambda: chain_line(launch, run_id).startswith(("chain: completed", "chain: failed")), 240, 2)
    assert chain_line(launch, run_id) == "chain: failed (2 of 2 evaluation(s) did not complete)"
    assert not (chain_world / run_id / "bench").exists()


@pytest.mark.slow
def test_follow_follows_training_evaluations_and_bench(launch: Launch, chain_world: Path) -> None:
    proc = launch("recipe", "tiny_ner", "--cluster", "local", *TRAIN, *THEN, "--follow", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.split()[0]
    assert f"{run_id}: completed" in proc.stderr
    assert proc.stderr.count(": completed  F1 ") == 2  # each evaluation's state and F1
    assert "2/2 evaluation(s) completed" in proc.stderr
    assert "benchmark (GMB NER)" in proc.stdout and "checkpoint-4" in proc.stdout
    assert "benchmark (text classification)" not in proc.stdout  # no classification run here
    assert "chain: completed" in proc.stderr
    check_results(chain_world, run_id)


@pytest.mark.slow
def test_cancel_stops_the_chain_too(launch: Launch, chain_world: Path) -> None:
    proc = launch("recipe", "tiny_ner", "--cluster", "local", *TRAIN, *THEN, check=True)
    run_id = proc.stdout.split()[0]
    cancelled = launch("cancel", run_id, check=True)
    assert cancelled.stdout.strip() == f"{run_id}: cancelled (chain: cancelled)"
    chain_job = json.loads((chain_world / run_id / "launch.json").read_text())["chain"]["job_id"]
    pid = int(chain_job.split("@")[0])
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(), 20)
    assert chain_line(launch, run_id).startswith("chain: cancelled")
    assert eval_runs(chain_world) == []


def test_a_sweep_with_then_evaluates_every_point(launch: Launch, chain_world: Path) -> None:
    """`launch sweep ... --then`: one chain per point; each point's checkpoints scored and benched."""
    proc = launch(
        "sweep", "tiny_ner", "--cluster", "local", "--grid", "train.lr=1e-4,2e-4", "--max-parallel", "2",
        *TRAIN, *THEN, check=True,
    )  # fmt: skip
    assert "then: reeval=chain_eval, bench: one chain per point" in proc.stderr
    sweep_id = proc.stdout.split()[0]
    points = [p for p in chain_world.iterdir() if p.name.startswith("tiny_ner-")]
    assert len(points) == 2
    for point in points:
        assert json.loads((point / "launch.json").read_text())["sweep"] == sweep_id
        wait_for(
            lambda p=point: chain_line(launch, p.name).startswith(("chain: completed", "chain: failed")),
            360,
            2,
        )
        assert chain_line(launch, point.name) == "chain: completed (2 evaluation(s) completed)"
        check_results(chain_world, point.name)


def test_a_chain_killed_before_its_evaluations_is_failed_and_follow_ends(
    launch: Launch, chain_world: Path, launch_env: dict[str, str]
) -> None:
    """kill -9 of the chain's process: status said `waiting (training completed; the chain is
    starting)` for good and --follow never returned. Now: `chain: failed`, and --follow exits 1."""
    slow = ["--set", "train.max_steps=15", "--set", "env={SMOKE_STEP_SECONDS: '0.2'}"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "recipe", "tiny_smoke", "-c", "local", *slow, *THEN[:2],
         "--follow"],
        env=launch_env, cwd=chain_world.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        run_id = follower.stdout.readline().strip()
        info = chain_world / run_id / "launch.json"
        wait_for(lambda: "job_id" in (json.loads(info.read_text()).get("chain") or {}), 30, 0.2)
        pid = int(json.loads(info.read_text())["chain"]["job_id"].split("@")[0])
        os.kill(pid, signal.SIGKILL)
        _, err = follower.communicate(timeout=120)
    finally:
        follower.kill()
    assert follower.returncode == 1, err
    assert run_state(launch, run_id) == "completed"
    line = chain_line(launch, run_id)
    assert line.startswith("chain: failed (its job ") and line.endswith(" ended (failed) unfinished)"), line
    assert "the chain is starting" not in line


def test_cancel_and_status_agree_on_a_chain_whose_job_died(
    launch: Launch, chain_world: Path, launch_env: dict[str, str]
) -> None:
    """The chain's process died during training, then the run is cancelled: cancel said
    `chain: failed` and status `not started (training cancelled)`; both now say cancelled."""
    slow = ["--set", "train.max_steps=300", "--set", "env={SMOKE_STEP_SECONDS: '0.2'}"]
    run_id = launch("recipe", "tiny_smoke", "-c", "local", *slow, *THEN[:2], check=True).stdout.split()[0]
    info = json.loads((chain_world / run_id / "launch.json").read_text())
    pid = int(info["chain"]["job_id"].split("@")[0])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(), 20)
    cancelled = launch("cancel", run_id, check=True)
    assert cancelled.stdout.strip() == f"{run_id}: cancelled (chain: cancelled)"
    assert chain_line(launch, run_id) == "chain: cancelled (launch cancel)"
