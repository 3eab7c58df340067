"""`launch status --all` shows an ended run from the facts cached in the registry without looking in
its directory; `--fresh` looks, and `launch sync` (which changes an ended run's files) makes the
registry read them again. A real local smoke run with a local artifact store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import Launch


def _line_of(launch: Launch, run_id: str, *args: str) -> list[str]:
    """The --all table's line of `run_id` (without its age, which ticks) and the summary lines under it."""
    proc = launch("status", "--all", *args)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(run_id))
    below = [line for line in lines[at + 1 :] if line.startswith("  ")]
    run, state, cluster, _age, *rest = lines[at].split()
    return [" ".join([run, state, cluster, *rest]), *below]


def test_all_trusts_cached_facts_fresh_looks_and_sync_forgets(launch: Launch, tmp_path: Path) -> None:
    proc = launch(
        "recipe", "tiny_smoke", "-c", "local", "--follow", "--set", "train.max_steps=1",
        "--set", f"artifacts.uri={tmp_path / 'store'}", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split()[0]
    run_dir = tmp_path / "runs" / run_id
    before = _line_of(launch, run_id)
    assert not any("uploads" in line for line in before), before

    ledger = json.loads((run_dir / "uploads.json").read_text())  # replaced outside `launch`
    ledger["units"]["recipe.yaml"]["state"] = "failed"
    (run_dir / "edited.json").write_text(json.dumps(ledger))
    (run_dir / "edited.json").replace(run_dir / "uploads.json")
    assert _line_of(launch, run_id) == before  # the cached facts, the directory not looked at
    fresh = _line_of(launch, run_id, "--fresh")
    assert "  uploads: 1 pending" in fresh, fresh
    assert _line_of(launch, run_id) == fresh  # what --fresh read is what is cached now

    synced = launch("sync", run_id)
    assert synced.returncode == 0, synced.stderr
    after = _line_of(launch, run_id)  # without --fresh: the sync made the registry forget
    assert not any("uploads" in line for line in after), after
