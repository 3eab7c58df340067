"""Secrets never leave the environment: planted values are searched for in everything a run wrote.

The stored run (tests/support/s3_server.py) trains the tiny model end to end with uploads to the S3
endpoint and three distinct secrets in its environment: WANDB_API_KEY (present, but the recipe
forces W&B offline), AWS_SECRET_ACCESS_KEY (what the uploads are signed with) and OPENAI_API_KEY."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.tracking.wandb_mode import REDACTED
from tests.support.s3_server import S3Server, StoredRun


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
