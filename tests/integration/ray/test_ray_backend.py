"""The Ray backend against a real Ray head on loopback (2 CPUs, 2 logical GPUs), started once.

The head is started by the launcher's own `start_local_head` (what `address: local` runs) on free
ports and a private temp dir, and its process group is killed at the end: nothing else's Ray is
touched. Without ray installed these tests fail with the install hint.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import Launch, run_state, wait_for
from tests.support.ray_head import Head, _free_ports, _profile, session_listeners

pytestmark = pytest.mark.ray

SMOKE_FAST = ["--set", "env={SMOKE_STEP_SECONDS: '0.1'}"]

EVAL = ["--set", "resources.cpus_per_gpu=1", "--set", "eval.max_samples=8", "--set", "eval.max_new_tokens=16"]

Run = Callable[..., subprocess.CompletedProcess]


def _submit(launch: Launch, head: Head, *args: str) -> str:
    proc = launch("recipe", "tiny_smoke", "--cluster", str(head.profile), *args, check=True)
    return proc.stdout.splitlines()[0]


def _detail(launch: Launch, run_id: str) -> str:
    return str(launch("status", run_id, check=True).stdout)


def _spans(run_dirs: list[Path]) -> list[tuple[float, float]]:
    """(started, ended) of each run, as the job wrapper recorded them."""
    records = [json.loads((d / ".ray_exit.json").read_text()) for d in run_dirs]
    return [(r["started"], r["ended"]) for r in records]


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    return max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)


def test_bad_and_dead_addresses_are_one_line_errors(launch: Launch, tmp_path: Path) -> None:
    bad = _profile(tmp_path / "raybad.yaml", "ftp://nowhere")
    proc = launch("recipe", "tiny_smoke", "-c", str(bad), "--dry-run")
    assert proc.returncode == 2 and "ray.address: 'ftp://nowhere' is not an address" in proc.stderr
    (port,) = _free_ports(1)
    dead = _profile(tmp_path / "raydead.yaml", f"http://127.0.0.1:{port}")
    proc = launch("recipe", "tiny_smoke", "-c", str(dead))
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "does not answer" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert "runs (0)" in launch("status", check=True).stdout
    client = _profile(tmp_path / "rayclient.yaml", f"ray://127.0.0.1:{port}", ", dashboard_port: 1")
    proc = launch("recipe", "tiny_smoke", "-c", str(client))
    assert proc.returncode == 2 and "http://127.0.0.1:1 does not answer" in proc.stderr, proc.stderr


def test_too_many_gpus_is_refused_before_anything_is_created(
    launch: Launch, head: Head, tmp_path: Path
) -> None:
    proc = launch("recipe", "tiny_smoke", "-c", str(head.profile), "--set", "resources.gpus_per_node=3")
    assert proc.returncode == 2, proc.stderr
    assert "resources.gpus_per_node: 3 is more than the 2 GPUs" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert "runs (0)" in launch("status", check=True).stdout


def test_pending_when_the_cluster_did_not_say_its_resources(
    launch: Launch, head: Head, monkeypatch: pytest.MonkeyPatch
) -> None:
    from launcher.backends.ray import backend as ray_backend
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry

    with monkeypatch.context() as patch:
        patch.setattr(ray_backend, "cluster_nodes", lambda url: None)  # a cluster that does not say
        prepared = launching.prepare("tiny_smoke", str(head.profile), ["resources.gpus_per_node=3"])
        launching.submit(prepared, Registry())
    run_id = prepared.run.run_id
    detail = _detail(launch, run_id)
    assert "pending" in detail and "no node can hold it" in detail and "2 GPUs" in detail, detail
    assert "cancelled" in launch("cancel", run_id, check=True).stdout


def test_address_local_reuses_the_running_head(launch: Launch, head: Head, tmp_path: Path) -> None:
    profile = _profile(tmp_path / "raylocal.yaml", "local", f", dashboard_port: {head.dashboard_port}")
    proc = launch("recipe", "tiny_smoke", "-c", str(profile), "--follow", "--set", "train.max_steps=2")
    assert proc.returncode == 0, proc.stderr
    assert "step 2/2" in proc.stdout


def test_dying_job_is_failed_with_its_log_tail(launch: Launch, head: Head) -> None:
    proc = launch(
        "recipe", "tiny_smoke", "-c", str(head.profile), "--follow", "--set", "env={SMOKE_FAIL_AT: '2'}",
        "--set", "train.max_steps=5",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    run_id = proc.stdout.splitlines()[0]
    detail = _detail(launch, run_id)
    assert "failed" in detail and "exit code 1" in detail and "failing at step 2" in detail, detail


def test_time_limit_is_a_timeout(launch: Launch, head: Head) -> None:
    run_id = _submit(launch, head, "--set", "train.max_steps=1000", "--set", "resources.time=00:02")
    wait_for(lambda: run_state(launch, run_id) == "timeout", timeout=60, every=1)
    assert "time limit" in _detail(launch, run_id)


def test_logs_follow_cancel_and_secrets(
    launch: Launch, head: Head, launch_env: dict[str, str], tmp_path: Path
) -> None:
    launch_env["WANDB_API_KEY"] = "ray-secret-value-456"
    run_id = _submit(launch, head, "--set", "train.max_steps=1000", *SMOKE_FAST)
    run_dir = tmp_path / "runs" / run_id
    follower = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "logs", run_id, "-f"], env=launch_env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        log = run_dir / "logs" / "task0.out"
        wait_for(lambda: log.exists() and "step 3/" in log.read_text(), timeout=60)
        assert run_state(launch, run_id) == "running"
        assert "cancelled" in launch("cancel", run_id, check=True).stdout
        out, _ = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert "step 1/1000" in out and "step 3/1000" in out
    assert run_state(launch, run_id) == "cancelled"
    gone = subprocess.run(["pgrep", "-f", "--", f"--run-dir {run_dir}"], capture_output=True, text=True)
    assert not gone.stdout.strip(), "job processes survived the cancel"
    for name in ("submit.sh", "launch.json", "recipe.yaml"):
        assert "ray-secret-value-456" not in (run_dir / name).read_text()
    from ray.job_submission import JobSubmissionClient

    sent = JobSubmissionClient(head.url).get_job_info(run_id).runtime_env or {}
    assert "WANDB_API_KEY" not in sent.get("env_vars", {})  # it went in the 0600 file, now deleted
    secrets_file = tmp_path / "runs" / ".ray-secrets" / f"{run_id}.json"
    assert sent["env_vars"]["LAUNCH_SECRETS_FILE"] == str(secrets_file)
    assert "entrypoint: exec " in (run_dir / "submit.sh").read_text()


def test_array_cap_and_cancel_while_queued(
    launch: Launch, head: Head, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry

    settings = ["train.max_steps=8", "env={SMOKE_STEP_SECONDS: '0.2'}"]
    prepared = [launching.prepare("tiny_smoke", str(head.profile), settings) for _ in range(3)]
    run_ids = [p.run.run_id for p in prepared]
    launching.submit_many(prepared, Registry(), max_parallel=1)
    detail = _detail(launch, run_ids[2])
    assert "pending" in detail and "queued by array supervisor" in detail, detail
    assert "cancelled" in launch("cancel", run_ids[2], check=True).stdout
    wait_for(lambda: all(run_state(launch, r) == "completed" for r in run_ids[:2]), timeout=120, every=1)
    assert run_state(launch, run_ids[2]) == "cancelled"
    dirs = [tmp_path / "runs" / r for r in run_ids]
    assert not (dirs[2] / ".ray_exit.json").exists(), "a cancelled queued entry ran"
    spans = _spans(dirs[:2])
    assert _most_at_once(spans) == 1, spans  # 2 CPUs would fit both: the cap kept them apart
    assert "array supervisor" in (dirs[0] / "submit.sh").read_text()


@pytest.fixture(scope="module")
def trained(run: Run, env: dict[str, str], head: Head) -> Path:
    proc = run(
        "recipe", "tiny_ner", "--cluster", str(head.profile), "--follow", "--set", "train.max_steps=20",
        "--set", "train.save_steps=7", "--set", "data.max_train_samples=160",
        "--set", "tracking.wandb.mode=disabled",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(env["LAUNCH_RUNS"]) / proc.stdout.split()[0]


@pytest.mark.slow
def test_tiny_training_job_completes_with_checkpoints(trained: Path, run: Run, head: Head) -> None:
    checkpoints = sorted((trained / "checkpoints").iterdir(), key=lambda p: int(p.name.split("-")[1]))
    assert [p.name for p in checkpoints] == ["checkpoint-7", "checkpoint-14", "checkpoint-20"]
    assert all((p / "COMPLETE").exists() for p in checkpoints)
    detail = run("status", trained.name).stdout
    assert "completed" in detail and "(ray)" in detail
    assert "-m jobs.train --run-dir" in (trained / "submit.sh").read_text()
    logs = run("logs", trained.name)
    assert logs.returncode == 0 and "trained to step 20/20" in logs.stdout
    # the logs live in the run directory: they outlive the cluster
    info = json.loads((trained / "launch.json").read_text())
    info["extra"]["profile"]["ray"]["address"] = f"http://127.0.0.1:{_free_ports(1)[0]}"
    (trained / "launch.json").write_text(json.dumps(info))
    assert "trained to step 20/20" in run("logs", trained.name).stdout


@pytest.mark.slow
def test_reeval_spreads_three_checkpoints_over_the_cluster(
    trained: Path, run: Run, env: dict[str, str], head: Head
) -> None:
    proc = run(
        "reeval", trained.name, "--cluster", str(head.profile), "--max-parallel", "2", "--follow", *EVAL
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_ids = proc.stdout.split()
    assert len(run_ids) == 3 and "3/3 evaluation(s) completed" in proc.stderr
    for step in (7, 14, 20):
        metrics = json.loads(
            next((trained / "results" / f"checkpoint-{step}").glob("*/metrics.json")).read_text()
        )
        assert metrics["step"] == step and metrics["run_id"] in run_ids
    dirs = [Path(env["LAUNCH_RUNS"]) / r for r in run_ids]
    assert _most_at_once(_spans(dirs)) <= 2
    assert "array supervisor" in (dirs[0] / "submit.sh").read_text()
    again = run("reeval", trained.name, "--cluster", str(head.profile), *EVAL)
    assert "nothing to do" in again.stdout, again.stderr


def _head_listeners(pgid: int) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening socket of the head (tests.support.ray_head)."""
    return session_listeners({pgid})


