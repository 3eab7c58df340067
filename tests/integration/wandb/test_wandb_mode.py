"""`tracking.wandb.mode` in a cluster profile (issue 27, item 4): with `auto` and a W&B that does not
answer from the node, the job tries once (a few seconds), logs one line and goes offline; the sync
from the login node then sends the run. The key reaches the job through the environment only: it is
in no file of the run, and `launch sync` passes it to no command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.dead_endpoints import closed_port
from tests.support.paths import ROOT
from tests.support.wandb_server import running

KEY = "wandbkey" + "7" * 32


def test_auto_falls_back_to_offline_in_one_line_and_the_sync_sends_the_run(
    launch_env: dict[str, str], tmp_path: Path
) -> None:
    profile = tmp_path / "nodes.yaml"
    profile.write_text((ROOT / "cluster" / "local.yaml").read_text() + "tracking: {wandb: {mode: auto}}\n")
    env = {k: v for k, v in launch_env.items() if k != "WANDB_MODE"}
    env.update(WANDB_API_KEY=KEY, WANDB_BASE_URL=f"http://127.0.0.1:{closed_port()}")
    sets = ["train.max_steps=3", "tracking.wandb.mode=auto", "env={SMOKE_STEP_SECONDS: '0.05'}"]
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "recipe", "tiny_smoke", "-c", str(profile), "--follow",
         *(a for s in sets for a in ("--set", s))], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = proc.stdout.split()[0]
    run_dir = tmp_path / "runs" / run_id
    out = "".join(p.read_text() for p in (run_dir / "logs").glob("*.out"))
    (line,) = [line for line in out.splitlines() if line.startswith("W&B: ")]
    assert "cannot be reached (connection refused); logging offline" in line, line
    assert json.loads((run_dir / "launch.json").read_text())["wandb"]["train"]["mode"] == "offline"

    with running(tmp_path / "requests.jsonl") as server:
        env["WANDB_BASE_URL"] = server.url
        sync = [sys.executable, "-m", "launcher.cli", "sync", run_id, "--wandb"]
        synced = subprocess.run(sync, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert synced.returncode == 0, synced.stderr
        (held,) = server.runs().values()
    assert [row["train/global_step"] for row in held["history"]] == [1, 2, 3]
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix != ".wandb":
            assert KEY not in path.read_text(errors="replace"), path
