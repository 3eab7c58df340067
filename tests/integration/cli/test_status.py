"""`launch status` through the CLI on fabricated runs: the table at 80 columns, --json, filters, and
--watch refreshing in place until Ctrl-C."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from launcher.runs.registry import Registry
from launcher.views.status import StatusReport
from tests.support.cli import Launch


def _metrics(path: Path, f1: float, step: int) -> None:
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(
        json.dumps({"strict": {"precision": f1, "recall": f1, "f1": f1}, "step": step})
    )


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
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat(timespec="seconds")
    with sqlite3.connect(registry.path) as conn:
        conn.execute("UPDATE runs SET created_at=? WHERE run_id=?", (old, ids["old"]))
    return ids


def test_watch_refreshes_in_place_and_ctrl_c_exits_0(launch_env: dict[str, str], tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    ids = _fabricate(tmp_path / "runs")
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "status", "--watch", "1"], env=launch_env,
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
        (["--watch", "0"], "error: --watch: SECONDS must be from 1 to 86400"),
    ):
        proc = launch("status", *args)
        assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr

    detail = launch("status", ids["train"], check=True).stdout
    assert "best F1        0.6523 at checkpoint-200 (tiny_ner_eval)" in detail
