"""Scoring of tag-per-word predictions (baselines): the research's token level, hand-checked,
and `launch score` on a baseline's predictions.jsonl."""

from __future__ import annotations

import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from launcher.scoring.token_level import bio_token_prf, score_tagged, tagged_example

TOKENS = [["John", "Smith", "visited", "New", "York", "."], ["Paris", "is", "in", "France"]]

GOLD = [["B-per", "I-per", "O", "B-geo", "I-geo", "O"], ["B-geo", "O", "O", "B-geo"]]

PRED = [["B-per", "B-per", "O", "B-geo", "I-geo", "B-tim"], ["I-geo", "O", "O", "B-gpe"]]


def test_bio_token_prf_counts_by_hand() -> None:
    # words: John B-per=B-per tp; Smith I-per vs B-per fp+fn; New, York tp tp; "." O vs B-tim fp;
    # Paris B-geo vs I-geo fp+fn; France B-geo vs B-gpe fp+fn
    m = bio_token_prf(GOLD, PRED)
    assert (m["tp"], m["fp"], m["fn"]) == (3, 4, 3)
    assert m["precision"] == pytest.approx(3 / 7) and m["recall"] == pytest.approx(3 / 6)
    assert m["f1"] == pytest.approx(2 * (3 / 7) * 0.5 / (3 / 7 + 0.5))


def test_bio_token_prf_edges() -> None:
    assert bio_token_prf([["O", "O"]], [["O", "O"]])["f1"] == 0.0  # nothing to find, nothing found
    perfect = bio_token_prf(GOLD, GOLD)
    assert (perfect["precision"], perfect["recall"], perfect["fp"], perfect["fn"]) == (1.0, 1.0, 0, 0)
    with pytest.raises(ValueError, match="gold has 2 tags, prediction 1"):
        bio_token_prf([["O", "O"]], [["O"]])


def test_score_tagged_strict_equals_seqeval_and_adds_token_bio() -> None:
    result = score_tagged(TOKENS, GOLD, PRED)
    report = classification_report(GOLD, PRED, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    strict = result["strict"]
    assert strict["f1"] == pytest.approx(report["micro avg"]["f1-score"])
    assert strict["precision"] == pytest.approx(report["micro avg"]["precision"])
    # gold: per(0,2) geo(3,5) geo(0,1) geo(3,4); predicted: per(0,1) per(1,2) geo(3,5) tim(5,6) gpe(3,4)
    # (the I-geo that continues nothing is no entity): tp 1, fp 4, fn 3
    assert (strict["tp"], strict["fp"], strict["fn"]) == (1, 4, 3)
    assert result["token_bio"]["tp"] == 3
    assert result["sentence"] == {"accuracy": 0.0, "correct": 0, "total": 2}
    assert result["parse_failures"] == 0 and result["sentences"] == 2
    assert score_tagged(TOKENS, GOLD, GOLD)["sentence"]["accuracy"] == 1.0


def test_tagged_example_entities_carry_their_occurrence() -> None:
    ex = tagged_example(["a", "b", "a", "b"], ["O"] * 4, ["O", "O", "B-per", "I-per"])
    assert [(e.entity, e.label, e.order) for e in ex.prediction.entities or []] == [("a b", "per", 1)]
    with pytest.raises(ValueError, match="3 tokens"):
        tagged_example(["a", "b", "c"], ["O"] * 3, ["O"])