def _outside_addresses() -> list[str]:
    """This machine's IP addresses other than loopback (link-local IPv6 ones carry their %interface)."""
    import psutil

    families = (socket.AF_INET, socket.AF_INET6)
    addrs = [addr for found in psutil.net_if_addrs().values() for addr in found if addr.family in families]
    return [addr.address for addr in addrs if addr.address not in LOOPBACK]


LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")

RAY_DEFAULT_PORTS = {6379, 8265, 10001, 52365, 52367, 44217, 44227, 8076, 8077}

BUSY_DRIVER = """
import time, ray
ray.init()
@ray.remote(num_cpus=0)
class Pinger:
    def ping(self):
        return "pong"
pinger = Pinger.remote()
assert ray.get(pinger.ping.remote()) == "pong"
assert ray.get(ray.remote(num_cpus=0)(lambda: 1).remote()) == 1
print("READY", flush=True)
time.sleep(300)
"""


def test_a_launcher_started_head_listens_on_loopback_only_and_needs_its_token(head: Head) -> None:
    """Before: GCS on *:6379, the client server on the machine's address :10001, raylet, object
    manager and agents on 0.0.0.0 or the machine's address, and no authentication: any host that
    reached this one could run code here. Checked with a job, an actor and a task alive, so the
    job supervisor's, the driver's and the workers' servers are counted too."""
    import urllib.error
    import urllib.request

    from ray.job_submission import JobSubmissionClient

    local = head.local
    client = JobSubmissionClient(head.url)
    job = client.submit_job(entrypoint=f"{shlex.quote(sys.executable)} -c {shlex.quote(BUSY_DRIVER)}")
    try:
        wait_for(lambda: "READY" in client.get_job_logs(job), timeout=120, every=0.5)
        listeners = _head_listeners(local.pgid)
    finally:
        client.stop_job(job)
    names = {name for name, _, _ in listeners}
    assert {"gcs_server", "raylet"} <= names and any(n.startswith("ray::") for n in names), listeners
    outside = [entry for entry in listeners if entry[1] not in LOOPBACK]
    assert not outside, f"bound beyond loopback: {outside}"
    assert not {port for _, _, port in listeners} & RAY_DEFAULT_PORTS, listeners  # two heads never clash
    assert local.ports["port"] in {port for name, _, port in listeners if name == "gcs_server"}
    assert head.dashboard_port in {port for _, _, port in listeners}
    # From any other address of this machine (as another host would reach it) no port answers.
    for address in _outside_addresses():
        for port in sorted({port for _, _, port in listeners}):
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
                pass
    assert oct(Path(local.token_file).stat().st_mode & 0o777) == "0o600"
    assert oct(Path(local.temp_dir).stat().st_mode & 0o777) == "0o700"
    # On loopback Ray asks for the token: the Jobs API ...
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{head.url}/api/jobs/", timeout=10)
    assert refused.value.code == 401
    # ... and GCS: a driver without the token is turned away (single-machine mode, as the head's:
    # else Ray would turn 127.0.0.1 into the machine's address, where nothing answers).
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    gcs = f"127.0.0.1:{local.ports['port']}"
    code = f"import ray; ray.init(address='{gcs}', log_to_driver=False); print('IN')"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "IN" not in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_one_refresh_is_one_list_jobs_call_even_for_jobs_the_cluster_forgot(head: Head) -> None:
    """explain() answers from status(): before, each job the cluster did not know cost another
    list_jobs() (the whole job list) per run."""
    from launcher.backends.ray.backend import RayBackend
    from launcher.config.cluster import load_cluster
    from launcher.runs.state import RunState

    backend = RayBackend(load_cluster(str(head.profile)))
    client = backend.jobs.client()
    calls = []
    real = client.list_jobs
    client.list_jobs = lambda: calls.append(1) or real()  # counts the real calls, answers as Ray does
    ids = [f"forgotten-{i}" for i in range(5)]
    assert set(backend.status(ids).values()) == {RunState.UNKNOWN}
    notes = [backend.explain(job_id) for job_id in ids]
    assert all(note and "does not know job" in note for note in notes), notes
    assert len(calls) == 1
