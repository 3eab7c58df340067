"""The classify job's pure pieces, with hand-checked values: answer parsing and verbal confidence,
label distribution, support selection, the response cache, the rate limit."""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

from jobs.classify.answer import TokenLogprob, label_distribution, parse_answer, token_span, verbal
from jobs.classify.cache import ResponseCache
from jobs.data.classification import Item, sample_items, support_examples
from launcher.scoring.labels import Label


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


def test_a_span_of_the_content_is_found_in_tokens_that_wrote_more() -> None:
    # llama.cpp's jinja mode returns the JSON without the ```json fence its tokens wrote
    tokens = [
        TokenLogprob("```json\n", 0.0),
        TokenLogprob('{"category": "Sports"}', 0.0),
        TokenLogprob("\n```", 0.0),
    ]
    content = '{"category": "Sports"}'
    span = parse_answer(content).first_span
    assert span == (14, 20) and token_span(tokens, content, span) == (22, 28)
    assert "".join(t.token for t in tokens)[22:28] == "Sports"
    assert token_span(tokens[1:2], content, span) == span
    assert token_span(tokens[:1], content, span) is None


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
