"""The artifact store against a real S3-compatible HTTP endpoint (moto's server, tests/support/s3_server.py)
and a local directory: the upload protocol, verification, and the faults (an endpoint that stops
mid-upload, wrong credentials, a missing bucket)."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from launcher.artifacts.store import Store, file_entry
from launcher.artifacts.transport import StoreError, sha256_of
from launcher.artifacts.uploads import Ledger, Unit, units, upload_results, upload_state, upload_unit
from launcher.config.recipe import load_recipe
from launcher.runs import results as evaluation
from launcher.runs.checkpoints import MARKER, complete_checkpoints, mark_complete
from launcher.runs.registry import Registry
from tests.support.cli import Launch, run_state, wait_for
from tests.support.s3_server import S3Server, StoredRun

MiB = 1 << 20


@pytest.fixture
def s3_env(s3: S3Server, launch_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The endpoint's variables for `launch` subprocesses and for boto3 in this process."""
    for key in [k for k in launch_env if k.startswith("AWS_")]:
        launch_env.pop(key)
    launch_env.update(s3.env())
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return launch_env


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def make_checkpoint(path: Path, step: int, big: int = 0) -> Path:
    """A checkpoint directory as the Trainer leaves it, marked complete."""
    (path / "sub").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"step": step}))
    (path / "sub" / "rng.bin").write_bytes(os.urandom(1000))
    if big:
        (path / "model.safetensors").write_bytes(os.urandom(big))
    mark_complete(path, step=step, loss=1.5)
    return path


def make_run(root: Path, uri: str | None, steps: list[int], big: int = 0, register: bool = True) -> Path:
    """A registered tiny_smoke run directory with complete checkpoints and artifacts.uri = `uri`."""
    recipe = load_recipe("tiny_smoke", [f"artifacts.uri={uri}"] if uri else [])
    run_id = f"tiny_smoke-20260101-0000-{uuid.uuid4().hex[:4]}"
    run_dir = root / "runs" / run_id
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "recipe.yaml").write_text(recipe.to_yaml())
    (run_dir / "launch.json").write_text(json.dumps({"run_id": run_id, "job_ids": []}))
    for step in steps:
        make_checkpoint(run_dir / "checkpoints" / f"checkpoint-{step}", step, big if step == steps[-1] else 0)
    if register:
        Registry().add(run_id, "tiny_smoke", "local", "local", "smoke", run_dir, [], state="completed")
    return run_dir


def tree(path: Path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): sha256_of(p) for p in sorted(path.rglob("*")) if p.is_file()}


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


# ---------------------------------------------------------------------------- the protocol


@pytest.fixture(params=["s3", "local"])
def store_root(request: pytest.FixtureRequest, s3: S3Server, s3_env: dict[str, str], tmp_path: Path) -> str:
    return f"s3://{s3.bucket}/{_prefix()}" if request.param == "s3" else str(tmp_path / "archive")


