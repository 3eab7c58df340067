"""The backend contract's pieces in pure form: every backend declares the whole contract, a
follow-on job as each backend submits it (Slurm's script, Ray's spec, the local process), the
chain's FollowOn, and the Ray agent's `exec` entrypoint. No scheduler is asked."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from launcher.backends.base import BACKENDS, Backend
from launcher.backends.spec import FollowOn
from launcher.config.cluster import load_cluster
from launcher.runs.state import RunState


def _follow_on(tmp_path: Path, module: str = "launcher.loop.chain", args: tuple[str, ...] = ()) -> FollowOn:
    run_dir = tmp_path / "runs" / "tiny-1"
    (run_dir / "chain").mkdir(parents=True)
    return FollowOn(
        name="tiny-1-chain", title="recipe-launcher chain of run tiny-1", run_id="tiny-1", run_dir=run_dir,
        folder=run_dir / "chain", stem="chain", module=module, args=args or ("--run-dir", str(run_dir)),
        env={"LAUNCH_RUNS": str(run_dir.parent)}, minutes=90, workdir=tmp_path,
        code_dir=run_dir.parent / ".snapshots" / "0123456789abcdef",
    )  # fmt: skip


def test_every_backend_declares_the_whole_contract() -> None:
    assert {"submit_after", "submit", "status", "cancel", "logs", "translate"} <= Backend.__abstractmethods__
    for name, where in BACKENDS.items():
        module, cls = where.split(":")
        backend = getattr(importlib.import_module(module), cls)
        assert not backend.__abstractmethods__, f"{name}: {sorted(backend.__abstractmethods__)}"
        assert backend.name == name


def test_only_backends_that_send_one_script_for_an_array_say_so(tmp_path: Path) -> None:
    from launcher.backends.local import LocalBackend

    assert LocalBackend(load_cluster("local")).array_script([], 2) is None  # one by one: no single script


# ----------------------------------------------------------------------- Slurm


def _options(text: str) -> dict[str, str]:
    pairs = (line.removeprefix("#SBATCH --").partition("=") for line in text.splitlines())
    return {key: value for key, _, value in pairs if not key.startswith("#")}


def test_slurm_follow_on_waits_for_the_job_it_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from launcher.backends.slurm import render

    slurm = load_cluster("dev-slurm").slurm
    assert slurm is not None
    request = replace(_follow_on(tmp_path), workdir=Path("/project"))  # the script cds there
    text = render.follow_on_script(slurm, request, "1234", "/usr/bin/python3")
    options = _options(text)
    assert options["dependency"] == "afterok:1234"
    assert options["kill-on-invalid-dep"] == "yes"
    assert options["job-name"] == "tiny-1-chain" and options["time"] == "90"
    assert options["cpus-per-task"] == "1" and options["mem"] == "1G" and options["nodes"] == "1"
    assert options["output"] == str(request.out) and options["error"] == str(request.err)
    assert "requeue" not in options  # a follow-on is not requeued
    body = text.split("# command\n", 1)[1]
    assert body.splitlines()[1] == "# recipe-launcher chain of run tiny-1: starts once job 1234 completed"
    assert "cd /project || exit 1" in body and f"export LAUNCH_RUNS={request.run_dir.parent}" in body
    assert body.rstrip().endswith(f"exec /usr/bin/python3 -m launcher.loop.chain --run-dir {request.run_dir}")


def test_slurm_follow_on_drops_the_submitting_jobs_variables(tmp_path: Path) -> None:
    """The chain runs inside a Slurm job and submits jobs of its own: none of its SLURM_* variables
    may reach them."""
    from launcher.backends.slurm import render

    slurm = load_cluster("dev-slurm").slurm
    assert slurm is not None
    text = render.follow_on_script(slurm, _follow_on(tmp_path), "1", sys.executable)
    unset = next(line for line in text.splitlines() if "unset" in line)
    env = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "7", "SBATCH_X": "1", "SRUN_Y": "2", "SLURMISH": "3"}
    proc = subprocess.run(
        ["bash", "-c", f"{unset}; env"], env=env, capture_output=True, text=True, check=True
    )
    names = {line.split("=", 1)[0] for line in proc.stdout.splitlines()}
    assert {"SLURM_JOB_ID", "SBATCH_X", "SRUN_Y"}.isdisjoint(names) and "SLURMISH" in names


# ----------------------------------------------------------------------- Ray


class _Submitted(Exception):
    pass


def test_ray_follow_on_is_a_job_without_resources(
    tmp_path: Path, launch_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its spec is saved beside the chain's logs, its secrets file is written before the submit and
    removed when the submit fails; the agent's `exec` hands the secrets over."""
    from launcher.backends.ray import agent
    from launcher.backends.ray.backend import RayBackend
    from launcher.backends.ray.jobs import RayJobs

    monkeypatch.setenv("WANDB_API_KEY", "secret-value")
    request = _follow_on(tmp_path)
    sent: list[dict[str, Any]] = []

    def submit_spec(self: RayJobs, spec: dict[str, Any]) -> str:
        sent.append(spec)
        assert agent.secrets_file(request.run_dir.with_name("tiny-1-chain")).is_file()
        raise _Submitted

    monkeypatch.setattr(RayJobs, "client", lambda self, start=False: object())
    monkeypatch.setattr(RayJobs, "submit_spec", submit_spec)
    profile = load_cluster("ray")
    with pytest.raises(_Submitted):
        RayBackend(profile).submit_after(request, after="tiny-1")
    spec = sent[0]
    assert spec["submission_id"] == "tiny-1-chain" and spec["entrypoint_num_cpus"] == 0
    assert "-m launcher.backends.ray.agent exec -- " in spec["entrypoint"]
    assert spec["entrypoint"].endswith(f">>{request.out} 2>>{request.err}")
    assert spec["metadata"] == {"launch_chain_of": "tiny-1", "launch_run_dir": str(request.folder)}
    env = spec["runtime_env"]["env_vars"]
    assert env["LAUNCH_RUNS"] == str(request.run_dir.parent) and "WANDB_API_KEY" not in env
    assert spec["runtime_env"]["working_dir"] == str(request.code_dir)  # the run's snapshot is uploaded
    saved = (request.folder / "chain.yaml").read_text()
    assert "entrypoint_num_cpus: 0" in saved and "secret-value" not in saved
    assert not Path(env[agent.SECRETS_ENV]).exists()  # the submit failed: no secrets left behind


