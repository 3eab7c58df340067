"""`launch sync RUN|SWEEP|--all --wandb` against a W&B server on loopback.

There is no W&B server to install here (W&B's own server is a container image, not a PyPI
package), so the test starts tests/support/wandb_server.py: a real HTTP process, not an in-process mock,
that answers the GraphQL operations, file stream and uploads wandb-core sends while syncing, and
records each request. `launch sync` then runs wandb's real `wandb sync` against it through
WANDB_BASE_URL, so the test sees which offline runs were selected (by the W&B run ids that reach
the server), that wandb's own upload path ran to completion, and that a server refusal is one
line and exit 1. The offline runs are written by jobs/wandb_run.py itself (W&B offline), in the
run directories of a real local smoke run and of registry rows shaped as an evaluation (parent =
the run) and as sweep points (parent = the sweep id).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher.runs.registry import Registry
from launcher.tracking import wandb_sync
from tests.support.cli import Launch, cli_runner, isolated_env
from tests.support.wandb_server import Server, running

SWEEP = "sweep-tiny_smoke-20261201-2330-ab12"

API_KEY = "k" * 40


@dataclass
class World:
    launch: Launch
    env: dict[str, str]
    root: Path
    run_id: str
    ids: dict[str, str]
    """launcher run id -> its W&B run id"""


def _offline_runs(dirs: list[Path], env: dict[str, str]) -> None:
    """Start and finish one offline W&B run in each directory through jobs/wandb_run.py."""
    code = (
        "import sys\nfrom pathlib import Path\nfrom jobs.wandb_run import start\n"
        "from launcher.config.recipe import read_resolved\n"
        "for d in map(Path, sys.argv[1:]):\n"
        "    run = start(read_resolved(d), d, 'train')\n    run.log({'loss': 1.0})\n    run.finish()\n"
    )
    env = {**env, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", code, *map(str, dirs)], env=env, check=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("wandb-sync")
    env = isolated_env(root)
    launch = cli_runner(env)
    proc = launch(
        "recipe", "tiny_smoke", "-c", "local", "--follow", "--set", "train.max_steps=1",
        "--set", "tracking.wandb.mode=offline", "--set", f"artifacts.uri={root / 'store'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split()[0]
    runs = root / "runs"
    registry = Registry(root / "home" / "registry.db")
    others = {f"{run_id}-eval": run_id, "point-1": SWEEP, "point-2": SWEEP, "other": None}
    for name, parent in others.items():
        run_dir = runs / name
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "recipe.yaml").write_text((runs / run_id / "recipe.yaml").read_text())
        (run_dir / "launch.json").write_text(json.dumps({"run_id": name}))
        registry.add(name, "tiny_smoke", "local", "local", "smoke", run_dir, [], "completed", parent=parent)
    registry.close()
    _offline_runs([runs / n for n in others], env)  # the smoke job logged its own (W&B offline)
    ids = {}
    for name in [run_id, *others]:
        (found,) = wandb_sync.offline_dirs(runs / name)
        ids[name] = found.name.rsplit("-", 1)[1]
    return World(launch, env, root, run_id, ids)


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[Server]:
    with running(world.root / "requests.jsonl") as srv:
        yield srv


def _sync(world: World, server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**world.env, "WANDB_BASE_URL": server.url, "WANDB_API_KEY": API_KEY}
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", "sync", *args], env=env, cwd=world.root,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_refused_sync_is_one_line_exit_1_in_status_and_the_next_sync_sends_it(
    world: World, server: Server
) -> None:
    assert "W&B not synced" not in world.launch("status", "--all").stdout  # its facts cached
    with running(world.root / "refused.jsonl", "--status", "403") as refusing:
        proc = _sync(world, refusing, "other", "--wandb")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: 1 of 1 W&B run(s) not synced: other (W&B run {world.ids['other']}): ")
    assert "403" in line and API_KEY not in line, line
    assert refusing.asked("RunResumeStatus") == {world.ids["other"]}  # it was asked, and refused
    status = world.launch("status").stdout
    (shown,) = [s for s in status.splitlines() if "W&B not synced" in s]
    assert "403" in shown, status
    assert shown in world.launch("status", "--all").stdout.splitlines()  # the sync forgot them

    again = _sync(world, server, "other", "--wandb")  # W&B answers now: what was kept is sent
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"synced other (W&B run {world.ids['other']}): steps 0-0 sent\n"
    assert server.runs()[world.ids["other"]]["history"][0]["loss"] == 1.0
    assert "W&B not synced" not in world.launch("status").stdout
    assert "W&B not synced" not in world.launch("status", "--all").stdout


def test_sync_of_a_run_uploads_it_and_its_evaluations(world: World, server: Server) -> None:
    proc = _sync(world, server, world.run_id, "--wandb")
    assert proc.returncode == 0, proc.stderr
    eval_id = f"{world.run_id}-eval"
    assert server.asked() >= {world.ids[world.run_id], world.ids[eval_id]}
    lines = proc.stdout.splitlines()
    assert [line.split()[1] for line in lines] == [world.run_id, eval_id]
    assert f"(W&B run {world.ids[world.run_id]})" in lines[0]
    assert f"{world.run_id}: 2 W&B run(s) synced, 0 already up to date" in proc.stderr
    held = server.runs()[world.ids[world.run_id]]
    (row,) = held["history"]
    assert (row["_step"], row["train/global_step"], row["train/loss"]) == (1, 1, 1.0)
    assert held["config"]["name"] == "tiny_smoke" and held["exitcode"] == 0
    assert held["summary"]["launcher/state"] == "completed" and "launcher:completed" in held["tags"]

    before = len(server.requests())
    again = _sync(world, server, world.run_id, "--wandb")
    assert again.returncode == 0 and again.stdout == ""
    assert "0 W&B run(s) synced, 2 already up to date" in again.stderr
    assert len(server.requests()) == before  # nothing new: W&B is not even asked


def test_sync_of_a_sweep_uploads_every_point(world: World, server: Server) -> None:
    before = server.asked()
    proc = _sync(world, server, SWEEP, "--wandb")
    assert proc.returncode == 0, proc.stderr
    assert server.asked() - before == {world.ids["point-1"], world.ids["point-2"]}
    assert [line.split()[1] for line in proc.stdout.splitlines()] == ["point-1", "point-2"]


def test_sync_all_uploads_what_is_left(world: World, server: Server) -> None:
    proc = _sync(world, server, "--all", "--wandb")
    assert proc.returncode == 0, proc.stderr
    assert set(server.runs()) == set(world.ids.values())
    assert "all runs: 0 W&B run(s) synced, 5 already up to date" in proc.stderr


def test_without_wandb_the_artifact_store_sync_is_unchanged(world: World, server: Server) -> None:
    before = server.log.read_text()
    proc = _sync(world, server, world.run_id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{world.run_id}: ") and "unit(s) uploaded" in proc.stdout
    assert server.log.read_text() == before  # W&B was not asked anything


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wandb"], "name one RUN or SWEEP, or give --all"),
        (["x", "--all", "--wandb"], "name one RUN or SWEEP, or give --all"),
        (["--all"], "--all and --follow go with --wandb"),
        (["nope", "--wandb"], "unknown run 'nope'"),
    ],
)
def test_bad_sync_arguments_are_one_line_exit_2(
    world: World, server: Server, args: list[str], message: str
) -> None:
    proc = _sync(world, server, *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