def test_upload_marker_last_verified_idempotent_download(
    store_root: str, tmp_path: Path, s3: S3Server
) -> None:
    ckpt = make_checkpoint(tmp_path / "local" / "checkpoint-30", 30, big=6 * MiB)  # 2 parts of 5 MiB
    store = Store(store_root)
    uri = store.child("RUN", "checkpoints", "checkpoint-30")
    marker_seen_early = []
    manifest, sent = store.upload_dir(
        ckpt, uri, progress=lambda _n: marker_seen_early.append(store.read_manifest(uri) is not None)
    )
    assert marker_seen_early and not any(marker_seen_early), "COMPLETE existed before every file was in"
    assert sent == 3 and {f.path for f in manifest.files} == {
        "config.json",
        "sub/rng.bin",
        "model.safetensors",
    }
    remote = store.read_manifest(uri)
    assert remote is not None and remote["marker"] == (ckpt / MARKER).read_text()
    assert sorted((f["path"], f["size"], f["sha256"]) for f in remote["files"]) == sorted(
        (p, (ckpt / p).stat().st_size, sha256_of(ckpt / p))
        for p in ("config.json", "sub/rng.bin", "model.safetensors")
    )
    if store.is_s3:  # the server's ETag is the multipart MD5 we computed: the bytes arrived intact
        head = s3.client().head_object(
            Bucket=s3.bucket, Key=f"{store.root}/RUN/checkpoints/checkpoint-30/model.safetensors"
        )
        expected = file_entry(ckpt / "model.safetensors", "m", 5 * MiB).etag
        assert head["ETag"].strip('"') == expected and expected.endswith("-2")
        assert head["Metadata"]["sha256"] == sha256_of(ckpt / "model.safetensors")
    assert [c.step for c in store.list_complete_checkpoints(store.child("RUN"))] == [30]
    assert store.upload_dir(ckpt, uri)[1] == 0, "a second upload sends nothing"

    dest = store.download_checkpoint(uri, tmp_path / "copy" / "checkpoint-30")
    assert tree(dest) == tree(ckpt), "the copy is byte for byte the checkpoint, COMPLETE included"
    eval_recipe = load_recipe("tiny_ner_eval")
    assert evaluation.fingerprint(str(dest), eval_recipe) == evaluation.fingerprint(str(ckpt), eval_recipe)


def test_a_unit_without_its_marker_is_never_complete(
    s3: S3Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    store = Store(f"s3://{s3.bucket}/{_prefix()}")
    ckpt = make_checkpoint(tmp_path / "checkpoint-5", 5)
    store.upload_dir(ckpt, store.child("RUN", "checkpoints", "checkpoint-5"))
    key = f"{store.root}/RUN/checkpoints/checkpoint-10/config.json"  # files of a half-uploaded checkpoint
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=b"{}")
    assert [c.step for c in store.list_complete_checkpoints(store.child("RUN"))] == [5]
    with pytest.raises(StoreError, match="not a complete checkpoint"):
        store.download_checkpoint(store.child("RUN", "checkpoints", "checkpoint-10"), tmp_path / "x")


def test_a_corrupted_object_fails_the_download(s3: S3Server, s3_env: dict[str, str], tmp_path: Path) -> None:
    store = Store(f"s3://{s3.bucket}/{_prefix()}")
    ckpt = make_checkpoint(tmp_path / "checkpoint-5", 5)
    uri = store.child("RUN", "checkpoints", "checkpoint-5")
    store.upload_dir(ckpt, uri)
    key = f"{store.root}/RUN/checkpoints/checkpoint-5/sub/rng.bin"
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=os.urandom(1000))  # same size, other bytes
    dest = tmp_path / "copy"
    with pytest.raises(StoreError, match="sha256 differs from the manifest"):
        store.download_checkpoint(uri, dest)
    assert not (dest / MARKER).exists(), "a copy that did not verify must not look complete"


def test_a_changed_unit_loses_its_marker_before_new_files_go_up(store_root: str, tmp_path: Path) -> None:
    results = tmp_path / "results" / "checkpoint-5"
    results.mkdir(parents=True)
    (results / "metrics.json").write_text('{"f1": 0.5}')
    store = Store(store_root)
    uri = store.child("RUN", "results", "checkpoint-5")
    store.upload_dir(results, uri)
    (results / "metrics.json").write_text('{"f1": 0.75}')
    seen = []
    store.upload_dir(results, uri, progress=lambda _n: seen.append(store.read_manifest(uri)))
    assert seen and all(m is None for m in seen)
    manifest = store.read_manifest(uri)
    assert manifest is not None and manifest["files"][0]["sha256"] == sha256_of(results / "metrics.json")


