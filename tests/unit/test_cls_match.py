"""The research's lenient label matcher (seed) and the strict one, on hand-written answers."""

from __future__ import annotations

import json

import pytest

from launcher.scoring.cls_match import match, match_seed, match_strict
from launcher.scoring.labels import Label, LabelTree

AG = LabelTree.ag_news().level(1)  # 1 World, 2 Sports, 3 Business, 4 Sci/Tech
ECON = LabelTree.ddc().children("330", 2)  # 330 Economics, 331 Labor economics, ...


def answer(*items: tuple[str, object]) -> str:
    return (
        "```json\n"
        + json.dumps({"predictions": [{"category": a, "confidence": c} for a, c in items]})
        + "\n```"
    )


def test_seed_maps_a_longer_answer_to_the_first_contained_label() -> None:
    raw = answer(("Economics of land and energy", 0.8), ("Labor economics", 0.1), ("Public finance", 0.05))
    m = match_seed(raw, ECON)
    # 333 *is* "Economics of land and energy", but "economics" is in all three answers and 330
    # comes first in code order: picked once, then 336.
    assert m.codes == ["330", "336"] and m.source == "json" and m.status == "ok"
    assert match_strict(raw, ECON).codes == ["333", "331", "336"]
    assert [p.confidence for p in m.picks] == [0.8, 0.05]
    assert m.picks[0].answer == "Economics of land and energy" and m.picks[0].label == "Economics"


def test_seed_order_quirk_and_strict_exactness() -> None:
    cands = [Label("1", 1, "Science"), Label("2", 1, "Computer science")]
    raw = answer(("Computer science", 0.9), ("science", 0.1))
    assert match_seed(raw, cands).codes == ["1"]  # "science" is contained in "computer science"
    assert match_strict(raw, cands).codes == ["2", "1"]
    assert match_strict(answer(("  COMPUTER   Science ", 0.5)), cands).codes == ["2"]


def test_strict_keeps_unmatched_answers_at_their_rank() -> None:
    m = match_strict(answer(("Economics of everything", 0.8), ("Labor economics", 0.1)), ECON)
    assert m.codes == [None, "331"] and m.status == "ok"
    assert m.picks[0].answer == "Economics of everything" and m.picks[0].confidence == 0.8
    assert match_strict("Sports, clearly", AG).status == "failed"
    assert match_strict('{"predictions": []}', AG).status == "failed"


def test_confidence_percentages_and_at_most_five_distinct_picks() -> None:
    raw = answer(("Sports", 85), ("sports", 0.4), ("World", 0.1), ("Business", 0.05), ("Sci/Tech", 0.02))
    m = match_seed(raw, AG)
    assert m.codes == ["2", "1", "3", "4"] and m.picks[0].confidence == 0.85
    many = [Label(str(i), 1, f"class {chr(97 + i)}") for i in range(8)]
    assert len(match_seed(answer(*[(f"class {chr(97 + i)}", 0.1) for i in range(8)]), many).picks) == 5
    assert len(match_strict(answer(*[(f"class {chr(97 + i)}", 0.1) for i in range(8)]), many).picks) == 5


def test_seed_json_step_stops_at_a_non_numeric_confidence() -> None:
    raw = json.dumps({"predictions": [{"category": "World", "confidence": 0.7},
                                      {"category": "Sports", "confidence": "high"},
                                      {"category": "Business", "confidence": 0.1}]})  # fmt: skip
    assert match_seed(raw, AG).codes == ["1"]
    no_conf = json.dumps({"predictions": [{"category": "World"}, {"label": "Sports", "score": 0.3}]})
    m = match_seed(no_conf, AG)
    assert m.codes == ["1", "2"] and [p.confidence for p in m.picks] == [None, 0.3]


def test_seed_line_fallback_then_raw_text() -> None:
    m = match_seed("1. Sports: 80%\n2. World - 15%\nBusiness", AG)
    assert m.source == "lines" and m.codes == ["2", "1", "3"]
    assert [p.confidence for p in m.picks] == [0.8, 0.15, None]
    truncated = '{"predictions": [{"category": "Sci/Tech", "confidence": 0.9}, {"category": "Busin'
    m = match_seed(truncated, AG)
    assert m.source == "raw" and m.codes == ["4"] and m.picks[0].confidence is None
    none = match_seed("I cannot classify this.", AG)
    assert none.status == "failed" and none.codes == [] and none.source == "none"


def test_match_dispatch() -> None:
    assert match(answer(("World", 1)), AG, "strict").codes == ["1"]
    with pytest.raises(ValueError, match="seed, strict"):
        match("", AG, "fuzzy")  # type: ignore[arg-type]
