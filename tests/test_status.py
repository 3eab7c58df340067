"""`launch status`: progress of a running training run (progress.json), best F1, the error line
of a failed run, evaluations and sweep points collapsed, --json, filters, 80 columns."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from launcher.errors import UserError
from launcher.runs.progress import Progress, eta_seconds, format_duration, progress_line
from launcher.runs.registry import Registry, RunRow
from launcher.views.status import (
    StatusReport,
    best_result,
    entries,
    last_error_line,
    parse_since,
    parse_states,
    report,
)
from tests.conftest import Launch, wait_for

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------- pure logic


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.4, "45s"), (72, "1m12s"), (3599, "59m59s"), (7380, "2h03m"), (273600, "3d04h"),
     (None, "?"), (-1, "?")],
)  # fmt: skip
def test_durations_have_two_units_at_most(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_compact_log_line_and_its_eta() -> None:
    assert eta_seconds(elapsed_s=60, steps_done=10, steps_left=20) == 120
    assert eta_seconds(elapsed_s=60, steps_done=0, steps_left=20) is None
    p = Progress(step=120, total_steps=318, loss=1.2341, lr=1.9e-5, tokens_per_s=412.4, eta_s=72,
                 updated_at="2026-12-01T12:00:00+00:00")  # fmt: skip
    assert progress_line(p) == "step 120/318  loss 1.234  lr 1.9e-05  412 tok/s  ETA 1m12s"
    e = Progress(step=64, total_steps=200, eta_s=96.2, items_per_s=1.4166, unit="sentence",
                 updated_at="2026-12-01T12:00:00+00:00")  # fmt: skip
    assert progress_line(e) == "64/200 sentences  1.42 sentences/s  ETA 1m36s"
    assert progress_line(e, eta=False) == "64/200 sentences  1.42 sentences/s"


def test_since_reads_durations_and_iso_dates() -> None:
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("3d", NOW) == NOW - timedelta(days=3)
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since("1w", NOW) == NOW - timedelta(days=7)
    assert parse_since("2026-11-30", NOW) == datetime(2026, 11, 30, tzinfo=timezone.utc)
    assert parse_since("2026-11-30T08:15", NOW) == datetime(2026, 11, 30, 8, 15, tzinfo=timezone.utc)
    for bad in ("yesterday", "5x", "-2h", ""):
        with pytest.raises(UserError, match=r"--since: cannot read .*valid: a duration"):
            parse_since(bad, NOW)
    assert parse_states(["failed,running", "completed"]) == {"failed", "running", "completed"}
    with pytest.raises(UserError, match="--state: unknown state 'done'; valid: submitting, pending"):
        parse_states(["done"])


def _row(run_id: str, state: str, parent: str | None = None, minute: int = 0, run_dir: str = "/nx") -> RunRow:
    when = (NOW + timedelta(minutes=minute)).isoformat()
    return RunRow(run_id, "tiny_ner", "local", "local", "train", run_dir, state, parent, 0, None, when, when)


EVAL_STATES = ["completed", "failed", "completed"]


def test_evaluations_collapse_under_their_run_and_sweep_points_into_one_line() -> None:
    rows = [
        _row("train-a", "completed"),
        *[_row(f"eval-{i}", s, "train-a", minute=i + 1) for i, s in enumerate(EVAL_STATES)],
        *[_row(f"pt-{i}", s, "sweep-x", minute=10 + i) for i, s in enumerate(["running", "completed"] * 2)],
        _row("lone", "failed", minute=20),
        _row("pt-0-eval", "completed", "pt-0", minute=5),  # a sweep point's eval: not a point
    ]  # fmt: skip
    got = report(None, entries(rows), len(rows))
    assert [e.kind for e in got.entries] == ["run", "group", "run"]
    train, sweep, lone = got.entries
    assert train.summary == ["3 evals: 2 completed, 1 failed"]
    assert sweep.summary == "sweep-x: 4 runs: 2 running, 2 completed"
    assert lone.summary == []
    expanded = report(None, entries(rows, expand=True), len(rows))
    assert [e.run_id for e in expanded.entries if e.kind == "run"] == [
        "train-a", "eval-0", "eval-1", "eval-2", "pt-0-eval", "lone"
    ]  # fmt: skip


def test_the_error_line_skips_traceback_noise(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    err = tmp_path / "logs" / "1.err"
    err.write_text(
        'Traceback (most recent call last):\n  File "/x/train.py", line 3, in <module>\n'
        "    main()\n    ^^^^^^\nKeyError: 'lr'\n\n"
    )
    assert last_error_line(tmp_path) == "KeyError: 'lr'"
    err.write_text('loading data\nTraceback (most recent call last):\n  File "/x/train.py", line 3\n')
    assert last_error_line(tmp_path) == "loading data"
    err.write_text("x" * 200_000 + "\nRuntimeError: out of memory\n")  # only the end is read
    assert last_error_line(tmp_path) == "RuntimeError: out of memory"


def _metrics(path: Path, f1: float, step: int) -> None:
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(
        json.dumps({"strict": {"precision": f1, "recall": f1, "f1": f1}, "step": step})
    )


def test_best_f1_reads_the_old_and_the_new_results_layout(tmp_path: Path) -> None:
    assert best_result(tmp_path) is None
    _metrics(tmp_path / "results" / "checkpoint-100", 0.5, 100)
    _metrics(tmp_path / "results" / "checkpoint-200" / "tiny_ner_eval", 0.7, 200)
    _metrics(tmp_path / "results" / "checkpoint-300" / "other_eval", 0.6, 300)
    (tmp_path / "results" / "train.json").write_text("{}")
    best = best_result(tmp_path)
    assert best is not None and (best.f1, best.checkpoint, best.eval_recipe, best.step) == (
        0.7, "checkpoint-200", "tiny_ner_eval", 200
    )  # fmt: skip


# ---------------------------------------------------------------------------- the CLI


def _fabricate(runs: Path) -> dict[str, str]:
    """A registry like a week of work: a trained run with results and 3 evals (one failed), a failed
    run with its stderr, a sweep's points, an old run from 3 days ago. Returns names -> run ids."""
    registry = Registry()
    ids = {"train": "tiny_ner-20261201-1000-aaaa", "failed": "tiny_ner-20261201-1100-bbbb",
           "old": "tiny_smoke-20261128-0900-cccc"}  # fmt: skip

    def add(run_id: str, recipe: str, job: str, state: str, parent: str | None = None) -> Path:
        run_dir = runs / run_id
        (run_dir / "logs").mkdir(parents=True)
        info = {"run_id": run_id, "wandb": {"url": f"https://wandb.ai/team/recipe-launcher/runs/{'x' * 40}"}}
        (run_dir / "launch.json").write_text(json.dumps(info))
        registry.add(run_id, recipe, "dev-slurm", "slurm", job, run_dir, ["123"], state=state, parent=parent)
        return run_dir

    train = add(ids["train"], "tiny_ner", "train", "completed")
    _metrics(train / "results" / "checkpoint-100", 0.41, 100)
    _metrics(train / "results" / "checkpoint-200" / "tiny_ner_eval", 0.6523, 200)
    for i, state in enumerate(["completed", "completed", "failed"]):
        ids[f"eval{i}"] = f"tiny_ner_eval-20261201-120{i}-dddd"
        add(ids[f"eval{i}"], "tiny_ner_eval", "evaluate", state, parent=ids["train"])
    failed = add(ids["failed"], "tiny_ner", "train", "failed")
    (failed / "logs" / "123.err").write_text(
        'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: train.lr must be > 0\n'
    )
    for i in range(4):
        add(
            f"tiny_ner-20261201-13{i:02d}-swp{i}", "tiny_ner", "train", "completed", parent="sweep-tiny_ner-1"
        )
    add(ids["old"], "tiny_smoke", "smoke", "cancelled")
    registry.close()
    old = (datetime.now(timezone.utc) - timedelta(days=3)).isoformat(timespec="seconds")
    with sqlite3.connect(registry.path) as conn:
        conn.execute("UPDATE runs SET created_at=? WHERE run_id=?", (old, ids["old"]))
    return ids


