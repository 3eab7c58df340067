"""`launch status` without pydantic or rich: the --json text is what the pydantic models write, the
plain lines are what rich prints without colours, and a cached fact holds only while its run's
stamp does (a failed run's logs included)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console, Group

from launcher.runs.progress import Progress
from launcher.runs.registry import RunRow
from launcher.views.status import Best, StatusReport
from launcher.views.status_table import _stamp, as_plain, as_text, json_text, run_entry, table_lines

WHEN = "2026-12-01T12:00:00+00:00"


def _row(run_id: str, state: str, run_dir: Path, jobs: int = 1) -> RunRow:
    row = RunRow(
        run_id, "tiny_ner", "dev-slurm", "slurm", "train", str(run_dir), state, None, 0, None, WHEN, WHEN
    )
    row.jobs = [(i, f"{100 + i}", state) for i in range(jobs)]
    return row


FACTS = {
    "wandb": "offline — ünïcode",
    "uploads_pending": 2,
    "progress": Progress(step=120, total_steps=318, epoch=0.4, loss=1.5, lr=2e-05, tokens_per_s=1e-06,
                         eta_s=72, updated_at=WHEN).model_dump(mode="json"),
    "best": Best(f1=0.30000000000000004, checkpoint="checkpoint-100", step=100).model_dump(mode="json"),
    "error": "ValueError: bad\x1f",
    "summary": ["error: ValueError: bad", "best F1 0.3000 at checkpoint-100"],
}  # fmt: skip
"""As the facts cache holds them: the models' JSON values."""


def _report(tmp_path: Path) -> dict[str, object]:
    evals = [_row(f"eval-{i}", s, tmp_path) for i, s in enumerate(["completed", "failed"])]
    runs = [run_entry(_row("train-a", "failed", tmp_path, jobs=3), FACTS, evals),
            run_entry(_row("train-b", "completed", tmp_path), {"summary": []})]  # fmt: skip
    group = {"kind": "group", "group": "sweep-x", "total": 2, "states": {"completed": 2},
             "run_ids": ["p-0", "p-1"], "summary": "sweep-x: 2 runs: 2 completed"}  # fmt: skip
    return {"entries": [*runs, group], "registered": 7}


def test_the_json_text_is_the_models_json(tmp_path: Path) -> None:
    report = _report(tmp_path)
    model = StatusReport.model_validate(report)
    assert json_text(report) == model.model_dump_json(indent=2)
    assert json.loads(json_text(report))["entries"][0]["evals"] == {
        "total": 2,
        "states": {"completed": 1, "failed": 1},
    }


def test_plain_lines_are_what_rich_prints_without_colours(tmp_path: Path) -> None:
    for width in (120, 80, 40, 12):
        lines = table_lines(_report(tmp_path), width)
        out = io.StringIO()
        console = Console(file=out, width=width, highlight=False, markup=False, color_system=None)
        console.print(Group(*(as_text(line) for line in lines)), crop=False)  # as the verb prints it
        assert out.getvalue() == "".join(as_plain(line, width) + "\n" for line in lines), width


def test_a_failed_runs_facts_hold_until_its_logs_change(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "1.err"
    log.write_text("ValueError: one\n")
    row = _row("train-a", "failed", tmp_path)
    first = _stamp(row)
    assert first is not None and _stamp(row) == first
    with log.open("a") as fh:  # a log grows in place: the directory's mtime stays
        fh.write("RuntimeError: two\n")
    assert _stamp(row) != first
    assert _stamp(_row("train-a", "running", tmp_path)) is None  # not ended: read each time
