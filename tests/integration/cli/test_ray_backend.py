"""The Ray backend through the CLI without a head: `launch` never imports ray, and a dry run prints
the job spec and starts nothing."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.cli import Launch
from tests.support.ray_head import _free_ports, _profile


def test_cli_does_not_import_ray(launch: Launch, launch_env: dict[str, str]) -> None:
    launch("recipe", "tiny_smoke", "-c", "local", "--set", "train.max_steps=1", "--follow", check=True)
    for args in (["--help"], ["status"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "launcher.cli", *args], env=launch_env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
        assert not {m for m in modules if m == "ray" or m.startswith("ray.")}, args


def test_dry_run_prints_the_job_spec_and_starts_nothing(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    (port,) = _free_ports(1)
    profile = _profile(tmp_path / "raylocal.yaml", "local", f", dashboard_port: {port}")
    launch_env["WANDB_API_KEY"] = "ray-secret-value-123"
    proc = launch("recipe", "tiny_smoke", "-c", str(profile), "--dry-run", check=True)
    assert "ray-secret-value-123" not in proc.stdout + proc.stderr
    assert "never in the spec: " in proc.stdout and "WANDB_API_KEY=***" in proc.stdout
    assert "-m launcher.backends.ray.agent job --run-dir" in proc.stdout and "-m jobs.smoke" in proc.stdout
    assert f"http://127.0.0.1:{port}" in proc.stdout
    snapshot = rf"working_dir: {re.escape(str(tmp_path))}/runs/\.snapshots/[0-9a-f]{{16}}\n"
    assert re.search(snapshot, proc.stdout)  # the code snapshot is uploaded, never the checkout
    live = launch("recipe", "tiny_smoke", "-c", str(profile), "--dry-run", "--live-code")
    assert live.returncode == 2 and "ray.working_dir: upload, which sends the cluster a copy" in live.stderr
    assert "entrypoint_num_gpus: 0" in proc.stdout and "entrypoint_num_cpus: 1" in proc.stdout
    assert not (tmp_path / "runs").exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the dry run started a head"
    multi = launch("recipe", "tiny_smoke", "-c", str(profile), "--dry-run", "--set", "resources.nodes=2")
    assert multi.returncode == 2 and "runs a job on one node" in multi.stderr