def test_results_of_an_eval_go_to_the_training_run_in_the_store(
    s3: S3Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    uri = f"s3://{s3.bucket}/{_prefix()}"
    train_dir = make_run(tmp_path, uri, [10], register=False)
    results = train_dir / "results" / "checkpoint-10"
    results.mkdir(parents=True)
    (results / "predictions.jsonl").write_text("{}\n")
    (results / "metrics.json").write_text('{"strict": {"f1": 0.5}}')
    eval_dir = tmp_path / "runs" / "tiny_ner_eval-20260101-0000-beef"
    eval_dir.mkdir()
    eval_recipe = load_recipe("tiny_ner_eval")  # no artifacts.uri of its own: the training run's store
    (eval_dir / "recipe.yaml").write_text(eval_recipe.to_yaml())
    outcome = upload_results(eval_recipe, eval_dir, results)
    assert outcome is not None and outcome.ok and outcome.rel == "results/checkpoint-10"
    keys = s3.keys(uri.split("/", 3)[3])
    assert f"{uri.split('/', 3)[3]}/{train_dir.name}/results/checkpoint-10/COMPLETE" in keys
    assert Ledger(train_dir).read()["units"]["results/checkpoint-10"]["state"] == "uploaded"


# ---------------------------------------------------------------------------- faults


def test_endpoint_stops_mid_upload_then_sync_completes(
    s3: S3Server, s3_env: dict[str, str], launch: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(a) The endpoint hangs after the first part of a multipart upload: retries, one clear
    failure, the local copy intact, the run marked pending; `launch sync` completes it later."""
    for env in (s3_env, os.environ):  # botocore tries once, the store twice, each 1 s: seconds, not minutes
        env.update(LAUNCH_S3_TIMEOUT="1", AWS_MAX_ATTEMPTS="1")
    prefix = _prefix()
    run_dir = make_run(tmp_path, f"s3://{s3.bucket}/{prefix}", [10], big=16 * MiB)
    ckpt = run_dir / "checkpoints" / "checkpoint-10"
    before = tree(ckpt)
    store = Store(f"s3://{s3.bucket}/{prefix}")
    sent = [0]

    def stop_after_first_part(n: int) -> None:
        sent[0] += n
        if sent[0] >= 5 * MiB and not s3.paused_now:
            s3.pause()

    started = time.monotonic()
    try:
        unit = Unit("checkpoints/checkpoint-10", True)
        outcome = upload_unit(run_dir, unit, store, progress=stop_after_first_part)
        elapsed = time.monotonic() - started
        assert s3.paused_now and not outcome.ok and elapsed < 60
        assert outcome.error is not None and "\n" not in outcome.error
        assert "failed after 2 attempts" in outcome.error and "did not answer within 1s" in outcome.error
        assert tree(ckpt) == before, "the local checkpoint must be untouched"
        entry = Ledger(run_dir).read()["units"]["checkpoints/checkpoint-10"]
        assert entry["state"] == "failed" and entry["error"] == outcome.error
        assert "checkpoints/checkpoint-10" in upload_state(run_dir).pending

        detail = launch("status", run_dir.name, check=True).stdout
        assert f"pending upload to s3://{s3.bucket}/{prefix}/{run_dir.name}" in detail
        assert f"launch sync {run_dir.name}" in detail and "did not answer" in detail
        down = launch("sync", run_dir.name)
        assert down.returncode == 1
        assert "did not answer within 1s" in one_error_line(down.stderr)
    finally:
        s3.resume()
    assert [c.step for c in store.list_complete_checkpoints(store.child(run_dir.name))] == []
    up = launch("sync", run_dir.name, check=True)
    assert "uploaded checkpoints/checkpoint-10" in up.stderr
    assert [c.step for c in store.list_complete_checkpoints(store.child(run_dir.name))] == [10]
    assert not upload_state(run_dir).pending
    copy = store.download_checkpoint(
        store.child(run_dir.name, "checkpoints", "checkpoint-10"), tmp_path / "copy"
    )
    assert tree(copy) == before
    again = launch("sync", run_dir.name, check=True)
    assert f"{run_dir.name}: 0 unit(s) uploaded" in again.stdout


def test_a_job_finishes_while_the_endpoint_hangs_and_sync_catches_up(
    s3: S3Server, s3_env: dict[str, str], launch: Launch, tmp_path: Path
) -> None:
    """(a) through a real job: the smoke job checkpoints while the endpoint hangs. The job still
    succeeds, says once what failed, and the run shows as pending until `launch sync`."""
    s3_env.update(LAUNCH_S3_TIMEOUT="1", AWS_MAX_ATTEMPTS="1")
    prefix = _prefix()
    proc = launch("recipe", "tiny_smoke", "-c", "local", "--set", f"artifacts.uri=s3://{s3.bucket}/{prefix}",
                  "--set", "env.SMOKE_STEP_SECONDS='0.05'", check=True)  # fmt: skip
    s3.pause()
    try:
        run_id = proc.stdout.splitlines()[0]
        run_dir = tmp_path / "runs" / run_id
        state = run_dir / ".local_state.json"
        wait_for(lambda: json.loads(state.read_text()).get("exit_code") is not None, timeout=120)
        assert run_state(launch, run_id) == "completed", "a store failure must never fail the job"
        log = (run_dir / "logs" / "task0.out").read_text()
        failures = [line for line in log.splitlines() if " failed: " in line]
        assert len(failures) == 1 and "did not answer" in failures[0] and "launch sync" in failures[0]
        assert "pending upload" in log.splitlines()[-2]
        assert len(upload_state(run_dir).pending) == 6  # recipe.yaml, launch.json, checkpoints 5..20
        assert "6 pending" in launch("status", check=True).stdout
        assert launch("sync", run_id).returncode == 1
    finally:
        s3.resume()
    launch("sync", run_id, check=True)
    store = Store(f"s3://{s3.bucket}/{prefix}")
    assert [c.step for c in store.list_complete_checkpoints(store.child(run_id))] == [5, 10, 15, 20]
    assert "uploaded to" in launch("status", run_id, check=True).stdout


def test_wrong_credentials_one_error_nothing_written(
    s3: S3Server, s3_env: dict[str, str], launch: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(b) The endpoint refuses a wrong secret key: one clear line, no run, nothing remote."""
    prefix = _prefix()
    wrong = "wrong-secret-" + uuid.uuid4().hex
    s3_env["AWS_SECRET_ACCESS_KEY"] = wrong
    proc = launch("recipe", "tiny_smoke", "-c", "local", "--set", f"artifacts.uri=s3://{s3.bucket}/{prefix}")
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "artifacts.uri" in line and "refused the credentials (SignatureDoesNotMatch)" in line
    assert wrong not in proc.stderr + proc.stdout and not (tmp_path / "runs").exists()

    run_dir = make_run(tmp_path, f"s3://{s3.bucket}/{prefix}", [5])
    sync = launch("sync", run_dir.name)
    assert sync.returncode == 1 and "refused the credentials" in one_error_line(sync.stderr)

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    started = time.monotonic()
    store = Store(f"s3://{s3.bucket}/{prefix}")
    with pytest.raises(StoreError, match="refused the credentials") as err:
        store.upload_dir(run_dir / "checkpoints" / "checkpoint-5", store.child("x", "checkpoint-5"))
    assert "attempts" not in str(err.value) and time.monotonic() - started < 5, "refusals are not retried"
    assert s3.keys(prefix) == [], "nothing may be half-written remotely"


def test_missing_bucket_is_named_before_anything_is_created(
    s3: S3Server, s3_env: dict[str, str], launch: Launch, tmp_path: Path
) -> None:
    """(c) A bucket that does not exist: `launch recipe` names it, exits 2, creates nothing."""
    proc = launch("recipe", "tiny_smoke", "-c", "local", "--set", "artifacts.uri=s3://no-such-bucket/runs")
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert f"bucket 'no-such-bucket' does not exist at {s3.endpoint}" in line
    assert not (tmp_path / "runs").exists() and Registry().all() == []
    run_dir = make_run(tmp_path, "s3://no-such-bucket/runs", [5])
    sync = launch("sync", run_dir.name)
    assert sync.returncode == 1 and "bucket 'no-such-bucket' does not exist" in one_error_line(sync.stderr)


# ---------------------------------------------------------------------------- the trained run


@pytest.mark.slow
def test_trained_checkpoints_are_in_the_store_and_download_for_reeval(
    stored_run: StoredRun, s3_env: dict[str, str], tmp_path: Path
) -> None:
    run_uri = f"{stored_run.uri}/{stored_run.run_id}"
    store = Store(run_uri)
    assert [c.step for c in store.list_complete_checkpoints(run_uri)] == [10, 20]
    ledger = Ledger(stored_run.run_dir).read()
    assert ledger["uri"] == run_uri and all(u["state"] == "uploaded" for u in ledger["units"].values())
    assert set(ledger["units"]) == {
        u.rel for u in units(stored_run.run_dir, load_recipe(stored_run.run_dir / "recipe.yaml"))
    }
    log = (stored_run.run_dir / "logs" / "task0.out").read_text()
    assert f"upload: everything is in {run_uri}" in log

    local = store.download_run(run_uri, tmp_path / "from-store")
    assert (local / "recipe.yaml").read_bytes() == (stored_run.run_dir / "recipe.yaml").read_bytes()
    assert [p.name for p in complete_checkpoints(local)] == ["checkpoint-10", "checkpoint-20"]
    original = stored_run.run_dir / "checkpoints" / "checkpoint-20"
    assert tree(local / "checkpoints" / "checkpoint-20") == tree(original)
    eval_recipe = load_recipe("tiny_ner_eval")
    assert evaluation.fingerprint(str(local / "checkpoints" / "checkpoint-20"), eval_recipe) == \
        evaluation.fingerprint(str(original), eval_recipe)  # fmt: skip

    sync = stored_run.launch("sync", stored_run.run_id)
    assert f"{stored_run.run_id}: 0 unit(s) uploaded" in sync.stdout
    detail = stored_run.launch("status", stored_run.run_id).stdout
    assert f"uploaded to {run_uri}" in detail


@pytest.mark.slow
def test_checksums_in_the_manifest_match_the_local_files(stored_run: StoredRun, s3: S3Server) -> None:
    key = f"trained/{stored_run.run_id}/checkpoints/checkpoint-10/{MARKER}"
    manifest = json.loads(s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    ckpt = stored_run.run_dir / "checkpoints" / "checkpoint-10"
    assert manifest["marker"] == (ckpt / MARKER).read_text()
    for entry in manifest["files"]:
        data = (ckpt / entry["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
    assert {e["path"] for e in manifest["files"]} == {p.name for p in ckpt.iterdir()} - {MARKER}


@pytest.mark.slow
def test_reeval_evaluates_checkpoints_straight_from_the_store(
    stored_run: StoredRun, s3: S3Server, tmp_path: Path
) -> None:
    run_uri = f"{stored_run.uri}/{stored_run.run_id}"
    runs = tmp_path / "elsewhere"
    env = {"LAUNCH_RUNS": str(runs), "LAUNCH_HOME": str(tmp_path / "home")}
    stored_run.launch(
        "reeval", run_uri, "--cluster", "local", "--last", "1", "--follow",
        "--set", "eval.max_samples=8", "--set", "tracking.wandb.mode=disabled", **env,
    )  # fmt: skip
    local = runs / stored_run.run_id
    assert [p.name for p in complete_checkpoints(local)] == ["checkpoint-20"]
    (found,) = (local / "results" / "checkpoint-20").glob("*/metrics.json")
    metrics = json.loads(found.read_text())
    assert metrics["sentences"] == 8
    key = f"trained/{stored_run.run_id}/{found.relative_to(local).as_posix()}"
    assert key in s3.keys(f"trained/{stored_run.run_id}/results/"), "results did not go back to the store"
