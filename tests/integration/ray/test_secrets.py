"""No secret in the Ray session logs or the jobs API of a run on the Ray head."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.cli import Launch, run_state, wait_for
from tests.support.paths import ROOT
from tests.support.ray_head import Head


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


RAY_SECRETS = {name: f"planted-{name.lower()}-{uuid.uuid4().hex}" for name in
               ("WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY")}  # fmt: skip

"""Made at run time: this file travels to Ray with the project, so it must not hold the values."""


def _job_environ(run_dir: Path, timeout: float = 60) -> dict[str, str]:
    """The environment of the running job process of `run_dir` (`python -m jobs.smoke`)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if "jobs.smoke" in cmd and str(run_dir) in cmd and "launcher.backends.ray.agent" not in cmd:
                with contextlib.suppress(psutil.Error):
                    return dict(proc.environ())
        time.sleep(0.1)
    raise AssertionError(f"no job process for {run_dir}")


@pytest.mark.ray
def test_no_secret_in_ray_session_logs_or_jobs_api(
    request: pytest.FixtureRequest,
    launch: Launch,
    launch_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Before: the secrets went in runtime_env.env_vars, so Ray logged them (runtime_env_agent.log)
    and served them at GET /api/jobs/<id>. One job through the CLI, then an array of two kept by
    the supervisor (max_parallel 1), all with the planted secrets in the submitting environment."""
    from launcher.backends.ray.agent import SECRETS_DIR
    from launcher.backends.ray.cluster import auth_headers

    head: Head = request.getfixturevalue("head")
    launch_env.update(RAY_SECRETS)
    for name, value in RAY_SECRETS.items():
        monkeypatch.setenv(name, value)
    slow = ["--set", "train.max_steps=15", "--set", "env={SMOKE_STEP_SECONDS: '0.3'}"]
    single = launch("recipe", "tiny_smoke", "-c", str(head.profile), *slow, check=True).stdout.split()[0]
    runs = tmp_path / "runs"
    seen = _job_environ(runs / single)
    assert {k: seen.get(k) for k in RAY_SECRETS} == RAY_SECRETS, "the job did not get the secrets"
    settings = ["train.max_steps=15", "env={SMOKE_STEP_SECONDS: '0.3'}"]
    # In a process of its own: Ray's client keeps the first auth token it loaded for the life of
    # the process, and this pytest process may already have talked to another test's head.
    script = (
        "import sys; from launcher.runs import service as launching; "
        "from launcher.runs.registry import Registry; "
        "settings = sys.argv[2:]; "
        "prepared = [launching.prepare('tiny_smoke', sys.argv[1], settings) for _ in range(2)]; "
        "launching.submit_many(prepared, Registry(), max_parallel=1); "
        "print(' '.join(p.run.run_id for p in prepared))"
    )
    env = {**launch_env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(head.profile), *settings], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    entries = proc.stdout.split()
    for run_id in entries:
        seen = _job_environ(runs / run_id, timeout=120)
        assert {k: seen.get(k) for k in RAY_SECRETS} == RAY_SECRETS, f"array entry {run_id} lacks them"
    for run_id in [single, *entries]:
        wait_for(lambda r=run_id: run_state(launch, r) == "completed", timeout=120, every=1)
    assert not list((runs / SECRETS_DIR).glob("*")), "a secrets file outlived its job's start"
    # Ray's session logs (the head's private temp dir) and every file the runs wrote
    leaks = [
        f"{name} in {path}"
        for root in (Path(head.local.temp_dir), runs)
        for path in _files(root)
        for name, value in RAY_SECRETS.items()
        if value.encode() in path.read_bytes()
    ]
    # the Jobs API's answer for each job and the supervisor
    ids = [single, *entries, f"launch-array-{entries[0]}"]
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", head.local.token_file)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    for job_id in ids:
        request = urllib.request.Request(f"{head.url}/api/jobs/{job_id}", headers=auth_headers())
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        assert job_id.encode() in body
        leaks += [f"{n} in GET /api/jobs/{job_id}" for n, v in RAY_SECRETS.items() if v.encode() in body]
    assert not leaks, leaks