def test_status_table_json_and_filters(launch: Launch, launch_env: dict[str, str], tmp_path: Path) -> None:
    ids = _fabricate(tmp_path / "runs")
    launch_env["COLUMNS"] = "80"
    table = launch("status", check=True).stdout
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines), table
    assert lines[0] == "runs (10)", table
    for name in ("train", "failed", "old"):
        (line,) = [x for x in lines if x.startswith(ids[name])]
        assert line.split()[1] in ("completed", "failed", "cancelled"), line  # W&B never hides the state
    assert "best F1 0.6523 at checkpoint-200 (tiny_ner_eval)" in table
    assert "3 evals: 2 completed, 1 failed" in table
    assert "error: ValueError: train.lr must be > 0" in table
    assert "sweep-tiny_ner-1: 4 runs: 4 completed" in table
    assert ids["eval0"] not in table
    assert all(ids[f"eval{i}"] in launch("status", "--all", check=True).stdout for i in range(3))

    doc = StatusReport.model_validate_json(launch("status", "--json", check=True).stdout)
    assert doc.registered == 10
    by_id = {e.run_id: e for e in doc.entries if e.kind == "run"}
    assert by_id[ids["train"]].best is not None and by_id[ids["train"]].best.f1 == 0.6523
    assert by_id[ids["train"]].evals is not None and by_id[ids["train"]].evals.states == {
        "completed": 2, "failed": 1
    }  # fmt: skip
    assert by_id[ids["failed"]].error == "ValueError: train.lr must be > 0"

    def shown(*args: str) -> set[str]:
        out = StatusReport.model_validate_json(launch("status", "--json", *args, check=True).stdout)
        return {e.run_id if e.kind == "run" else e.group for e in out.entries}

    # a run is kept with its evals when it or one of its evals passes the filter
    assert shown("--state", "failed") == {ids["train"], ids["failed"]}
    assert shown("--recipe", "tiny_smoke") == {ids["old"]}
    assert ids["old"] not in shown("--since", "1d") and ids["old"] in shown("--since", "4d")
    for args, message in (
        (["--since", "soon"], "error: --since: cannot read 'soon'; valid: a duration (30m, 2h, 3d, 1w)"),
        (["--state", "done"], "error: --state: unknown state 'done'; valid: submitting, pending"),
        (["--watch", "0"], "error: --watch: SECONDS must be a positive number"),
    ):
        proc = launch("status", *args)
        assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr

    detail = launch("status", ids["train"], check=True).stdout
    assert "best F1        0.6523 at checkpoint-200 (tiny_ner_eval)" in detail


