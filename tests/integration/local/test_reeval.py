"""`launch reeval` and `launch bench` on a real tiny training run, on the local backend (and one
reeval as a Slurm array of that run's checkpoints).

One tiny_ner run (30 steps, a checkpoint every 10) is trained once for the module; W&B is
disabled here for speed (test_evaluate reads an eval run's W&B file back)."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from launcher.runs.progress import read_progress

STEPS = (10, 20, 30)

EVAL = ["--set", "eval.max_samples=16", "--set", "eval.max_new_tokens=32"]

Run = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="module")
def trained(run: Run, env: dict[str, str]) -> Path:
    proc = run(
        "recipe", "tiny_ner", "--cluster", "local", "--follow", "--set", "train.max_steps=30",
        "--set", "train.save_steps=10", "--set", "data.max_train_samples=160",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(env["LAUNCH_RUNS"]) / proc.stdout.split()[0]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [f"checkpoint-{s}" for s in STEPS]
    return run_dir


@pytest.fixture(scope="module")
def reevaluated(run: Run, trained: Path) -> subprocess.CompletedProcess:
    return run("reeval", trained.name, "--cluster", "local", "--follow", *EVAL)


def _metrics(run_dir: Path, step: int, run_ids: list[str] | None = None) -> dict:
    """The checkpoint's metrics (one of `run_ids`' when given: each eval recipe has its own folder)."""
    found = [
        json.loads(p.read_text()) for p in (run_dir / "results" / f"checkpoint-{step}").glob("*/metrics.json")
    ]
    return next(m for m in found if run_ids is None or m["run_id"] in run_ids)


def _eval_runs(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.parent.iterdir() if p.name.startswith("tiny_ner_eval-"))


@pytest.mark.slow
def test_reeval_evaluates_every_complete_checkpoint(
    reevaluated: subprocess.CompletedProcess, trained: Path, run: Run
) -> None:
    assert reevaluated.returncode == 0, reevaluated.stderr[-3000:]
    run_ids = reevaluated.stdout.split()
    assert len(run_ids) == 3 and "3/3 evaluation(s) completed" in reevaluated.stderr
    for step in STEPS:
        metrics = _metrics(trained, step)
        assert metrics["step"] == step and metrics["sentences"] == 16
        assert metrics["checkpoint"] == str(trained / "checkpoints" / f"checkpoint-{step}")
        assert metrics["run_id"] in run_ids and metrics["training_run"] == trained.name
    detail = run("status", run_ids[0]).stdout
    assert f"parent run     {trained.name}" in detail and "completed" in detail
    assert "3 evals: 3 completed" in run("status").stdout  # collapsed under the training run
    listing = run("status", "--all").stdout
    assert all(r[:20] in listing for r in run_ids)
    for run_id in run_ids:  # each evaluation counted its sentences in its progress.json
        progress = read_progress(trained.parent / run_id)
        assert progress is not None and progress.unit == "sentence"
        assert progress.step == progress.total_steps == 16 and progress.items_per_s


@pytest.mark.slow
def test_rerun_has_nothing_to_do(reevaluated: subprocess.CompletedProcess, trained: Path, run: Run) -> None:
    before = _eval_runs(trained)
    proc = run("reeval", trained.name, "--cluster", "local", *EVAL)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stderr.count("already scored") == 3
    assert _eval_runs(trained) == before


@pytest.mark.slow
def test_every_and_last_on_the_command_line(
    reevaluated: subprocess.CompletedProcess, trained: Path, run: Run
) -> None:
    other = ["--set", "eval.max_samples=8"]  # another eval recipe: nothing is scored by it yet
    before = _eval_runs(trained)
    for args, steps in ((["--last", "1"], [30]), (["--every", "20"], [20]), ([], [10, 20, 30])):
        proc = run("reeval", str(trained), "--cluster", "local", "--dry-run", *other, *args)
        assert proc.returncode == 0, proc.stderr
        listed = [line for line in proc.stdout.splitlines() if line.startswith("#   checkpoint-")]
        assert [line.split()[1] for line in listed] == [f"checkpoint-{s}" for s in steps]
        assert proc.stdout.count("-m jobs.evaluate") == len(steps)
    assert _eval_runs(trained) == before  # a dry run creates nothing


@pytest.mark.slow
def test_follow_exits_non_zero_when_an_evaluation_fails(
    reevaluated: subprocess.CompletedProcess, trained: Path, run: Run
) -> None:
    # A directory that holds no tokenizer passes every launch-time check and fails in the job.
    # (eval.engine=openai, used before, is now refused by `launch reeval` itself: exit 2.)
    proc = run("reeval", trained.name, "--cluster", "local", "--last", "1", "--follow",
               "--set", f"model.tokenizer={trained / 'logs'}")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert ": failed" in proc.stderr and "logs" in proc.stderr
    assert "0/1 evaluation(s) completed" in proc.stderr
    refused = run("reeval", trained.name, "--cluster", "local", "--last", "1", "--set", "eval.engine=openai")
    assert refused.returncode == 2 and "eval.engine: openai is for the classify job" in refused.stderr


@pytest.mark.slow
def test_bench_has_one_row_per_checkpoint_with_its_f1(
    reevaluated: subprocess.CompletedProcess, trained: Path, run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    proc = run("bench", trained.name, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    names = ["benchmark.csv", "benchmark.md", "benchmark_classification.csv", "benchmark_classification.md"]
    assert sorted(p.name for p in out.iterdir()) == [*names, "f1_by_step.png", "loss_by_step.png"]
    assert (out / "f1_by_step.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((out / "benchmark.csv").open()))
    mine = [r for r in rows if r["run"] == trained.name]
    assert [int(r["step"]) for r in mine] == list(STEPS)
    for row in mine:
        metrics = _metrics(trained, int(row["step"]))
        assert float(row["f1"]) == metrics["strict"]["f1"]
        assert float(row["precision"]) == metrics["strict"]["precision"]
        assert row["level"] == "entity" and row["published"] == "False"
    published = [r for r in rows if r["published"] == "True"]
    assert {r["f1"] for r in published} >= {"0.8711", "0.8611", "0.8483", "0.8524", "0.8"}
    md = (out / "benchmark.md").read_text()
    assert md.startswith("| model | size | precision | recall | F1 | level | n | source | notes |")
    assert md.count("| published |") == len(published) and md.count("checkpoint-") == 3
    assert md.count("| 16 | ran here |") == 3
    assert "0.8711" in proc.stdout and "checkpoint-30" in proc.stdout


@pytest.mark.slow
@pytest.mark.slurm
def test_reeval_on_slurm_is_one_array(
    reevaluated: subprocess.CompletedProcess, trained: Path, run: Run, env: dict[str, str]
) -> None:
    from tests.support.cli import require_slurm

    require_slurm()
    settings = ["--set", "eval.max_samples=12", "--set", "eval.max_new_tokens=24"]
    proc = run("reeval", trained.name, "--cluster", "dev-slurm", *settings)
    assert proc.returncode == 0, proc.stderr
    run_ids = proc.stdout.split()
    assert len(run_ids) == 3
    again = run("reeval", trained.name, "--cluster", "dev-slurm", *settings)
    assert "nothing to do" in again.stdout and again.stderr.count("being evaluated") == 3, again.stderr
    runs = Path(env["LAUNCH_RUNS"])
    job_ids = [json.loads((runs / r / "launch.json").read_text())["job_ids"][0] for r in run_ids]
    assert len({j.split("_")[0] for j in job_ids}) == 1  # one array
    assert sorted(j.split("_")[1] for j in job_ids) == ["0", "1", "2"]

    def states() -> list[str]:
        out = [run("status", r).stdout for r in run_ids]
        return [next(line.split()[1] for line in o.splitlines() if line.startswith("state")) for o in out]

    deadline = time.monotonic() + 240
    ended = ("completed", "failed", "cancelled", "timeout")
    while time.monotonic() < deadline and not all(s in ended for s in states()):
        time.sleep(2)
    assert states() == ["completed"] * 3
    for step in STEPS:
        metrics = _metrics(trained, step, run_ids)  # the --set variant's folder, beside the first one's
        assert metrics["sentences"] == 12 and metrics["run_id"] in run_ids
