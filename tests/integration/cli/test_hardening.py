"""Hostile or broken input past validation, through the CLI (issue 11): listings and tables that meet
a bad file, the registry row written before the submit, a damaged registry, prefixes that name one
training run, a row left submitting."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from launcher.runs.find import find_row
from launcher.runs.registry import Registry
from launcher.runs.state import RunState
from tests.support.cli import Launch

FAST = ["--set", "env.SMOKE_STEP_SECONDS=0", "--set", "train.max_steps=2"]


# ---------------------------------------------------------------- item 13: listings, tables, paths
@pytest.mark.parametrize("kind,verb", [("recipes", "recipes"), ("clusters", "clusters")])
def test_a_non_utf8_file_shows_its_error_in_its_row(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path, kind: str, verb: str
) -> None:
    folder = tmp_path / "home" / kind
    folder.mkdir(parents=True)
    (folder / "broken.yaml").write_bytes(b"# caf\xe9\nname: broken\n")
    (folder / "twice.yaml").write_text("name: twice\nname: again\n")
    launch_env["COLUMNS"] = "200"
    proc = launch(verb, check=True)
    assert "Traceback" not in proc.stderr
    rows = {line.split()[1]: line for line in proc.stdout.splitlines() if line.startswith("│ ")}
    assert "not UTF-8" in rows["broken"], proc.stdout
    assert "duplicate key" in rows["twice"], proc.stdout
    assert ("tiny_smoke" if kind == "recipes" else "local") in rows, "the other rows are gone"


def _results(run_dir: Path, checkpoint: str, metrics: str) -> None:
    (run_dir / "results" / checkpoint).mkdir(parents=True)
    (run_dir / "results" / checkpoint / "metrics.json").write_text(metrics)


def test_bench_skips_a_malformed_metrics_file_with_a_warning(launch: Launch, tmp_path: Path) -> None:
    good = {"strict": {"precision": 0.5, "recall": 0.25, "f1": 0.3333}, "step": 10, "sentences": 3}
    run_dir = tmp_path / "runs" / "mine-20261201-1200-ab12"
    run_dir.mkdir(parents=True)
    (run_dir / "recipe.yaml").write_text(launch("show", "tiny_ner", check=True).stdout)
    _results(run_dir, "checkpoint-10", json.dumps(good))
    _results(run_dir, "checkpoint-20", '{"strict": {"precision": 0.5,')
    _results(run_dir, "checkpoint-30", json.dumps({"strict": "none", "step": 30}))
    _results(run_dir, "checkpoint-40", "[" * 100_000)
    proc = launch("bench", str(run_dir), "--no-wandb", "-o", str(tmp_path / "bench"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 3, proc.stderr
    assert "checkpoint-20/metrics.json: not JSON" in proc.stderr
    assert "checkpoint-40/metrics.json: JSON nested too deeply" in proc.stderr
    csv = (tmp_path / "bench" / "benchmark.csv").read_text()
    assert "checkpoint-10" in csv and "checkpoint-20" not in csv and "0.3333" in csv


def _stand_in(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_the_row_is_written_before_the_submit_and_a_failed_submit_leaves_nothing(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """A stand-in sbatch (first on PATH; sinfo stays the real one) reads the registry, then refuses."""
    seen = tmp_path / "seen.json"
    _stand_in(
        tmp_path / "bin", "sbatch",
        "import json, os, sqlite3, sys\n"
        "db = sqlite3.connect(os.path.join(os.environ['LAUNCH_HOME'], 'registry.db'))\n"
        f"rows = db.execute('SELECT run_id, state FROM runs').fetchall()\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(rows))\n"
        "print('sbatch: error: Batch job submission failed: stand-in says no', file=sys.stderr)\n"
        "sys.exit(1)\n",
    )  # fmt: skip
    launch_env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{launch_env['PATH']}"
    proc = launch("recipe", "tiny_smoke", "-c", "dev-slurm")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: sbatch refused: sbatch: error: Batch job submission "
                                                "failed: stand-in says no"]  # fmt: skip
    rows = json.loads(seen.read_text())
    assert len(rows) == 1 and rows[0][1] == RunState.SUBMITTING and rows[0][0].startswith("tiny_smoke-"), rows
    # the code snapshot stays (a content store the runs share, pruned by `launch snapshots --prune`)
    left = [p.name for p in (tmp_path / "runs").iterdir() if p.name != ".snapshots"]
    assert not left, "the run directory of the failed submit is left"
    count = sqlite3.connect(tmp_path / "home" / "registry.db").execute("SELECT COUNT(*) FROM runs")
    assert count.fetchone()[0] == 0


def test_a_damaged_registry_fails_before_anything_is_submitted(launch: Launch, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "registry.db").write_bytes(b"\x00garbage" * 1000)
    before = set(Path("/proc").glob("[0-9]*"))
    proc = launch("recipe", "tiny_smoke", "-c", "local", *FAST)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    started = [
        p for p in set(Path("/proc").glob("[0-9]*")) - before if "launcher.backends.local" in _cmdline(p)
    ]
    assert not started, "a supervisor was started"


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


# ---------------------------------------------------------------- item 15: a prefix names one training run
def test_a_prefix_resolves_to_the_one_training_run(launch: Launch, tmp_path: Path, launch_env: dict) -> None:
    registry = Registry()
    runs = tmp_path / "runs"
    train_id, eval_ids = (
        "tiny_ner-20261201-1200-ab12",
        ["tiny_ner_eval-20261201-1300-cd34", "tiny_ner_eval-x"],
    )
    run_dir = runs / train_id
    run_dir.mkdir(parents=True)
    (run_dir / "recipe.yaml").write_text(launch("show", "tiny_ner", check=True).stdout)
    registry.add(train_id, "tiny_ner", "local", "local", "train", run_dir, ["1"], state="completed")
    for eval_id in eval_ids:
        registry.add(eval_id, "tiny_ner_eval", "local", "local", "evaluate", runs / eval_id, ["2"],
                     state="completed", parent=train_id)  # fmt: skip
    assert find_row(registry, "tiny_ner", ["train"]).run_id == train_id
    with pytest.raises(Exception, match="ambiguous"):
        find_row(registry, "tiny_ner")  # status and logs: any run, so still ambiguous
    proc = launch("reeval", "tiny_ner", "--cluster", "local")
    assert proc.returncode == 0, proc.stderr
    assert f"nothing to do: {train_id} has no complete checkpoint yet" in proc.stdout
    (run_dir / "results" / "checkpoint-10").mkdir(parents=True)
    metrics = {"strict": {"precision": 0.5, "recall": 0.5, "f1": 0.5}, "step": 10}
    (run_dir / "results" / "checkpoint-10" / "metrics.json").write_text(json.dumps(metrics))
    bench = launch("bench", "tiny_ner", "--no-wandb", "-o", str(tmp_path / "bench"))
    assert bench.returncode == 0, bench.stderr
    assert train_id in (tmp_path / "bench" / "benchmark.csv").read_text()


def test_a_row_left_submitting_is_shown_and_ended_by_cancel(launch: Launch, tmp_path: Path) -> None:
    """A launcher that died between registering and submitting leaves a row that says so; cancel
    asks the backend for a job of the run (none here) and ends the row (it used to refuse it)."""
    registry = Registry()
    run_id = "tiny_smoke-20261201-1200-dead"
    state = RunState.SUBMITTING.value
    registry.add(run_id, "tiny_smoke", "local", "local", "smoke", tmp_path / "runs" / run_id, [], state=state)
    assert RunState.SUBMITTING in launch("status", check=True).stdout
    assert "submitting" in launch("status", run_id, check=True).stdout
    proc = launch("cancel", run_id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{run_id}: cancelled"
    detail = launch("status", run_id, check=True).stdout
    assert "cancelled" in detail and "no job of it had reached the scheduler" in detail
