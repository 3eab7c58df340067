"""`launch recipe R --cluster C --then reeval[=E][@C] --then bench`: the chain runs after the CLI exited.

Real everything: the local backend's detached processes and the dev Slurm cluster (afterok job).
Training is tiny_ner for 4 steps (checkpoints 2 and 4); the eval recipe is tiny_ner_eval cut to 8
sentences, written into the test's $LAUNCH_HOME/recipes.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from launcher.errors import UserError
from launcher.loop.chain import Step, chain_lines, parse_step, write_state
from tests.conftest import Launch, run_state, wait_for
from tests.ray_head import Head

TRAIN = ["--set", "train.max_steps=4", "--set", "train.save_steps=2", "--set", "data.max_train_samples=40"]
THEN = ["--then", "reeval=chain_eval", "--then", "bench"]
EVAL_RECIPE = """\
# tiny_ner_eval on 8 sentences: the chain tests' eval recipe.
name: chain_eval
job: evaluate
task: ner
model: {name_or_path: "tiny://qwen2-gmb", dtype: auto}
resources: {nodes: 1, gpus_per_node: 0, cpus_per_gpu: 1, time: "00:10:00"}
data: {dataset: gmb, test_size: 0.3, seed: 42}
eval: {split: test, batch_size: 8, max_new_tokens: 32, max_samples: 8}
"""


@pytest.fixture
def world(launch_env: dict[str, str], tmp_path: Path) -> Path:
    """The runs root; the eval recipe is in place."""
    recipes = Path(launch_env["LAUNCH_HOME"]) / "recipes"
    recipes.mkdir(parents=True)
    (recipes / "chain_eval.yaml").write_text(EVAL_RECIPE)
    return tmp_path / "runs"


def _chain(launch: Launch, run_id: str) -> str:
    """The `chain: ...` line of `launch status RUN`."""
    out = launch("status", run_id, check=True).stdout
    return next(line for line in out.splitlines() if line.startswith("chain:"))


def _eval_runs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.name.startswith("chain_eval-")) if runs.is_dir() else []


def _check_results(runs: Path, run_id: str) -> None:
    run_dir = runs / run_id
    info = json.loads((run_dir / "launch.json").read_text())
    assert info["then"] == ["reeval=chain_eval", "bench"]
    metrics = [json.loads(p.read_text()) for p in run_dir.glob("results/**/metrics.json")]
    assert sorted(m["step"] for m in metrics) == [2, 4]
    assert {m["training_run"] for m in metrics} == {run_id}
    evals = [e for e in _eval_runs(runs) if json.loads((e / "launch.json").read_text())["parent"] == run_id]
    assert len(evals) == 2
    rows = list(csv.DictReader((run_dir / "bench" / "benchmark.csv").open()))
    assert sorted(int(r["step"]) for r in rows if r["run"] == run_id) == [2, 4]
    assert "checkpoint-4" in (run_dir / "bench" / "benchmark.md").read_text()


def _submit_and_leave(launch: Launch, cluster: str) -> str:
    """Submit with --then; the CLI process has exited when this returns, training has not ended."""
    proc = launch("recipe", "tiny_ner", "--cluster", cluster, *TRAIN, *THEN, check=True)
    run_id = proc.stdout.split()[0]
    assert "then: reeval=chain_eval, bench: chain job" in proc.stderr
    assert run_state(launch, run_id) in ("pending", "running")
    assert _chain(launch, run_id) == "chain: waiting (for training to end)"
    return run_id


# ----------------------------------------------------------------------- pure logic


def test_steps_parse() -> None:
    assert parse_step("reeval") == Step("reeval", "reeval")
    assert parse_step("reeval=ds1.5b_eval") == Step("reeval=ds1.5b_eval", "reeval", "ds1.5b_eval")
    assert parse_step("reeval@2080ti") == Step("reeval@2080ti", "reeval", None, "2080ti")
    assert parse_step("reeval=e@c") == Step("reeval=e@c", "reeval", "e", "c")
    assert parse_step("bench") == Step("bench", "bench")
    for bad in ("bench=x", "reeval@", "eval", "reeval=@c", ""):
        with pytest.raises(UserError, match="not a step"):
            parse_step(bad)


def test_status_lines_from_the_files(tmp_path: Path) -> None:
    assert chain_lines(tmp_path) == []  # no launch.json: no chain
    (tmp_path / "launch.json").write_text(json.dumps({"run_id": "r", "then": ["reeval", "bench"]}))
    (tmp_path / "chain").mkdir()
    write_state(tmp_path, "waiting", reason="for training to end")
    assert chain_lines(tmp_path, "running") == [
        "chain: waiting (for training to end)",
        "chain steps: reeval, bench",
    ]
    assert chain_lines(tmp_path, "failed")[0] == "chain: not started (training failed)"
    assert chain_lines(tmp_path, "cancelled")[0] == "chain: not started (training cancelled)"
    write_state(tmp_path, "completed", reason="2 evaluation(s) completed", evals=["e1", "e2"], bench="b.md")
    assert chain_lines(tmp_path, "completed") == [
        "chain: completed (2 evaluation(s) completed)", "chain steps: reeval, bench",
        "chain evals: e1, e2", "chain bench: b.md",
    ]  # fmt: skip


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (["deploy"], "--then deploy: not a step; valid: reeval[=EVAL_RECIPE][@CLUSTER], bench"),
        (["bench"], "--then bench: needs a reeval step before it"),
        (["reeval=nope"], "--then reeval=nope: unknown recipe 'nope'"),
        (["reeval=tiny_ner"], "but a train run is evaluated by job: evaluate; valid: "),
        (["reeval@nowhere"], "--then reeval@nowhere: unknown cluster 'nowhere'"),
        (["reeval=", "bench"], "--then reeval=: not a step"),
    ],
)
@pytest.mark.parametrize("cluster", ["local", "dev-slurm"])
def test_bad_then_values_exit_2_with_nothing_submitted(
    launch: Launch, world: Path, values: list[str], needle: str, cluster: str
) -> None:
    args = [a for v in values for a in ("--then", v)]
    proc = launch("recipe", "tiny_ner", "--cluster", cluster, *TRAIN, *args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not world.exists() or not any(world.iterdir())
    assert "runs (0)" in launch("status", check=True).stdout


def test_dry_run_says_what_follows(launch: Launch, world: Path) -> None:
    proc = launch("recipe", "tiny_ner", "--cluster", "local", *THEN, "--dry-run", check=True)
    assert "# then: reeval=chain_eval, bench" in proc.stdout
    assert not world.exists()


# ----------------------------------------------------------------------- local backend


@pytest.mark.slow
def test_local_chain_evaluates_and_benches_after_the_cli_exited(launch: Launch, world: Path) -> None:
    run_id = _submit_and_leave(launch, "local")
    wait_for(lambda: _chain(launch, run_id).startswith(("chain: completed", "chain: failed")), 240, 2)
    assert _chain(launch, run_id) == "chain: completed (2 evaluation(s) completed)"
    _check_results(world, run_id)
    status = launch("status", run_id, check=True).stdout
    assert f"chain bench: {world / run_id / 'bench' / 'benchmark.md'}" in status


def test_no_table_when_every_evaluation_failed(
    launch: Launch, world: Path, launch_env: dict[str, str]
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
    wait_for(lambda: _chain(launch, run_id).startswith(("chain: completed", "chain: failed")), 240, 2)
    assert _chain(launch, run_id) == "chain: failed (2 of 2 evaluation(s) did not complete)"
    assert not (world / run_id / "bench").exists()


@pytest.mark.slow
def test_follow_follows_training_evaluations_and_bench(launch: Launch, world: Path) -> None:
    proc = launch("recipe", "tiny_ner", "--cluster", "local", *TRAIN, *THEN, "--follow", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.split()[0]
    assert f"{run_id}: completed" in proc.stderr
    assert proc.stderr.count(": completed  F1 ") == 2  # each evaluation's state and F1
    assert "2/2 evaluation(s) completed" in proc.stderr
    assert "benchmark (GMB NER)" in proc.stdout and "checkpoint-4" in proc.stdout
    assert "benchmark (text classification)" not in proc.stdout  # no classification run here
    assert "chain: completed" in proc.stderr
    _check_results(world, run_id)


@pytest.mark.slow
def test_cancel_stops_the_chain_too(launch: Launch, world: Path) -> None:
    proc = launch("recipe", "tiny_ner", "--cluster", "local", *TRAIN, *THEN, check=True)
    run_id = proc.stdout.split()[0]
    cancelled = launch("cancel", run_id, check=True)
    assert cancelled.stdout.strip() == f"{run_id}: cancelled (chain: cancelled)"
    chain_job = json.loads((world / run_id / "launch.json").read_text())["chain"]["job_id"]
    pid = int(chain_job.split("@")[0])
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(), 20)
    assert _chain(launch, run_id).startswith("chain: cancelled")
    assert _eval_runs(world) == []


# ----------------------------------------------------------------------- Slurm


def _squeue(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True, timeout=30
    ).stdout.strip()


@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_chain_evaluates_and_benches_after_the_cli_exited(launch: Launch, world: Path) -> None:
    from tests.test_slurm_cluster import require_slurm

    require_slurm()
    run_id = _submit_and_leave(launch, "dev-slurm")
    info = json.loads((world / run_id / "launch.json").read_text())
    script = (world / run_id / "chain" / "chain.sh").read_text()
    assert f"#SBATCH --dependency=afterok:{info['job_ids'][0]}" in script
    assert "#SBATCH --kill-on-invalid-dep=yes" in script and "#SBATCH --cpus-per-task=1" in script
    wait_for(lambda: _chain(launch, run_id).startswith(("chain: completed", "chain: failed")), 300, 3)
    assert _chain(launch, run_id) == "chain: completed (2 evaluation(s) completed)"
    _check_results(world, run_id)
    eval_jobs = {
        json.loads((e / "launch.json").read_text())["job_ids"][0].split("_")[0] for e in _eval_runs(world)
    }
    assert len(eval_jobs) == 1  # one array, submitted from the chain job


@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_failed_training_starts_no_evaluation(launch: Launch, world: Path, tmp_path: Path) -> None:
    from tests.test_slurm_cluster import require_slurm

    require_slurm()
    empty = tmp_path / "no-tokenizer"
    empty.mkdir()  # passes every launch-time check; the job fails loading it
    proc = launch(
        "recipe", "tiny_ner", "--cluster", "dev-slurm", *TRAIN, "--set", f"model.tokenizer={empty}", *THEN,
        "--follow", timeout=240,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    run_id = proc.stdout.split()[0]
    assert "chain: not started (training failed)" in proc.stderr
    assert _chain(launch, run_id) == "chain: not started (training failed)"
    chain_job = json.loads((world / run_id / "launch.json").read_text())["chain"]["job_id"]
    wait_for(lambda: _squeue(chain_job) == "", 60, 1)  # Slurm cancelled it: it does not pend forever
    assert _eval_runs(world) == [] and not (world / run_id / "bench").exists()


# ----------------------------------------------------------------------- Ray


@pytest.mark.slow
@pytest.mark.ray
def test_ray_chain_is_a_follow_on_job(launch: Launch, world: Path, head: Head) -> None:
    one_cpu = ["--set", "resources.cpus_per_gpu=1"]
    proc = launch("recipe", "tiny_ner", "--cluster", str(head.profile), *TRAIN, *one_cpu, *THEN, check=True)
    run_id = proc.stdout.split()[0]
    assert json.loads((world / run_id / "launch.json").read_text())["chain"]["job_id"] == f"{run_id}-chain"
    assert "entrypoint_num_cpus: 0" in (world / run_id / "chain" / "chain.yaml").read_text()
    wait_for(lambda: _chain(launch, run_id).startswith(("chain: completed", "chain: failed")), 300, 3)
    assert _chain(launch, run_id) == "chain: completed (2 evaluation(s) completed)"
    _check_results(world, run_id)


def test_a_sweep_with_then_evaluates_every_point(launch: Launch, world: Path) -> None:
    """`launch sweep ... --then`: one chain per point; each point's checkpoints scored and benched."""
    proc = launch(
        "sweep", "tiny_ner", "--cluster", "local", "--grid", "train.lr=1e-4,2e-4", "--max-parallel", "2",
        *TRAIN, *THEN, check=True,
    )  # fmt: skip
    assert "then: reeval=chain_eval, bench: one chain per point" in proc.stderr
    sweep_id = proc.stdout.split()[0]
    points = [p for p in world.iterdir() if p.name.startswith("tiny_ner-")]
    assert len(points) == 2
    for point in points:
        assert json.loads((point / "launch.json").read_text())["sweep"] == sweep_id
        wait_for(
            lambda p=point: _chain(launch, p.name).startswith(("chain: completed", "chain: failed")), 360, 2
        )
        assert _chain(launch, point.name) == "chain: completed (2 evaluation(s) completed)"
        _check_results(world, point.name)
