"""A requeued run on W&B (issue 27, item 2): two offline segments of one W&B run, as a run that was
requeued and resumed from an earlier checkpoint leaves them (steps 1-16, then 11-40), synced to the
recording W&B server (tests/support/wandb_server.py), which keeps history at the offsets the file
stream names and answers RunResumeStatus as W&B does.

wandb's own `wandb sync` (what `launch sync --wandb` ran before) resumes the second segment after
the first, but sends the steps the requeue did again (11-16 twice), and a second sync sends it all
again. `launch sync --wandb` leaves W&B holding steps 1..40 once, in order, with the config.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher.runs.registry import Registry
from launcher.tracking import wandb_sync
from tests.support.cli import isolated_env
from tests.support.wandb_server import running

RUN_ID = "tiny_smoke-20261206-0900-ab12"
KEY = "k" * 40
SEGMENT = """
import sys
from pathlib import Path
from jobs.wandb_run import start
from launcher.config.recipe import read_resolved
d, first, last = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
run = start(read_resolved(d), d, "train")
for step in range(first, last + 1):
    run.log({"train/loss": round(1 / step, 6), "train/global_step": step})
run.finish()
"""


@dataclass
class World:
    root: Path
    env: dict[str, str]
    run_dir: Path
    segments: list[Path]
    wandb_id: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("wandb-requeue")
    env = isolated_env(root)
    run_dir = root / "runs" / RUN_ID
    (run_dir / "logs").mkdir(parents=True)
    shown = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "show", "tiny_smoke", "--set", "tracking.wandb.mode=offline"],
        env=env, cwd=root, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    (run_dir / "recipe.yaml").write_text(shown.stdout)
    (run_dir / "launch.json").write_text(f'{{"run_id": "{RUN_ID}"}}')
    for first, last in [(1, 16), (11, 40)]:  # the second start resumed from checkpoint-10
        quiet = {**env, "WANDB_SILENT": "true"}
        subprocess.run([sys.executable, "-c", SEGMENT, str(run_dir), str(first), str(last)], env=quiet,
                       cwd=root, check=True, timeout=120)  # fmt: skip
    registry = Registry(root / "home" / "registry.db")
    registry.add(RUN_ID, "tiny_smoke", "local", "local", "smoke", run_dir, [], "completed")
    registry.close()
    segments = wandb_sync.offline_dirs(run_dir)
    assert len(segments) == 2 and len({s.name.rsplit("-", 1)[1] for s in segments}) == 1, segments
    return World(root, {**env, "WANDB_API_KEY": KEY}, run_dir, segments, segments[0].name.rsplit("-", 1)[1])


def _steps(history: list[dict[str, object]]) -> list[object]:
    return [row.get("train/global_step") for row in history]


def test_wandbs_own_sync_sends_the_requeued_steps_twice(world: World) -> None:
    with running(world.root / "wandb-sync.jsonl") as server:
        env = {**world.env, "WANDB_BASE_URL": server.url}
        for _ in range(2):  # a sync, then a second one (as a sync of a growing run would)
            args = ["sync", "--include-synced", *map(str, world.segments)]
            subprocess.run([sys.executable, "-m", "wandb", *args], env=env, cwd=world.root,
                           capture_output=True, check=True, timeout=120)  # fmt: skip
        held = server.runs()[world.wandb_id]
    once = [*range(1, 17), *range(11, 41)]
    assert _steps(held["history"]) == once + once  # 11-16 twice per sync; everything twice
    for file in world.segments:
        for marker in file.glob("*.wandb.sync*"):  # leave the files as the job left them
            marker.unlink()


def test_launch_sync_leaves_every_step_once_in_order_with_the_config(world: World) -> None:
    with running(world.root / "launch-sync.jsonl") as server:
        env = {**world.env, "WANDB_BASE_URL": server.url}
        sync = [sys.executable, "-m", "launcher.cli", "sync", RUN_ID, "--wandb"]
        proc = subprocess.run(sync, env=env, cwd=world.root, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"synced {RUN_ID} (W&B run {world.wandb_id}): steps 1-40 sent\n"
        again = subprocess.run(sync, env=env, cwd=world.root, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and again.stdout == "", again.stderr
        held = server.runs()[world.wandb_id]
        streamed = [e for e in server.requests() if e["path"].endswith("/file_stream")]
    assert _steps(held["history"]) == list(range(1, 41))
    assert [row["_step"] for row in held["history"]] == list(range(1, 41))
    assert [row["train/loss"] for row in held["history"]][10] == round(1 / 11, 6)
    assert held["config"]["name"] == "tiny_smoke" and held["summary"]["launcher/restarts"] == 0
    offsets = [
        e["files"]["wandb-history.jsonl"]["offset"] for e in streamed if "wandb-history.jsonl" in e["files"]
    ]
    assert offsets and offsets[0] == 0 and offsets == sorted(offsets)
