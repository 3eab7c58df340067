"""The classify job against a hostile OpenAI-compatible server on loopback (tests.support.hostile_llm):
malformed 200s and empty answers are failed items that are never cached, non-finite numbers are
written as `null`, stored answers are capped, and a broken response cache is said in one line and
then done without (issue 26, items 4, 5, 14 and 15); an API key the server echoes back reaches no
file and no output, and a dripping or hanging server fails an item within attempts x timeout_s
(items 1 and 2)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.classify import run_dir_of
from tests.support.cli import Launch
from tests.support.hostile_llm import ECHOES, HUGE_BYTES, HostileLLM

CAP = 64 * 1024  # jobs.classify.answer.MAX_ANSWER_BYTES, as the README states it

MALFORMED = ["invalid_json", "choices_empty", "choices_null", "empty_object", "html", "non_utf8",
             "logprob_huge", "logprob_string", "logprob_infinity", "error_in_200"]  # fmt: skip


@pytest.fixture
def server() -> Iterator[HostileLLM]:
    with HostileLLM() as hostile:
        yield hostile


def _reject(constant: str) -> Any:
    raise AssertionError(f"{constant} is not JSON")


def strict_json(text: str) -> Any:
    """JSON as the standard has it: NaN and Infinity refused."""
    return json.loads(text, parse_constant=_reject)


def classify(
    launch: Launch, url: str, *args: str, sample: int = 2
) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """One classify run against `url` on the local backend: (metrics, predictions rows, job log)."""
    sets = [f"eval.api.base_url={url}", f"classify.sample={sample}", "eval.api.max_concurrency=1",
            "tracking.wandb.mode=disabled"]  # fmt: skip
    proc = launch("recipe", "agnews_zero_shot", "--cluster", "local", "--follow",
                  *(a for s in sets for a in ("--set", s)), *args)  # fmt: skip
    run_dir = run_dir_of(proc.stdout)
    log = "".join(p.read_text(errors="replace") for p in sorted((run_dir / "logs").glob("task0.*")))
    assert proc.returncode == 0, proc.stdout + proc.stderr + log
    assert "Traceback" not in log, log
    results = next((run_dir / "results").glob("*/*/metrics.json")).parent
    rows = [strict_json(line) for line in (results / "predictions.jsonl").read_text().splitlines()]
    return strict_json((results / "metrics.json").read_text()), rows, log


def cached_answers(env: dict[str, str], url: str) -> list[str]:
    """The answers the response cache holds for endpoint `url`."""
    path = Path(env["LAUNCH_HOME"]) / "cache" / "classify.sqlite"
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT response FROM responses WHERE endpoint = ?", (url,))]


@pytest.mark.parametrize("mode", MALFORMED)
def test_a_malformed_200_is_a_failed_item_and_is_not_cached(
    mode: str, launch: Launch, launch_env: dict[str, str], server: HostileLLM
) -> None:
    url = server.url(mode)
    metrics, rows, _ = classify(launch, url)
    assert metrics["n"] == 2 and metrics["failures"] == 2 and metrics["parse_status"]["error"] == 2
    assert metrics["requests_sent"] == 2 and metrics["cached"] == 0
    assert all(r["parse_status"] == "error" and r["predictions"] == [] and r["raw"] for r in rows), rows
    assert cached_answers(launch_env, url) == []
    if mode.startswith("logprob"):  # these were cached before the fix: every rerun crashed from the cache
        metrics, _, _ = classify(launch, url)
        assert metrics["failures"] == 2 and server.requests[mode] == 4


@pytest.mark.parametrize("empty", ["content_null", "content_empty"])
def test_an_empty_answer_is_a_failure_and_a_rerun_asks_again(
    empty: str, launch: Launch, launch_env: dict[str, str], server: HostileLLM
) -> None:
    url = server.url("live")
    server.live = empty
    metrics, rows, _ = classify(launch, url)
    assert metrics["failures"] == 2 and metrics["parse_status"]["error"] == 2 and metrics["n"] == 2
    assert all("empty" in r["raw"] for r in rows), rows
    assert cached_answers(launch_env, url) == []
    server.live = "ok"  # the endpoint recovers: the rerun asks again and scores the answers
    metrics, rows, _ = classify(launch, url)
    assert metrics["requests_sent"] == 2 and metrics["cached"] == 0 and metrics["failures"] == 0
    assert metrics["parse_status"]["ok"] == 2 and server.requests["live"] == 4


def test_a_huge_answer_is_stored_capped_with_a_marker(
    launch: Launch, launch_env: dict[str, str], server: HostileLLM
) -> None:
    url = server.url("huge")
    metrics, rows, _ = classify(launch, url)
    assert metrics["failures"] == 0 and metrics["parse_status"]["ok"] == 2  # the answer opens the text
    for row in rows:
        assert len(row["raw"].encode()) < CAP + 200 and row["raw"].endswith(
            "bytes; the first 65536 are kept]"
        ), row["raw"][-200:]
    stored = cached_answers(launch_env, url)
    assert len(stored) == 2 and all(len(s.encode()) < CAP + 2000 for s in stored)
    again, rerun_rows, _ = classify(launch, url)
    assert again["cached"] == 2 and [r["raw"] for r in rerun_rows] == [r["raw"] for r in rows]
    assert HUGE_BYTES > 10 * CAP


def test_infinity_logprobs_never_reach_the_predictions_as_nan(launch: Launch, server: HostileLLM) -> None:
    _, rows, _ = classify(launch, server.url("logprob_infinity"))  # strict_json refuses NaN
    assert all(r["parse_status"] == "error" for r in rows)


def test_a_lone_surrogate_in_an_answer_is_scored_and_written(
    launch: Launch, launch_env: dict[str, str], server: HostileLLM
) -> None:
    url = server.url("lone_surrogate")
    metrics, rows, _ = classify(launch, url)
    assert metrics["failures"] == 0 and metrics["parse_status"]["ok"] == 2
    assert all(r["raw"].endswith("\ufffd" * 3) for r in rows) and len(cached_answers(launch_env, url)) == 2


def _garbage(path: Path) -> str:
    path.write_bytes(b"this is not a database\n" * 100)
    return "corrupt"


def _directory(path: Path) -> str:
    path.mkdir()
    return "a directory"


@pytest.mark.parametrize("breaks", [_garbage, _directory], ids=["corrupt", "directory"])
def test_a_broken_cache_is_said_in_one_line_and_the_job_runs_without_it(
    breaks: Any, launch: Launch, launch_env: dict[str, str], server: HostileLLM
) -> None:
    path = Path(launch_env["LAUNCH_HOME"]) / "cache" / "classify.sqlite"
    path.parent.mkdir(parents=True)
    breaks(path)
    before = path.read_bytes() if path.is_file() else None
    metrics, _, log = classify(launch, server.url("ok"))
    assert metrics["n"] == 2 and metrics["failures"] == 0 and metrics["requests_sent"] == 2
    warnings = [line for line in log.splitlines() if str(path) in line and "without the cache" in line]
    assert len(warnings) == 1, log
    assert before is None or path.read_bytes() == before  # the user's file is left as it was


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """`directory` read-only for this process: a read-only bind mount when we are root (root writes
    through file modes), its files' and its own modes otherwise."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
            yield
        finally:
            subprocess.run(["umount", str(directory)], check=True)
        return
    for p in directory.iterdir():
        p.chmod(0o444)
    directory.chmod(0o555)
    try:
        yield
    finally:
        directory.chmod(0o755)


