"""`launch status`' pure parts: durations, the compact log line and ETA, --since, evaluations and
sweep points collapsed, the error line, the best F1 in both results layouts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from launcher.errors import UserError
from launcher.runs.progress import Progress, eta_seconds, format_duration, progress_line
from launcher.runs.registry import RunRow
from launcher.views.status import (
    best_result,
    entries,
    last_error_line,
    parse_since,
    parse_states,
    report,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


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
    assert parse_since("2026-11-30", NOW) == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_since("2026-11-30T08:15", NOW) == datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
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
