"""The API key of a classify run never leaves the environment.

A real llama.cpp server on loopback that demands a planted key (so the job must have sent it), a
classify run against it end to end with W&B offline and uploads to the S3 endpoint, then status,
logs, sync and a dry run; the planted API key, W&B key and AWS secret are searched for in every
file under the run's world (run directory, W&B offline files, registry, the response cache), in
the store and in everything the CLI printed.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator

import pytest

from tests.support.llm_server import MODEL, start_server, stop_server
from tests.support.s3_server import S3Server, StoredRun


@pytest.fixture(scope="module")
def classified_run(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoredRun]:
    root = tmp_path_factory.mktemp("classified")
    planted = {
        "OPENAI_API_KEY": f"sk-planted-{secrets.token_hex(16)}",
        "WANDB_API_KEY": secrets.token_hex(20),
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    server = start_server(tmp_path_factory.mktemp("llm-keyed"), LLM_API_KEY=planted["OPENAI_API_KEY"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "AWS_", "OPENAI_"))}
    env.update(s3.env(LAUNCH_S3_TIMEOUT="30"))
    env.update(planted, LAUNCH_HOME=str(root / "home"), LAUNCH_RUNS=str(root / "runs"))
    uri = f"s3://{s3.bucket}/classified"
    args = ["--set", f"eval.api.base_url={server.url}", "--set", f"model.name_or_path={MODEL}",
            "--set", "classify.sample=3", "--set", "classify.response_format=llama_schema",
            "--set", "eval.api.max_concurrency=2", "--set", "eval.api.timeout_s=600",
            "--set", "tracking.wandb.mode=offline", "--set", f"artifacts.uri={uri}"]  # fmt: skip
    run = StoredRun("", root / "runs", root, env, uri, planted)
    try:
        proc = run.launch("recipe", "agnews_zero_shot", "-c", "local", "--follow", *args)
        run.run_id = proc.stdout.splitlines()[0]
        run.run_dir = root / "runs" / run.run_id
        run.launch("status")
        run.launch("status", run.run_id)
        run.launch("logs", run.run_id)
        run.launch("sync", run.run_id)
        run.launch("recipe", "agnews_zero_shot", "-c", "local", "--dry-run", *args)
        yield run
    finally:
        stop_server(server)


@pytest.mark.slow
def test_the_key_was_used_and_the_run_wrote_what_we_search(classified_run: StoredRun) -> None:
    results = next((classified_run.run_dir / "results").glob("*/*/metrics.json")).parent
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["requests_sent"] == 3 and metrics["parse_status"]["ok"] == 3  # the server took the key
    files = [p for p in classified_run.root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"submit.sh", "launch.json", "recipe.yaml", "registry.db", "classify.sqlite", "task0.out"} <= names
    assert "predictions.jsonl" in names and any(p.suffix == ".wandb" for p in files)


@pytest.mark.slow
def test_no_secret_in_any_file(classified_run: StoredRun) -> None:
    leaks = [
        f"{name} in {path.relative_to(classified_run.root)}"
        for path in classified_run.root.rglob("*")
        if path.is_file()
        for name, value in classified_run.secrets.items()
        if value.encode() in path.read_bytes()
    ]
    assert not leaks, leaks


@pytest.mark.slow
def test_no_secret_in_the_cli_output_or_the_store(classified_run: StoredRun, s3: S3Server) -> None:
    assert {c.split()[0] for c, _ in classified_run.outputs} >= {"recipe", "status", "logs", "sync"}
    leaks = [f"{name} printed by `launch {command}`" for command, text in classified_run.outputs
             for name, value in classified_run.secrets.items() if value in text]  # fmt: skip
    client = s3.client()
    keys = s3.keys("classified/")
    assert any(k.endswith("metrics.json") for k in keys), keys
    for key in keys:
        body = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
        leaks += [
            f"{name} in s3://{s3.bucket}/{key}"
            for name, v in classified_run.secrets.items()
            if v.encode() in body
        ]
    assert not leaks, leaks
