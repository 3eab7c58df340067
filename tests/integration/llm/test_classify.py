"""The classify job end to end against a real llama.cpp server on loopback (SmolLM2-135M-Instruct):
zero-shot with a rerun that sends nothing, a few-shot cascade (an endpoint that refuses logprobs is
in tests/integration/local/test_classify_hostile.py: llama-server always gives them)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.support.classify import run_job
from tests.support.cli import Launch
from tests.support.llm_server import MODEL, LLMServer

ROWS = {"id", "level", "gold", "candidates", "predictions", "raw", "parse_status", "latency_ms",
        "prompt_tokens", "completion_tokens", "cached"}  # fmt: skip

TOP = {"n", "top1", "top3", "top5", "calibration", "latency_ms", "requests_sent", "cached",
       "dataset", "level", "shots", "mode", "model", "engine"}  # fmt: skip


def server_args(url: str, n: int, *more: str) -> list[str]:
    return ["--set", f"eval.api.base_url={url}", "--set", f"model.name_or_path={MODEL}", "--set",
            f"classify.sample={n}", "--set", "classify.response_format=llama_schema",
            # the research's 50 in flight (the job sends at most the server's slots at once); 600 s:
            # a CI machine can be far busier than the 60 s were set for
            "--set", "eval.api.timeout_s=600", *more]  # fmt: skip


@pytest.mark.slow
def test_zero_shot_against_the_local_server_then_a_rerun_sends_nothing(
    llm_server: LLMServer, launch: Launch
) -> None:
    results, metrics, rows, log = run_job(launch, "agnews_zero_shot", *server_args(llm_server.url, 5))
    assert set(metrics) >= TOP and metrics["n"] == 5 and len(rows) == 5
    assert (metrics["dataset"], metrics["level"], metrics["shots"], metrics["mode"], metrics["engine"]) == (
        "ag_news",
        1,
        0,
        "oracle",
        "openai",
    )
    assert metrics["requests_sent"] == 5 and metrics["cached"] == 0 and metrics["logprobs_available"]
    assert (results / "reliability.png").is_file()
    for row in rows:
        assert set(row) >= ROWS and row["candidates"] == ["1", "2", "3", "4"] and row["parse_status"] == "ok"
        assert 1 <= len(row["predictions"]) <= 4 and row["completion_tokens"] > 0
        top = row["predictions"][0]
        assert top["confidence_verbal"] is None or 0 <= top["confidence_verbal"] <= 1
        # the schema forces a candidate: its own mass is found; it rounds to 0 where the grammar forced
        # tokens the model did not want ("S", "port", "s" at p 0.01, 0.09, 0.0003)
        assert top["confidence_logprob"] is not None and 0 <= top["confidence_logprob"] <= 1
        assert sum(p["confidence_logprob"] for p in row["predictions"]) <= 1 + 1e-6
    assert any(r["predictions"][0]["confidence_logprob"] > 0 for r in rows)
    assert metrics["calibration"]["logprob"] is not None and metrics["calibration"]["verbalized"] is not None
    assert "5/5 items" in log

    _, again, rows2, log2 = run_job(launch, "agnews_zero_shot", *server_args(llm_server.url, 5))
    assert again["requests_sent"] == 0 and again["cached"] == 5, log2
    assert [r["predictions"] for r in rows2] == [r["predictions"] for r in rows]
    assert all(r["cached"] for r in rows2)

    _, off, _, _ = run_job(
        launch, "agnews_zero_shot", *server_args(llm_server.url, 2), "--set", "eval.cache=false"
    )
    assert off["requests_sent"] == 2 and off["cached"] == 0


@pytest.mark.slow
def test_few_shot_cascade_on_a_csv_with_a_code_column_per_level(
    llm_server: LLMServer, launch: Launch, tmp_path: Path
) -> None:
    data, labels = hierarchy_files(tmp_path)
    _, metrics, rows, _ = run_job(
        launch, "agnews_few_shot", *server_args(llm_server.url, 3), "--set", "data.dataset=csv",
        "--set", f"data.path={data}", "--set", f"classify.labels={labels}", "--set", "classify.levels=[1, 2]",
        "--set", "classify.mode=cascade", "--set", "classify.columns.text=[title]",
        "--set", "classify.columns.codes={1: top, 2: sub}", "--set", "classify.columns.id=key",
        "--set", "eval.shots=2",
    )  # fmt: skip
    assert metrics["dataset"] == "topics" and metrics["level"] == 2 and metrics["mode"] == "cascade"
    by_level = {lv: [r for r in rows if r["level"] == lv] for lv in (1, 2)}
    assert len(by_level[1]) == 3 and len(by_level[2]) == 3
    ids = {r["id"] for r in rows}
    assert ids <= {f"k{i}" for i in range(8)}
    for r1 in by_level[1]:
        r2 = next(r for r in by_level[2] if r["id"] == r1["id"])
        top = r1["predictions"][0]["label"]
        assert r2["candidates"] == [c for c in ("110", "120", "210", "220") if c[0] == top[0]]
    h = metrics["hierarchy"]
    assert set(h) >= {"levels", "per_level_top1", "joint_top1", "hit_rate_product"}
    assert math.isclose(h["hit_rate_product"], h["per_level_top1"]["1"] * h["per_level_top1"]["2"])


def hierarchy_files(tmp_path: Path) -> tuple[Path, Path]:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "code,level,label,definition\n100,1,Science,Research and nature\n200,1,Sports,Games and athletes\n"
        "110,2,Physics,Matter and energy\n120,2,Biology,Living things\n210,2,Football,The ball game\n"
        "220,2,Tennis,Rackets and courts\n"
    )
    data = tmp_path / "topics.csv"
    rows = [("k0", "Quarks and the energy of particle colliders", "100", "110"),
            ("k1", "Cells divide: a new study of living tissue", "100", "120"),
            ("k2", "Striker scores twice as the home team wins the cup", "200", "210"),
            ("k3", "Wimbledon: the champion wins in straight sets", "200", "220"),
            ("k4", "Gravity waves measured by a new detector", "100", "110"),
            ("k5", "The genome of a frog is read in full", "100", "120"),
            ("k6", "Goalkeeper saves a penalty in the final", "200", "210"),
            ("k7", "A new racket technology for the serve", "200", "220")]  # fmt: skip
    data.write_text("key,title,top,sub\n" + "".join(f"{k},{t},{a},{b}\n" for k, t, a, b in rows))
    return data, labels
