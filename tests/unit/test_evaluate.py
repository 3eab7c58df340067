"""The evaluate job's pure parts: the JSON-end tracker and the length buckets."""

from __future__ import annotations

from jobs.engines import JsonEnd
from jobs.engines.hf import buckets


def _feed(text: str) -> int | None:
    """Index of the character after which JsonEnd first says done (fed one character at a time)."""
    end = JsonEnd()
    for i, ch in enumerate(text):
        if end.feed(ch):
            return i
    return None


def test_json_end_tracks_strings_nesting_and_think() -> None:
    answer = '{"entities": [{"entity": "a}b \\" {", "order": 0, "label": "per"}]}'
    assert _feed(answer + " and then {more}") == len(answer) - 1
    assert _feed("Sure! " + answer) == len("Sure! ") + len(answer) - 1
    think = '<think>maybe {"draft": 1} then</think>\n'
    assert _feed(think + answer) == len(think) + len(answer) - 1
    assert _feed("<think>{} unclosed") is None
    assert _feed('{"entities": [{"entity": "x"') is None
    assert _feed("} stray closing brace first " + answer) is not None
    end = JsonEnd()
    assert end.feed(answer[:10]) is False and end.feed(answer[10:]) is True and end.feed("x") is True


def test_buckets_are_longest_first_and_cover_every_index() -> None:
    assert buckets([3, 10, 5, 10, 1], 2) == [[1, 3], [2, 0], [4]]
    assert sorted(i for b in buckets(list(range(17)), 4) for i in b) == list(range(17))
