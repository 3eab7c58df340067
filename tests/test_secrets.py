"""Secrets never leave the environment: planted values are searched for in everything a run wrote.

The stored run (tests/s3_server.py) trains the tiny model end to end with uploads to the S3
endpoint and three distinct secrets in its environment: WANDB_API_KEY (present, but the recipe
forces W&B offline), AWS_SECRET_ACCESS_KEY (what the uploads are signed with) and OPENAI_API_KEY.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from launcher.tracking.wandb_mode import REDACTED, redact_env, redact_text
from tests.conftest import Launch, run_state, wait_for
from tests.ray_head import Head
from tests.s3_server import S3Server, StoredRun


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
def test_no_secret_in_any_file_the_run_wrote(stored_run: StoredRun) -> None:
    files = _files(stored_run.root)  # the run directory, W&B offline files, registry.db, local state
    names = {p.name for p in files}
    assert {"submit.sh", "launch.json", "recipe.yaml", "uploads.json", "registry.db", "task0.out"} <= names
    assert any(p.suffix == ".wandb" for p in files), "no W&B offline run file to search"
    leaks = [
        f"{name} in {path.relative_to(stored_run.root)}"
        for path in files
        for name, value in stored_run.secrets.items()
        if value.encode() in path.read_bytes()
    ]
    assert not leaks, leaks


@pytest.mark.slow
def test_no_secret_in_anything_the_cli_printed(stored_run: StoredRun) -> None:
    commands = [command.split()[0] for command, _ in stored_run.outputs]
    assert {"recipe", "status", "logs", "sync"} <= set(commands)
    leaks = [
        f"{name} printed by `launch {command}`"
        for command, text in stored_run.outputs
        for name, value in stored_run.secrets.items()
        if value in text
    ]
    assert not leaks, leaks


@pytest.mark.slow
def test_no_secret_in_the_store(stored_run: StoredRun, s3: S3Server) -> None:
    client = s3.client()
    keys = s3.keys("trained/")
    assert any(k.endswith("/launch.json") for k in keys) and any(k.endswith("/COMPLETE") for k in keys)
    leaks = []
    for key in keys:
        body = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
        leaks += [
            f"{name} in s3://{s3.bucket}/{key}"
            for name, v in stored_run.secrets.items()
            if v.encode() in body
        ]
    assert not leaks, leaks


@pytest.mark.slow
def test_the_secrets_were_really_there(stored_run: StoredRun) -> None:
    """The searches above mean something only if the job had the secrets and used the AWS one."""
    assert stored_run.env["AWS_SECRET_ACCESS_KEY"] == stored_run.secrets["AWS_SECRET_ACCESS_KEY"]
    out = (stored_run.run_dir / "logs" / "task0.out").read_text()
    assert "upload: checkpoints/checkpoint-10 -> s3://" in out
    dry_run = next(text for command, text in stored_run.outputs if "--dry-run" in command)
    assert "AWS_SECRET_ACCESS_KEY" not in dry_run or REDACTED in dry_run


def test_redaction_helpers() -> None:
    env = {"WANDB_API_KEY": "abcd1234", "HF_TOKEN": "hf_xyz123", "PATH": "/bin", "AWS_SESSION_TOKEN": "tok0"}
    assert redact_env(env) == {"WANDB_API_KEY": REDACTED, "HF_TOKEN": REDACTED, "PATH": "/bin",
                               "AWS_SESSION_TOKEN": REDACTED}  # fmt: skip
    assert redact_text("key=abcd1234 token hf_xyz123 /bin", env) == f"key={REDACTED} token {REDACTED} /bin"


def test_a_secret_given_through_set_is_written_nowhere(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """A value equal to a secret of the environment, pasted into `--set`, is redacted in the dry
    run, recipe.yaml, submit.sh and launch.json (it reaches the job through the environment)."""
    secret = "sk-planted-0123456789abcdef"
    launch_env["MY_SERVICE_API_KEY"] = secret
    sets = [
        "--set",
        f"env.FOO={secret}",
        "--set",
        f"model.revision=rev-{secret}",
        "--set",
        "env.SMOKE_STEP_SECONDS=0",
    ]
    dry = launch("recipe", "tiny_smoke", "-c", "local", *sets, "--dry-run", check=True)
    assert secret not in dry.stdout + dry.stderr
    assert f"FOO={REDACTED}" in dry.stdout or f"FOO='{REDACTED}'" in dry.stdout, dry.stdout
    proc = launch("recipe", "tiny_smoke", "-c", "local", *sets, "--follow", check=True)
    run_dir = tmp_path / "runs" / proc.stdout.split()[0]
    for name in ("recipe.yaml", "submit.sh", "launch.json"):
        text = (run_dir / name).read_text()
        assert secret not in text, name
    assert f"rev-{REDACTED}" in (run_dir / "recipe.yaml").read_text()
    leaks = [
        p for p in _files(tmp_path / "runs") + _files(tmp_path / "home") if secret.encode() in p.read_bytes()
    ]
    assert not leaks, leaks


@pytest.mark.parametrize("where", ["recipe", "profile"])
def test_a_secret_looking_env_key_is_refused_in_recipes_and_profiles(
    launch: Launch, tmp_path: Path, where: str
) -> None:
    profile = tmp_path / "c.yaml"
    planted = "hf_planted_value_123"
    env_line = f"env: {{HF_TOKEN: {planted}}}\n"
    profile.write_text("name: c\nbackend: local\ngpu: null\n" + (env_line if where == "profile" else ""))
    extra = ["--set", f"env.HF_TOKEN={planted}"] if where == "recipe" else []
    proc = launch("recipe", "tiny_smoke", "-c", str(profile), *extra, "--dry-run")
    assert proc.returncode == 2, proc.stderr
    assert "env.HF_TOKEN: looks like a secret" in proc.stderr
    assert planted not in proc.stdout + proc.stderr


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
        "import sys; from launcher import launching; from launcher.runs.registry import Registry; "
        "settings = sys.argv[2:]; "
        "prepared = [launching.prepare('tiny_smoke', sys.argv[1], settings) for _ in range(2)]; "
        "launching.submit_many(prepared, Registry(), max_parallel=1); "
        "print(' '.join(p.run.run_id for p in prepared))"
    )
    env = {**launch_env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
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