def test_a_running_training_run_shows_its_progress(launch: Launch, tmp_path: Path) -> None:
    sets = ["data.max_train_samples=160", "train.logging_steps=2", "train.max_steps=40",
            "train.save_steps=100", "tracking.wandb.mode=disabled"]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    run_id = launch("recipe", "tiny_ner", "-c", "local", *args, check=True).stdout.split()[0]
    run_dir = tmp_path / "runs" / run_id
    try:
        wait_for(lambda: (run_dir / "progress.json").is_file(), timeout=240, every=1)
        doc = StatusReport.model_validate_json(launch("status", "--json", check=True).stdout)
        (entry,) = doc.entries
        assert entry.kind == "run" and entry.state == "running" and entry.progress is not None
        assert entry.progress.total_steps == 40 and 1 <= entry.progress.step <= 40
        assert entry.progress.loss is not None and entry.progress.tokens_per_s
        table = launch("status", check=True).stdout
        assert re.search(r"step \d+/40  loss \d+\.\d{3}  \d+ tok/s  ETA ", table), table
        wait_for(lambda: "step 2/40  loss " in _out(run_dir), timeout=120, every=1)
        log = _out(run_dir)
        assert "{'loss'" not in log and "'learning_rate'" not in log, log  # no raw dicts
        line = next(x for x in log.splitlines() if x.startswith("step 2/40"))
        assert " tok/s  ETA " in line and "  lr " in line, line
    finally:
        launch("cancel", run_id)


def _out(run_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (run_dir / "logs").glob("*.out"))


def test_a_failed_run_shows_its_error_line_in_the_table(launch: Launch) -> None:
    proc = launch(
        "recipe", "tiny_smoke", "-c", "local", "--follow", "--set", "env={SMOKE_FAIL_AT: '2'}",
        "--set", "train.max_steps=5",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    table = launch("status", check=True).stdout
    assert "failed" in table and "failing at step 2" in table, table


def test_watch_refreshes_in_place_and_ctrl_c_exits_0(launch_env: dict[str, str], tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    ids = _fabricate(tmp_path / "runs")
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "status", "--watch", "0.2"], env=launch_env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(4)
        (tmp_path / "runs" / ids["failed"] / "logs" / "123.err").write_text("RuntimeError: changed\n")
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    # not a terminal: rich's Live prints the last refresh only, which saw the new error line
    assert "error: RuntimeError: changed" in out and "3 evals: 2 completed, 1 failed" in out, out


def test_a_token_classification_run_shows_progress_then_its_best_f1(launch: Launch, tmp_path: Path) -> None:
    sets = ["data.max_train_samples=64", "train.max_steps=6", "train.save_steps=6", "train.logging_steps=2",
            "eval.max_samples=16", "tracking.wandb.mode=disabled"]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    proc = launch("recipe", "minilm_ner", "--cluster", "local", *args, "--follow", timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_id = proc.stdout.split()[0]
    doc = StatusReport.model_validate_json(launch("status", "--json", check=True).stdout)
    (entry,) = doc.entries
    assert entry.kind == "run" and entry.progress is not None and entry.progress.step == 6
    assert entry.progress.total_steps == 6 and entry.progress.tokens_per_s  # num_input_tokens_seen
    assert entry.best is not None and entry.best.checkpoint == "checkpoint-6"
    results = tmp_path / "runs" / run_id / "results"
    (scored,) = (results / "checkpoint-6").glob("*/metrics.json")  # results/<checkpoint>/<eval recipe>/
    metrics = json.loads(scored.read_text())
    assert entry.best.f1 == metrics["strict"]["f1"]
    assert f"best F1 {entry.best.f1:.4f} at checkpoint-6" in launch("status", check=True).stdout
    assert "step 2/6  loss " in _out(tmp_path / "runs" / run_id)


def test_a_spacy_run_writes_progress_each_epoch(launch: Launch, tmp_path: Path) -> None:
    sets = ["data.max_train_samples=60", "train.epochs=2", "eval.max_samples=20", "data.max_eval_samples=20",
            "tracking.wandb.mode=disabled"]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    proc = launch("recipe", "spacy_sm", "--cluster", "local", "--follow", *args, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = StatusReport.model_validate_json(launch("status", "--json", check=True).stdout)
    (entry,) = doc.entries
    assert entry.kind == "run" and entry.progress is not None
    assert entry.progress.epoch == 2 and entry.progress.eta_s == 0 and entry.progress.tokens_per_s
    assert entry.best is not None and entry.best.checkpoint == "checkpoint-2"