def test_a_read_only_cache_is_said_in_one_line(
    launch: Launch, launch_env: dict[str, str], server: HostileLLM
) -> None:
    url = server.url("ok")
    classify(launch, url)
    path = Path(launch_env["LAUNCH_HOME"]) / "cache" / "classify.sqlite"
    with read_only(path.parent):
        metrics, _, log = classify(launch, url, "--set", "classify.seed=7")
    assert metrics["n"] == 2 and metrics["failures"] == 0
    assert sum(str(path) in line and "without the cache" in line for line in log.splitlines()) == 1, log


# ------------------------------------------------- item 1: an echoed key reaches no file, no output
def test_an_echoed_key_reaches_no_file_and_no_output(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path, server: HostileLLM
) -> None:
    """The key (from a variable whose name does not look secret, so only the recipe names it) and
    another secret of the environment, echoed back in an error body of each status and in a 200's
    answer, its logprob tokens and its malformed bodies: none of them, nor a part of one, is in any
    file the run, the job or the cache wrote, or in what `launch` printed."""
    key, token = f"sk-{secrets.token_hex(20)}", f"hf_{secrets.token_hex(16)}"
    launch_env.update(LLM_AUTH=key, HF_TOKEN=token)
    server.echo_also = [token]
    sets = [f"eval.api.base_url={server.url('echo')}", "eval.api.key_env=LLM_AUTH", "classify.attempts=1",
            f"classify.sample={len(ECHOES)}", "eval.api.max_concurrency=1",
            "tracking.wandb.mode=disabled"]  # fmt: skip
    proc = launch("recipe", "agnews_zero_shot", "--cluster", "local", "--follow",
                  *(a for s in sets for a in ("--set", s)))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert server.requests["echo"] == len(ECHOES)
    parts = [s[i : i + 10] for s in (key, token) for i in range(len(s) - 9)]  # a cut can leave a part
    leaks = [str(p.relative_to(tmp_path)) for p in sorted(tmp_path.rglob("*"))
             if p.is_file() and any(part.encode() in p.read_bytes() for part in parts)]  # fmt: skip
    assert not leaks, leaks
    printed = proc.stdout + proc.stderr
    assert not [part for part in parts if part in printed], printed
    results = next((run_dir_of(proc.stdout) / "results").glob("*/*/metrics.json")).parent
    rows = [strict_json(line) for line in (results / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(ECHOES)
    for row, (what, _) in zip(rows, ECHOES, strict=True):
        quoted = "***" in row["raw"] or row["raw"].endswith(
            f"Error code: {what}"
        )  # openai quotes only `message`
        assert quoted, (what, row["raw"])
        assert row["parse_status"] == ("error" if what != "200 answer" else "ok"), (what, row)
        assert what.startswith("200") or what in row["raw"], (what, row["raw"])  # the status is kept
    assert rows[0]["raw"].endswith("key: *** ***"), rows[0]["raw"]  # the key, then the other secret


# ----------------------------------------- item 2: a dripping or hanging server: attempts x timeout_s
@pytest.mark.parametrize("mode", ["drip", "hang"])
def test_a_dripping_or_hanging_server_fails_each_item_within_attempts_times_the_timeout(
    mode: str, launch: Launch, server: HostileLLM
) -> None:
    """timeout_s 2, 2 attempts: each item fails within 2 x 2 s plus the client's backoff (0.5 s)
    and some slack, and the job goes on to the next item; `drip` (a byte a second) outlived every
    read timeout before, for up to 60 s an attempt."""
    started = time.monotonic()
    metrics, rows, _ = classify(
        launch, server.url(mode), "--set", "eval.api.timeout_s=2", "--set", "classify.attempts=2"
    )
    assert metrics["n"] == 2 and metrics["failures"] == 2 and server.requests[mode] == 4
    for row in rows:
        assert row["parse_status"] == "error" and "timeout_s" in row["raw"], row
        assert 3900 <= row["latency_ms"] <= 4000 + 500 + 2000, row["latency_ms"]
    assert time.monotonic() - started < 60


# ------------------------------------------------------------------- an endpoint that refuses logprobs
def test_an_endpoint_that_refuses_logprobs_is_said_once_and_never_zero(
    launch: Launch, server: HostileLLM
) -> None:
    """The refusal (a 400 naming logprobs) is said once in the log and in metrics `notes`, the
    logprob calibration is null (never zero), the answers are scored, and a rerun remembers it."""
    url = server.url("no_logprobs")
    metrics, rows, log = classify(launch, url, sample=3)
    assert log.count("refuses logprobs") == 1 and any("refuses logprobs" in n for n in metrics["notes"])
    assert metrics["calibration"]["logprob"] is None and not metrics["logprobs_available"]
    assert all(p["confidence_logprob"] is None for r in rows for p in r["predictions"])
    assert all(r["parse_status"] == "ok" for r in rows)
    again, _, log2 = classify(launch, url, sample=3)
    assert again["requests_sent"] == 0 and again["cached"] == 3 and "remembered" in log2
