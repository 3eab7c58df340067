"""Hostile input on the local backend for real: Rich markup in the runs path, run-id collisions."""

from __future__ import annotations

from pathlib import Path

from launcher.runs import service as launching
from launcher.runs.refresh import refresh
from launcher.runs.registry import Registry
from tests.support.cli import Launch, wait_for

FAST = ["--set", "env.SMOKE_STEP_SECONDS=0", "--set", "train.max_steps=2"]


def test_rich_markup_in_the_runs_path_is_printed_as_it_is(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    runs = tmp_path / "m[/bad]" / "[bold]runs"
    launch_env["LAUNCH_RUNS"] = str(runs)
    proc = launch("recipe", "tiny_smoke", "-c", "local", *FAST, "--follow")
    assert proc.returncode == 0, proc.stderr
    assert f"run directory: {runs}/" in proc.stderr
    run_id = proc.stdout.split()[0]
    status = launch("status", run_id, check=True).stdout
    assert str(runs) in status and "completed" in status
    assert run_id in launch("status", check=True).stdout


# ---------------------------------------------------------------- item 11 and 13: the registry row first
def test_a_run_id_collision_takes_a_new_suffix(launch_env: dict[str, str], tmp_path: Path) -> None:
    registry = Registry()
    first = launching.prepare("tiny_smoke", "local", FAST[1::2])
    first.run.run_dir.mkdir(parents=True)  # someone made that directory, unregistered
    planned = first.run.run_id
    job = launching.submit(first, registry)
    assert first.run.run_id != planned and first.run.run_id.startswith("tiny_smoke-")
    assert (tmp_path / "runs" / first.run.run_id / "submit.sh").read_text().count(first.run.run_id) >= 1
    assert planned not in (tmp_path / "runs" / first.run.run_id / "submit.sh").read_text()
    second = launching.prepare("tiny_smoke", "local", FAST[1::2])
    second.run.run_id, second.run.run_dir = first.run.run_id, first.run.run_dir  # registered and on disk
    second.request = second.backend.dryrun(second.run)
    launching.submit(second, registry)
    ids = {row.run_id: row.job_ids for row in registry.all()}
    assert len(ids) == 2 and ids[first.run.run_id] == [job], ids
    for run_id in ids:
        wait_for(lambda r=run_id: refresh(registry, [registry.get(r)])[0].state == "completed")
