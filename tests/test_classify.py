"""The classify job end to end against a real llama.cpp server on loopback (SmolLM2-135M-Instruct),
the hf engine in-process, and the pure pieces (answer parsing, logprob confidence, support
selection, the response cache) with hand-checked values."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from jobs.classify.answer import TokenLogprob, label_distribution, parse_answer, verbal
from jobs.classify.cache import ResponseCache
from jobs.data.classification import Item, sample_items, support_examples
from launcher.scoring.labels import Label
from tests.conftest import Launch
from tests.llm_server import MODEL, LLMServer, start_server, stop_server

ROWS = {"id", "level", "gold", "candidates", "predictions", "raw", "parse_status", "latency_ms",
        "prompt_tokens", "completion_tokens", "cached"}  # fmt: skip
TOP = {"n", "top1", "top3", "top5", "calibration", "latency_ms", "requests_sent", "cached",
       "dataset", "level", "shots", "mode", "model", "engine"}  # fmt: skip


def server_args(url: str, n: int, *more: str) -> list[str]:
    return ["--set", f"eval.api.base_url={url}", "--set", f"model.name_or_path={MODEL}", "--set",
            f"classify.sample={n}", "--set", "classify.response_format=llama_schema",
            # llama.cpp answers one request at a time: on a busy shared machine the research's 60 s
            # would time out requests that wait in its queue
            "--set", "eval.api.max_concurrency=2", "--set", "eval.api.timeout_s=600", *more]  # fmt: skip


def run_dir_of(output: str) -> Path:
    """The run directory of the run id `launch recipe` prints first (LAUNCH_RUNS: the launch fixture's)."""
    return Path(os.environ["LAUNCH_RUNS"]) / output.split()[0]


def run_job(
    launch: Launch, recipe: str, *args: str
) -> tuple[Path, dict[str, Any], list[dict[str, Any]], str]:
    """`launch recipe RECIPE --cluster local --follow ARGS`: (results dir, metrics, rows, job log)."""
    proc = launch("recipe", recipe, "--cluster", "local", "--follow", *args, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = run_dir_of(proc.stdout)
    log = "".join(p.read_text() for p in sorted((run_dir / "logs").glob("*")))
    results = next((run_dir / "results").glob("*/*/metrics.json")).parent
    rows = [json.loads(line) for line in (results / "predictions.jsonl").read_text().splitlines()]
    return results, json.loads((results / "metrics.json").read_text()), rows, log


# ------------------------------------------------------------------------------ a real server


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
        assert 0 < top["confidence_logprob"] <= 1  # the schema forces a candidate: its own mass is found
        assert sum(p["confidence_logprob"] for p in row["predictions"]) <= 1 + 1e-6
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


@pytest.mark.slow
def test_an_endpoint_that_refuses_logprobs_is_said_once_and_never_zero(
    launch: Launch, tmp_path: Path
) -> None:
    server = start_server(tmp_path / "llm", LLM_LOGITS_ALL="false")
    try:
        _, metrics, rows, log = run_job(launch, "agnews_zero_shot", *server_args(server.url, 3))
        assert log.count("refuses logprobs") == 1 and any("refuses logprobs" in n for n in metrics["notes"])
        assert metrics["calibration"]["logprob"] is None and not metrics["logprobs_available"]
        assert all(p["confidence_logprob"] is None for r in rows for p in r["predictions"])
        assert all(r["parse_status"] == "ok" for r in rows)
        _, again, _, log2 = run_job(launch, "agnews_zero_shot", *server_args(server.url, 3))
        assert again["requests_sent"] == 0 and again["cached"] == 3 and "remembered" in log2
    finally:
        stop_server(server)


# ------------------------------------------------------------------------------ the hf engine


@pytest.mark.slow
def test_hf_loglik_gives_a_probability_over_the_candidates(launch: Launch) -> None:
    _, metrics, rows, _ = run_job(
        launch, "agnews_zero_shot", "--set", "eval.engine=hf", "--set", f"model.name_or_path={MODEL}",
        "--set", "classify.hf_mode=loglik", "--set", "classify.sample=3",
    )  # fmt: skip
    assert metrics["engine"] == "hf-loglik" and metrics["requests_sent"] == 3
    assert metrics["calibration"]["verbalized"] is None and metrics["calibration"]["logprob"] is not None
    for row in rows:
        probs = [p["confidence_logprob"] for p in row["predictions"]]
        assert (
            len(probs) == 4 and math.isclose(sum(probs), 1.0, abs_tol=1e-4) and probs == sorted(probs)[::-1]
        )
        assert set(row["loglik"]) == {"World", "Sports", "Business", "Sci/Tech"}


@pytest.mark.slow
def test_hf_generate_answers_like_the_api_engine(launch: Launch) -> None:
    _, metrics, rows, _ = run_job(
        launch, "agnews_zero_shot", "--set", "eval.engine=hf", "--set", f"model.name_or_path={MODEL}",
        "--set", "classify.sample=2", "--set", "eval.max_new_tokens=40",
    )  # fmt: skip
    assert metrics["engine"] == "hf-generate" and metrics["n"] == 2
    assert all(r["completion_tokens"] > 0 and r["raw"] for r in rows)


# ------------------------------------------------------------------------------ refusals


def test_bad_classify_recipes_are_refused_in_one_line(launch: Launch) -> None:
    for args, key in (
        (["--set", "eval.engine=vllm"], "eval.engine"),
        (["--set", "classify.mode=cascade", "--set", "classify.levels=[2]"], "classify.levels"),
        (["--set", "classify.prompt=/nonexistent.txt"], "classify.prompt"),
        (["--set", "data.dataset=csv"], "data.path"),
        (["--set", "classify.modes=oracle"], "classify.modes"),
    ):
        proc = launch("recipe", "agnews_zero_shot", "--cluster", "local", *args)
        assert proc.returncode == 2 and key in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_remote_endpoint_without_its_key_fails_in_one_line(
    launch: Launch, launch_env: dict[str, str]
) -> None:
    launch_env.pop("OPENAI_API_KEY", None)
    proc = launch(
        "recipe", "agnews_zero_shot", "--cluster", "local", "--follow", "--set", "classify.sample=2"
    )
    assert proc.returncode != 0
    run_dir = run_dir_of(proc.stdout)
    err = (run_dir / "logs" / "task0.err").read_text()
    assert "$OPENAI_API_KEY is not set" in err and len(err.strip().splitlines()) == 1, err
    assert not (run_dir / "results").exists()


# ------------------------------------------------------------------------------ pure pieces


def test_parse_answer_and_verbal_confidence() -> None:
    raw = 'Sure:\n```json\n{"predictions": [{"category": "Sports", "confidence": 85}, '
    raw += '{"category": "World"}]}\n```'
    answer = parse_answer(raw)
    assert answer.ok and answer.items == [("Sports", 0.85), ("World", None)]
    assert answer.first_span is not None and raw[slice(*answer.first_span)] == "Sports"
    cut = '{"predictions": [{"category": "Business", "confidence": 0.7}, {"category": "Wor'
    assert parse_answer(cut).items == [("Business", 0.7)]
    assert not parse_answer("no idea").ok
    assert verbal("0.4") == 0.4 and verbal(40) == 0.4 and verbal(250) == 1.0 and verbal("x") is None


def test_label_distribution_by_hand() -> None:
    # the model wrote ' "Sports' then '"': at the label's first token the alternatives were
    # ' "World' (p .2) and ' "Sci' (p .1, only Sci/Tech starts with "Sci"); "Spo" is no candidate's
    lp = math.log
    text = '{"category": "Sports"}'
    tokens = [TokenLogprob('{"category":', 0.0), TokenLogprob(' "Sports', lp(0.6),
              ((' "Sports', lp(0.6)), (' "World', lp(0.2)), (' "Sci', lp(0.1)), (' "Spo', lp(0.05)))),
              TokenLogprob('"}', lp(0.9), (('"}', lp(0.9)),))]  # fmt: skip
    assert "".join(t.token for t in tokens) == text
    span = parse_answer(text).first_span
    assert span == (14, 20)
    labels = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}
    dist = label_distribution(tokens, span, labels)
    total = 0.6 + 0.2 + 0.1  # Sports: the path of its label tokens; World, Sci/Tech: their first token
    assert dist.keys() == {"1", "2", "4"}
    assert math.isclose(dist["2"], 0.6 / total) and math.isclose(dist["1"], 0.2 / total)
    assert math.isclose(dist["4"], 0.1 / total)


def test_the_sample_is_pandas_seed_42_and_support_never_comes_from_it() -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": range(7600)})
    items = [Item(str(i), f"t{i}", {1: str(i % 4 + 1)}) for i in range(7600)]
    cell, pool = sample_items(items, 500, 42)
    assert [int(i.id) for i in cell] == frame.sample(n=500, random_state=42).index.tolist()
    assert len(pool) == 7100 and not {i.id for i in cell} & {i.id for i in pool}
    cands = [Label(str(c), 1, name) for c, name in enumerate(("World", "Sports", "Business", "Sci/Tech"), 1)]
    shots = support_examples(pool, cands, 1, 4, "per_class", 42)
    assert sorted(lab.code for _, lab in shots) == ["1", "2", "3", "4"]
    assert all(item.gold[1] == lab.code for item, lab in shots)
    assert shots == support_examples(pool, cands, 1, 4, "per_class", 42)  # seeded
    assert len(support_examples(pool, cands, 1, 6, "per_class", 42)) == 6
    firsts = support_examples(pool, cands, 1, 4, "first_per_parent", 42)
    assert [item.id for item, _ in firsts] == [next(i.id for i in pool if i.gold[1] == c) for c in "1234"]
    assert support_examples(pool, cands, 1, 0, "per_class", 42) == []


def _writer(path: str, start: int) -> None:
    cache = ResponseCache(Path(path))
    for i in range(start, start + 50):
        cache.put(f"k{i}", "http://e", "m", {"text": str(i)})
    cache.close()


def test_the_cache_takes_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ResponseCache(path).close()
    procs = [
        multiprocessing.get_context("spawn").Process(target=_writer, args=(str(path), s)) for s in (0, 50)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    cache = ResponseCache(path)
    assert len(cache) == 100 and cache.get("k77") == {"text": "77"}
    assert ResponseCache(path, enabled=False).get("k77") is None


def test_the_rate_limit_spaces_request_starts() -> None:
    import asyncio
    import time

    from jobs.classify.engines import RateLimit

    async def starts(limit: RateLimit, n: int) -> list[float]:
        out: list[float] = []

        async def one() -> None:
            await limit.wait()
            out.append(time.monotonic())

        await asyncio.gather(*(one() for _ in range(n)))
        return out

    times = asyncio.run(starts(RateLimit(1200), 4))  # 1,200 per minute: one every 50 ms
    assert times[-1] - times[0] >= 0.15 - 1e-3
    assert asyncio.run(starts(RateLimit(None), 3))  # no limit: no wait


def test_support_does_not_change_when_the_cell_shrinks() -> None:
    items = [Item(str(i), f"t{i}", {1: str(i % 4 + 1)}) for i in range(400)]
    cands = [Label(str(c), 1, name) for c, name in enumerate(("World", "Sports", "Business", "Sci/Tech"), 1)]
    big = support_examples(sample_items(items, 40, 42)[1], cands, 1, 4, "per_class", 42)
    small = support_examples(sample_items(items, 20, 42)[1], cands, 1, 4, "per_class", 42)
    assert [i.id for i, _ in big] == [i.id for i, _ in small]