def test_agent_exec_hands_the_secrets_to_the_command(tmp_path: Path) -> None:
    from launcher.backends.ray import agent

    secrets = tmp_path / "s.json"
    agent.write_secrets(secrets, {"WANDB_API_KEY": "k"})
    code = "import os; print(os.environ.get('WANDB_API_KEY'), 'LAUNCH_SECRETS_FILE' in os.environ)"
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.backends.ray.agent", "exec", "--", sys.executable, "-c", code],
        env={**os.environ, agent.SECRETS_ENV: str(secrets)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["k", "False"]
    assert not secrets.exists()


# ----------------------------------------------------------------------- local


def test_local_follow_on_is_a_process_status_and_cancel_know(
    tmp_path: Path, launch_env: dict[str, str]
) -> None:
    from launcher.backends.local import LocalBackend

    backend = LocalBackend(load_cluster("local"))
    sleep = ("-n", "1", "-r", "1", "import time; time.sleep(60)")
    sleeper = _follow_on(tmp_path, module="timeit", args=sleep)
    job_id = backend.submit_after(sleeper, after="123@4")
    assert backend.status([job_id]) == {job_id: RunState.RUNNING}
    backend.cancel(job_id)
    assert backend.status([job_id]) == {job_id: RunState.CANCELLED}

    quick = FollowOn(**{**sleeper.__dict__, "args": ("-n", "1", "-r", "1", "pass")})
    job_id = backend.submit_after(quick, after="123@4")
    deadline = time.monotonic() + 30
    while backend.status([job_id])[job_id] is RunState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend.status([job_id]) == {job_id: RunState.FAILED}  # it records no outcome of its own
    assert "1 loop" in sleeper.out.read_text()
    assert backend.status(["999999@1"]) == {"999999@1": RunState.UNKNOWN}  # not one of ours


# ----------------------------------------------------------------------- the chain


def test_the_chain_asks_for_a_follow_on_of_its_training_run(tmp_path: Path) -> None:
    from launcher.loop.chain import DEFAULT_MINUTES, _follow_on
    from launcher.runs.registry import RunRow

    row = RunRow("tiny-1", "", "local", "local", "", str(tmp_path / "tiny-1"), "", None, 0, None, "", "")
    request = _follow_on(row, load_cluster("local"))
    assert (request.name, request.run_id) == ("tiny-1-chain", "tiny-1")
    assert request.folder == tmp_path / "tiny-1" / "chain"
    assert request.command("py") == ["py", "-m", "launcher.loop.chain", "--run-dir", str(tmp_path / "tiny-1")]
    assert request.minutes == DEFAULT_MINUTES and request.out == tmp_path / "tiny-1" / "chain" / "chain.out"
    assert {"PYTHONPATH", "LAUNCH_HOME", "LAUNCH_RUNS"} <= set(request.env)
    assert _follow_on(row, load_cluster("a800")).minutes == 240 * 60  # its limits.max_time


def test_the_chain_runs_the_snapshot_of_its_training_run(tmp_path: Path) -> None:
    """Its PYTHONPATH starts with the run's snapshot, it runs in the run's working directory, and
    a backend that uploads code gets the snapshot."""
    from launcher.loop.chain import _follow_on
    from launcher.runs.launch_info import CodeInfo, LaunchInfo
    from launcher.runs.registry import RunRow

    run_dir = tmp_path / "tiny-1"
    run_dir.mkdir()
    snap = tmp_path / ".snapshots" / "0123456789abcdef"
    code = CodeInfo(snapshot=snap.name, path=str(snap), workdir="/project", packages=["/src/launcher"])
    LaunchInfo(run_id="tiny-1", code=code).write(run_dir)
    row = RunRow("tiny-1", "", "local", "local", "", str(run_dir), "", None, 0, None, "", "")
    request = _follow_on(row, load_cluster("local"))
    assert request.env["PYTHONPATH"].split(os.pathsep)[0] == str(snap)
    assert request.env["PYTHONSAFEPATH"] == "1" and request.env["LAUNCH_CODE"] == snap.name
    assert request.workdir == Path("/project") and request.code_dir == snap
