"""A real S3-compatible HTTP endpoint on 127.0.0.1 for tests: moto's standalone server.

It runs in its own process, so a test can pause it (SIGSTOP: the endpoint hangs, connections
are accepted but never answered) and resume it (SIGCONT) with its state kept. Authentication is
enforced (moto's INITIAL_NO_AUTH_ACTION_COUNT): the first three requests create an IAM user, its
policy and its access key; from then on every request must be signed with that key, so wrong
credentials fail for real (SignatureDoesNotMatch, InvalidAccessKeyId). boto3 talks to it over
HTTP through AWS_ENDPOINT_URL; nothing is patched in-process.

    python -m tests.support.s3_server            # stand one up by hand; prints the environment to use
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "launch-test"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
FAST = {
    "AWS_MAX_ATTEMPTS": "2", "LAUNCH_S3_TIMEOUT": "5", "LAUNCH_S3_ATTEMPTS": "2",
    "LAUNCH_S3_BACKOFF": "0.1", "LAUNCH_S3_CHUNK_MB": "5",
}  # fmt: skip
"""Retry and timeout settings that make a dead endpoint fail in seconds, not minutes."""


@dataclass
class S3Server:
    proc: subprocess.Popen
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str = BUCKET
    paused_now: bool = field(default=False)

    def env(self, **overrides: str) -> dict[str, str]:
        """AWS variables for boto3 (and `launch`) to use this endpoint, isolated from ~/.aws."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, **FAST, **overrides,
        }  # fmt: skip

    def client(self, secret_key: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}),
        )  # fmt: skip

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix` (listed with the good credentials)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused_now = True

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused_now = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def stop(self) -> None:
        if self.paused_now:
            self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _fix_query_signing() -> None:
    """moto checks a signature against the URL as werkzeug decodes it, where a `/` inside a query
    value (ListObjectsV2 `prefix=a/b`) is no longer `%2F` as the client signed it, so every listing
    under a prefix would be refused. Re-encode it on the server side; the check stays real."""
    from moto.iam import access_control

    original = access_control.IAMRequestBase.__init__

    def init(self: Any, account_id: str, method: str, path: str, *args: Any, **kwargs: Any) -> None:
        base, sep, query = path.partition("?")
        original(self, account_id, method, base + sep + query.replace("/", "%2F"), *args, **kwargs)

    access_control.IAMRequestBase.__init__ = init  # type: ignore[method-assign]


def _serve() -> None:
    """The server process: moto on an ephemeral port of 127.0.0.1; prints the port, runs forever."""
    from moto.server import ThreadedMotoServer

    _fix_query_signing()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (server.stop(), os._exit(0)))
    while True:
        time.sleep(3600)


def start(bucket: str = BUCKET) -> S3Server:
    """Start the server process, create the IAM user, its key and the bucket."""
    import boto3

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.s3_server", "--serve"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        raise RuntimeError(f"moto server did not start (said {line!r})")
    endpoint = f"http://127.0.0.1:{line}"
    anon = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup"}  # fmt: skip
    iam = boto3.client("iam", **anon)
    iam.create_user(UserName="launcher")
    iam.put_user_policy(UserName="launcher", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
    key = iam.create_access_key(UserName="launcher")["AccessKey"]
    server = S3Server(proc, endpoint, key["AccessKeyId"], key["SecretAccessKey"], bucket)
    server.client().create_bucket(Bucket=bucket)
    return server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """One S3 endpoint for the session; tests keep apart by key prefix."""
    server = start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class StoredRun:
    """The tiny NER run trained once per session with uploads to the S3 endpoint and secrets in
    its environment; `outputs` holds every line each CLI call printed (stdout and stderr)."""

    run_id: str
    run_dir: Path
    root: Path
    env: dict[str, str]
    uri: str
    secrets: dict[str, str]
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def launch(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "launcher.cli", *args], env={**self.env, **env}, cwd=self.root,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        self.outputs.append((" ".join(args), proc.stdout + proc.stderr))
        if check and proc.returncode != 0:
            raise AssertionError(
                f"launch {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


TINY_TRAIN = [
    "--set", "data.max_train_samples=160", "--set", "train.logging_steps=5", "--set", "train.max_steps=20",
    "--set", "train.save_steps=10", "--set", "tracking.wandb.mode=offline",
    "--set", "tracking.wandb.entity=nlp-lab", "--set", "tracking.wandb.tags=[tiny, s3]",
]  # fmt: skip


@pytest.fixture(scope="session")
def stored_run(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> StoredRun:
    """`launch recipe tiny_ner` trained end to end (20 steps, checkpoints 10 and 20) with
    artifacts.uri on the S3 endpoint, distinct secrets planted in WANDB_API_KEY (W&B forced offline
    by the recipe: there is no W&B server), AWS_SECRET_ACCESS_KEY (the key the uploads sign with)
    and OPENAI_API_KEY; then status, logs, sync and a dry run, all recorded."""
    import secrets

    root = tmp_path_factory.mktemp("stored")
    planted = {
        "WANDB_API_KEY": secrets.token_hex(20),
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "OPENAI_API_KEY": f"sk-planted-{secrets.token_hex(16)}",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "AWS_", "OPENAI_"))}
    env.update(s3.env(LAUNCH_S3_TIMEOUT="30"))
    env.update(planted, LAUNCH_HOME=str(root / "home"), LAUNCH_RUNS=str(root / "runs"))
    uri = f"s3://{s3.bucket}/trained"
    run = StoredRun("", root / "runs", root, env, uri, planted)
    proc = run.launch(
        "recipe", "tiny_ner", "-c", "local", "--follow", *TINY_TRAIN, "--set", f"artifacts.uri={uri}"
    )
    run.run_id = proc.stdout.splitlines()[0]
    run.run_dir = root / "runs" / run.run_id
    run.launch("status")
    run.launch("status", run.run_id)
    run.launch("logs", run.run_id)
    run.launch("sync", run.run_id)
    run.launch("recipe", "tiny_ner", "-c", "local", "--dry-run", *TINY_TRAIN, "--set", f"artifacts.uri={uri}")
    return run


if __name__ == "__main__":
    if "--serve" in sys.argv:
        _serve()
    else:
        s = start()
        print("\n".join(f"export {k}={v}" for k, v in s.env().items()), flush=True)
        print(f"# bucket {s.bucket}; Ctrl-C stops", flush=True)
        try:
            s.proc.wait()
        except KeyboardInterrupt:
            s.stop()
