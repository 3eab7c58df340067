"""The classify job's reading of an endpoint's reply and what it stores (issue 26, items 4, 5, 14,
15): every malformed body of the hostile test server is Malformed, empty content too; non-finite
numbers are written as null; stored answers are capped; a damaged cache entry is a miss; an unusable
cache is one line and then a no-op."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from jobs.classify.answer import (
    LOGPROB_FLOOR,
    MAX_ANSWER_BYTES,
    Malformed,
    TokenLogprob,
    cap_answer,
    read_completion,
    verbal,
)
from jobs.classify.cache import ResponseCache
from jobs.classify.engines import Reply
from jobs.results import write_jsonl
from launcher.jsonio import atomic_write_json, dumps, finite
from tests.support.hostile_llm import ANSWER, MODES, completion

MALFORMED = {
    "invalid_json": "not JSON",
    "choices_empty": "choices is [], not a non-empty list",
    "choices_null": "choices is null, not a non-empty list",
    "empty_object": "choices is null",
    "html": "not JSON (52 bytes starting '<html>",
    "non_utf8": "not UTF-8",
    "logprob_huge": "logprobs.content[0].logprob is 1000, not a log-probability",
    "logprob_string": 'logprobs.content[0].logprob is "high", not a number',
    "logprob_infinity": "logprobs.content[0].logprob is inf, not a log-probability",
    "error_in_200": "the body is an error: model overloaded",
    "content_null": "empty answer (content null)",
    "content_empty": 'empty answer (content "")',
}


def body(mode: str) -> bytes:
    return MODES[mode]()[2]


@pytest.mark.parametrize("mode", sorted(MALFORMED))
def test_each_malformed_body_is_malformed_and_says_why(mode: str) -> None:
    with pytest.raises(Malformed) as err:
        read_completion(body(mode))
    assert MALFORMED[mode] in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "data",
    [[], "x", {"choices": [None]}, {"choices": [{"message": "hi"}]}, {"choices": [{"message": {}}]},
     {"choices": [{"message": {"content": "   \n"}}]}, {"choices": [{"message": {"content": [1]}}]},
     {"choices": [{"message": {"content": "a"}, "logprobs": {"content": [{"token": 1, "logprob": 0}]}}]},
     {"choices": [{"message": {"content": "a"}, "logprobs": {"content": "abc"}}]},
     {"choices": [{"message": {"content": "a"}, "logprobs": {"content": [{"token": "a", "logprob": True}]}}]},
     {"choices": [{"message": {"content": "a"}, "logprobs": {
         "content": [{"token": "a", "logprob": 0, "top_logprobs": [{"logprob": 0}]}]}}]}],
)  # fmt: skip
def test_other_shapes_that_hold_no_answer_are_malformed(data: object) -> None:
    with pytest.raises(Malformed):
        read_completion(json.dumps(data).encode())


def test_a_good_body_is_read_with_its_tokens_and_usage() -> None:
    answer = read_completion(body("ok"))
    assert answer.text == ANSWER and answer.prompt_tokens == 10 and answer.completion_tokens == 5
    assert answer.tokens is not None and "".join(t.token for t in answer.tokens) == ANSWER
    plain = read_completion(json.dumps(completion("hi")).encode())
    assert plain.tokens is None and plain.text == "hi"
    odd_usage = {**completion("hi"), "usage": {"prompt_tokens": "many", "completion_tokens": -3}}
    assert read_completion(json.dumps(odd_usage).encode()).prompt_tokens == 0


def test_minus_infinity_is_the_floor_and_rounding_above_zero_is_zero() -> None:
    data = completion("ab", [{"token": "a", "logprob": float("-inf"), "top_logprobs": []},
                             {"token": "b", "logprob": 1e-6}])  # fmt: skip
    got = read_completion(json.dumps(data).encode()).tokens
    assert got == [TokenLogprob("a", LOGPROB_FLOOR), TokenLogprob("b", 0.0)]
    assert math.exp(LOGPROB_FLOOR) == 0.0


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    answer = read_completion(body("lone_surrogate"))
    assert answer.text.endswith("\ufffd" * 3) and answer.text.encode("utf-8")


def test_answers_are_capped_with_a_marker_once_and_their_tokens_cut() -> None:
    text = "é" * MAX_ANSWER_BYTES  # two bytes each: the cut falls inside a character
    toks = [TokenLogprob("é" * 1000, -0.1) for _ in range(MAX_ANSWER_BYTES // 1000)]
    capped, kept = cap_answer(text, toks)
    head = capped.split("\n[... truncated")[0]
    assert len(head.encode()) <= MAX_ANSWER_BYTES and head == "é" * (MAX_ANSWER_BYTES // 2)
    assert capped.endswith(
        f"the answer was {2 * MAX_ANSWER_BYTES} bytes; the first {MAX_ANSWER_BYTES} are kept]"
    )
    assert kept is not None and len(kept) == 33  # the tokens that start before the cut
    assert cap_answer(capped, kept) == (capped, kept)  # a cached answer is not cut again
    assert cap_answer("short", None) == ("short", None)
    huge = read_completion(body("huge"))
    assert len(huge.text.encode()) < MAX_ANSWER_BYTES + 100 and huge.text.startswith(ANSWER)


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    row = {"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": {"d": (float("nan"),)}, "e": 2}
    assert finite(row) == {"a": None, "b": [None, None, 1.5], "c": {"d": [None]}, "e": 2}
    assert json.loads(dumps(row)) == finite(row)
    write_jsonl(tmp_path / "p.jsonl", [row])
    atomic_write_json(tmp_path / "m.json", row)
    for name in ("p.jsonl", "m.json"):
        text = (tmp_path / name).read_text()
        assert "NaN" not in text and "Infinity" not in text, text
    assert verbal(float("inf")) is None and verbal("nan") is None


def test_a_damaged_cache_entry_reads_as_a_miss() -> None:
    good = Reply(text="x", tokens=[TokenLogprob("x", -0.5, (("x", -0.5), ("y", -1.0)))], prompt_tokens=3)
    back = Reply.from_cache(json.loads(json.dumps(good.to_cache())))
    assert back is not None and back.tokens == good.tokens and back.cached and back.prompt_tokens == 3
    for bad in ({"text": None}, {}, {"text": "x", "tokens": [["x", 1000, []]]},
                {"text": "x", "tokens": [["x", "high", []]]}, {"text": "x", "tokens": [["x"]]},
                {"text": "x", "tokens": [["x", -0.1, [["y", None]]]]}, {"text": "x", "scores": {"a": None}},
                {"text": "x", "scores": [1]}, {"text": "x", "prompt_tokens": "many"}):  # fmt: skip
        assert Reply.from_cache(bad) is None, bad


@pytest.mark.parametrize("kind", ["corrupt", "directory", "parent is a file"])
def test_an_unusable_cache_is_one_line_then_a_no_op(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "cache" / "classify.sqlite"
    if kind == "parent is a file":
        (tmp_path / "cache").write_text("x")
    else:
        path.parent.mkdir()
        path.mkdir() if kind == "directory" else path.write_bytes(b"garbage, not SQLite\n" * 50)
    lines: list[str] = []
    cache = ResponseCache(path, warn=lines.append)
    cache.put("k", "e", "m", {"text": "x"})
    assert cache.get("k") is None and len(cache) == 0 and cache.broken
    assert len(lines) == 1 and str(path) in lines[0] and "running without the cache" in lines[0], lines
    if kind == "corrupt":
        assert path.read_bytes() == b"garbage, not SQLite\n" * 50


def test_a_read_only_cache_is_one_line_then_a_no_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "classify.sqlite"
    ResponseCache(path).put("k", "e", "m", {"text": "x"})
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda p, **kw: connect(f"file:{p}?mode=ro", uri=True, **kw))
    lines: list[str] = []
    cache = ResponseCache(path, warn=lines.append)
    assert cache.broken and "readonly" in lines[0] and len(lines) == 1 and str(path) in lines[0]
    assert cache.get("k") is None


def test_a_cache_that_fails_later_gives_up_once(tmp_path: Path) -> None:
    path = tmp_path / "classify.sqlite"
    lines: list[str] = []
    cache = ResponseCache(path, warn=lines.append)
    assert cache.broken is None and not lines
    cache._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)  # made read-only
    cache.put("k", "e", "m", {"text": "x"})
    cache.put("k2", "e", "m", {"text": "y"})
    assert len(lines) == 1 and "readonly" in lines[0] and cache.get("k") is None
    cache.close()
    assert ResponseCache(path).get("k") is None  # nothing was stored


def test_a_cache_entry_that_is_not_a_json_object_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "classify.sqlite"
    cache = ResponseCache(path)
    cache.put("k", "e", "m", {"text": "x"})
    assert cache._db is not None
    cache._db.execute("UPDATE responses SET response = '{broken' WHERE key = 'k'")
    assert cache.get("k") is None
    cache._db.execute("UPDATE responses SET response = '[1]' WHERE key = 'k'")
    assert cache.get("k") is None
