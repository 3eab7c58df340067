"""launcher.scoring.metrics: hand-checked cases, seqeval cross-checks and the research's published numbers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from launcher.scoring.entities import Entity, target_json
from launcher.scoring.metrics import (
    Example,
    predictions_jsonl_examples,
    score,
    score_predictions_jsonl,
    score_seed_csv,
    seed_csv_examples,
    seed_metric,
    strict_prf,
    strict_spans,
    token_prf,
)
from launcher.scoring.parse import ParseResult
from tests.support.paths import FIXTURES

FIXTURE = FIXTURES / "ds_7b_output.csv"
TYPES = ["per", "geo", "org", "tim"]


def ok(*entities: Entity) -> ParseResult:
    return ParseResult(list(entities), "ok", None)


FAILED = ParseResult(None, "failed", "no entities JSON found")


@pytest.fixture(scope="module")
def seed_examples() -> list[Example]:
    assert FIXTURE.is_file(), f"missing test fixture {FIXTURE} (copy of shared/data/seed_outputs)"
    return seed_csv_examples(FIXTURE)


# ---------------------------------------------------------------------------------------------
# hand-checked


def test_strict_spans_follow_seqeval_strict_iob2() -> None:
    assert strict_spans(["B-per", "I-per", "O", "B-geo"]) == [(0, 2, "per"), (3, 4, "geo")]
    # orphan I- tags belong to no entity; a type change ends the entity
    assert strict_spans(["I-per", "I-per", "O", "B-geo", "I-per", "B-geo", "B-geo"]) == [
        (3, 4, "geo"),
        (5, 6, "geo"),
        (6, 7, "geo"),
    ]
    with pytest.raises(ValueError):
        strict_spans(["E-per"])


def test_strict_prf_small_example() -> None:
    gold = [["B-per", "I-per", "O", "B-geo"], ["B-tim", "I-tim"]]
    pred = [["B-per", "I-per", "O", "B-org"], ["B-tim", "O"]]
    out = strict_prf(gold, pred)
    assert (out["tp"], out["fp"], out["fn"]) == (1, 2, 2)
    assert out["precision"] == pytest.approx(1 / 3)
    assert out["recall"] == pytest.approx(1 / 3)
    assert out["f1"] == pytest.approx(1 / 3)
    assert set(out["per_type"]) == {"geo", "org", "per", "tim"}
    assert out["per_type"]["per"] == {
        "precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 1, "fp": 0, "fn": 0, "support": 1,
    }  # fmt: skip
    assert out["per_type"]["org"]["support"] == 0
    assert out["macro_f1"] == pytest.approx(1 / 4)
    # extras: an unplaced prediction of a new type appears in per_type and the macro average
    out = strict_prf(gold, pred, extra_fp={"nat": 1}, extra_fn={"per": 2})
    assert (out["tp"], out["fp"], out["fn"]) == (1, 3, 4)
    assert out["per_type"]["nat"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 1, "fn": 0, "support": 0,
    }  # fmt: skip
    assert out["per_type"]["per"]["recall"] == pytest.approx(1 / 3)


def test_strict_prf_rejects_misaligned_sequences() -> None:
    with pytest.raises(ValueError):
        strict_prf([["O", "O"]], [["O"]])
    with pytest.raises(ValueError):
        strict_prf([["O"]], [["O"], ["O"]])


def test_token_prf_small_example() -> None:
    gold = [["B-per", "I-per", "O", "B-geo"]]
    pred = [["B-per", "B-per", "B-org", "O"]]  # B/I prefixes do not matter at token level
    out = token_prf(gold, pred)
    assert (out["tp"], out["predicted"], out["gold"]) == (2, 3, 3)
    assert out["precision"] == pytest.approx(2 / 3)
    out = token_prf(gold, pred, extra_pred=1, extra_gold=3)
    assert (out["tp"], out["predicted"], out["gold"]) == (2, 4, 6)


def test_seed_metric_multisets_and_skips() -> None:
    us0, us1 = Entity("US", "geo", 0), Entity("US", "geo", 1)
    ny = Entity("New York", "geo", 0)
    pairs = [
        ([us0, us1, ny], ok(us0, us0, ny)),  # tp 2 (US#0, NY), fp 1 (US#0 again), fn 1 (US#1)
        ([ny], ok(ny)),  # exact
        ([us0], ParseResult([us0], "repaired", "x")),  # skipped: the research could not parse it
        ([us0], ParseResult([], "truncated", "x")),  # skipped
        ([us0], FAILED),  # skipped
    ]
    out = seed_metric(pairs)
    assert (out["tp"], out["fp"], out["fn"], out["gold"]) == (3, 1, 1, 4)
    assert (out["evaluated"], out["skipped"]) == (2, 3)
    assert out["precision"] == pytest.approx(3 / 4) and out["recall"] == pytest.approx(3 / 4)
    assert out["token"] == {
        "precision": pytest.approx(5 / 6), "recall": pytest.approx(5 / 6),
        "f1": pytest.approx(5 / 6), "correct": 5, "predicted": 6, "gold": 6,
    }  # fmt: skip
    assert out["sentence"] == {"accuracy": 0.5, "correct": 1, "evaluated": 2, "total": 5}


def test_score_hand_checked() -> None:
    tokens = ["Philip", "Alston", "visited", "Paris", "."]
    gold_tags = ["B-per", "I-per", "O", "B-geo", "O"]
    examples = [
        # right, plus one hallucinated entity
        Example.from_tags(
            tokens,
            gold_tags,
            ok(Entity("Philip Alston", "per"), Entity("Paris", "geo"), Entity("London", "geo")),
        ),
        # failed parse: the gold entity is a miss and the sentence stays in every denominator
        Example.from_tags(["Bush", "spoke"], ["B-per", "O"], FAILED),
        # truncated before any entity, nothing to find: counts as an exact match
        Example.from_tags(["It", "rained"], ["O", "O"], ParseResult([], "truncated", "cut")),
        # failed parse of a sentence without entities: not an exact match
        Example.from_tags(["It", "rained"], ["O", "O"], FAILED),
        # an unplaceable prediction: both entities claim the only "Paris"
        Example.from_tags(["Paris"], ["B-geo"], ok(Entity("Paris", "geo"), Entity("Paris", "per"))),
    ]
    out = score(examples)
    strict = out["strict"]
    assert (strict["tp"], strict["fp"], strict["fn"]) == (3, 2, 1)
    assert strict["per_type"]["geo"] == {
        "precision": 2 / 3, "recall": 1.0, "f1": pytest.approx(0.8), "tp": 2, "fp": 1, "fn": 0,
        "support": 2,
    }  # fmt: skip
    assert strict["per_type"]["per"]["fp"] == 1 and strict["per_type"]["per"]["fn"] == 1
    assert out["token"] == {
        "precision": pytest.approx(4 / 6), "recall": pytest.approx(4 / 5),
        "f1": pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5)),
        "tp": 4, "predicted": 6, "gold": 5,
    }  # fmt: skip
    assert out["sentence"] == {"accuracy": 0.2, "correct": 1, "total": 5}
    assert out["parse_failures"] == 2
    assert out["hallucinated"] == 1
    assert out["unplaceable"] == 1
    assert out["parse_status"] == {"ok": 2, "repaired": 0, "truncated": 1, "failed": 2}
    assert out["sentences"] == 5
    assert out["seed"]["evaluated"] == 2 and out["seed"]["skipped"] == 3
    assert set(out) == {
        "strict", "seed", "token", "sentence", "parse_failures", "hallucinated", "unplaceable",
        "parse_status", "sentences",
    }  # fmt: skip
    json.dumps(out)  # the metrics.json layout is plain JSON


def test_gold_entities_that_cannot_be_placed_are_misses() -> None:
    ex = Example.from_entities(["a", "b"], [Entity("a", "per"), Entity("zzz", "org")], ok(Entity("a", "per")))
    assert ex.gold_tags == ["B-per", "O"]
    assert ex.gold_unplaced == [Entity("zzz", "org")]
    out = score([ex])
    assert (out["strict"]["tp"], out["strict"]["fp"], out["strict"]["fn"]) == (1, 0, 1)
    assert out["token"]["gold"] == 2
    assert out["sentence"]["correct"] == 0


def test_empty_and_all_o_inputs_give_zeros() -> None:
    out = score([])
    assert out["strict"]["f1"] == 0.0 and out["strict"]["macro_f1"] == 0.0
    assert out["sentence"] == {"accuracy": 0.0, "correct": 0, "total": 0}
    out = score([Example.from_tags(["a"], ["O"], ok())])
    assert out["strict"]["per_type"] == {} and out["sentence"]["accuracy"] == 1.0


# ---------------------------------------------------------------------------------------------
# seqeval cross-checks


def _random_tags(rng: random.Random, n: int, valid: bool) -> list[str]:
    tags = []
    for _ in range(n):
        r = rng.random()
        if r < 0.45:
            tags.append("O")
        else:
            tags.append(("B-" if r < 0.7 else "I-") + rng.choice(TYPES))
    return _make_valid(tags) if valid else tags


def _make_valid(tags: list[str]) -> list[str]:
    """An I-X that does not continue an X entity becomes B-X."""
    fixed = list(tags)
    for i, tag in enumerate(fixed):
        if tag.startswith("I-") and (i == 0 or fixed[i - 1][2:] != tag[2:]):
            fixed[i] = "B-" + tag[2:]
    return fixed


def _perturb(rng: random.Random, gold: list[str]) -> list[str]:
    pred = list(gold)
    for i in range(len(pred)):
        if rng.random() < 0.2:
            pred[i] = rng.choice(["O", "B-" + rng.choice(TYPES), "I-" + rng.choice(TYPES)])
    return pred


def _assert_matches_seqeval(gold: list[list[str]], pred: list[list[str]]) -> None:
    ours = strict_prf(gold, pred)
    ref: dict[str, Any] = classification_report(
        gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    micro = ref["micro avg"]
    assert ours["precision"] == pytest.approx(micro["precision"])
    assert ours["recall"] == pytest.approx(micro["recall"])
    assert ours["f1"] == pytest.approx(micro["f1-score"])
    assert ours["tp"] + ours["fn"] == micro["support"]
    assert ours["macro_f1"] == pytest.approx(ref["macro avg"]["f1-score"])
    types = set(ref) - {"micro avg", "macro avg", "weighted avg"}
    assert set(ours["per_type"]) == types
    for typ in types:
        mine, theirs = ours["per_type"][typ], ref[typ]
        assert mine["precision"] == pytest.approx(theirs["precision"]), typ
        assert mine["recall"] == pytest.approx(theirs["recall"]), typ
        assert mine["f1"] == pytest.approx(theirs["f1-score"]), typ
        assert mine["support"] == theirs["support"], typ


@pytest.mark.parametrize("valid", [True, False], ids=["valid-iob2", "raw-tags"])
def test_strict_matches_seqeval_on_random_cases(valid: bool) -> None:
    rng = random.Random(1234 + valid)
    for _ in range(200 if valid else 100):
        gold, pred = [], []
        for _ in range(rng.randint(1, 6)):
            g = _random_tags(rng, rng.randint(1, 15), valid=True)
            p = _perturb(rng, g) if rng.random() < 0.7 else _random_tags(rng, len(g), valid)
            if valid:
                p = _make_valid(p)
            gold.append(g)
            pred.append(p)
        if not any(strict_spans(g) for g in gold):
            gold[0] = ["B-per", *gold[0][1:]]
        _assert_matches_seqeval(gold, pred)


def test_strict_matches_seqeval_on_the_real_file(seed_examples: list[Example]) -> None:
    gold = [ex.gold_tags for ex in seed_examples]
    pred = [ex.pred_tags for ex in seed_examples]
    _assert_matches_seqeval(gold, pred)
    # score() adds the 11 predictions that could not be placed as false positives on top
    tags_only = strict_prf(gold, pred)
    full = score(seed_examples)["strict"]
    unplaced = sum(ex.placement.not_placed for ex in seed_examples)
    assert unplaced == 11
    assert full["fp"] == tags_only["fp"] + unplaced
    assert (full["tp"], full["fn"]) == (tags_only["tp"], tags_only["fn"])


# ---------------------------------------------------------------------------------------------
# the research's published numbers


def test_seed_metric_reproduces_the_published_numbers() -> None:
    out = score_seed_csv(FIXTURE)
    seed = out["seed"]
    assert (seed["tp"], seed["fp"], seed["fn"], seed["gold"]) == (1_972, 311, 325, 2_297)
    assert (round(seed["precision"], 4), round(seed["recall"], 4), round(seed["f1"], 4)) == (
        0.8638,
        0.8585,
        0.8611,
    )
    tok = seed["token"]
    assert (round(tok["precision"], 4), round(tok["recall"], 4), round(tok["f1"], 4)) == (
        0.8438,
        0.8342,
        0.8389,
    )
    assert (tok["correct"], tok["predicted"], tok["gold"]) == (2_711, 3_213, 3_250)
    assert seed["sentence"] == {
        "accuracy": 0.728,
        "correct": 728,
        "evaluated": 1_000,
        "total": 1_000,
    }
    assert seed["skipped"] == 0

    # strict scoring of the same file: every output parses, 11 predictions cannot be placed
    strict = out["strict"]
    assert (strict["tp"], strict["fp"], strict["fn"]) == (1_972, 311, 325)
    assert round(strict["f1"], 4) == 0.8611
    assert out["sentence"]["correct"] == 728
    assert (out["parse_failures"], out["hallucinated"], out["unplaceable"]) == (0, 8, 3)
    assert out["parse_status"] == {"ok": 1_000, "repaired": 0, "truncated": 0, "failed": 0}
    assert out["sentences"] == 1_000


# ---------------------------------------------------------------------------------------------
# predictions.jsonl


def test_predictions_jsonl_round_trip(tmp_path: Path) -> None:
    a, b = Entity("Philip Alston", "per"), Entity("Paris", "geo")
    tokens = ["Philip", "Alston", "visited", "Paris"]
    tags = ["B-per", "I-per", "O", "B-geo"]
    rows = [
        {"id": 1, "tokens": tokens, "gold_tags": tags, "raw": target_json([a, b]),
         "entities": [a.to_dict(), b.to_dict()], "status": "ok"},
        {"id": 2, "tokens": tokens, "gold": [a.to_dict(), b.to_dict()], "raw": "garbage",
         "entities": None, "status": "failed", "error": "no entities JSON found"},
        {"id": 3, "tokens": tokens, "gold_tags": tags, "raw": target_json([a])[:-3]},
    ]  # fmt: skip
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n", encoding="utf-8")

    examples = predictions_jsonl_examples(path)
    assert [ex.prediction.status for ex in examples] == ["ok", "failed", "truncated"]
    assert examples[1].gold_tags == tags
    expected = score(
        [
            Example.from_tags(tokens, tags, ok(a, b)),
            Example.from_tags(tokens, tags, FAILED),
            Example.from_tags(tokens, tags, ParseResult([], "truncated", "cut")),
        ]
    )
    assert score_predictions_jsonl(path) == expected
    # reparse ignores the stored parse: "garbage" fails again, the first row parses ok again
    assert score_predictions_jsonl(path, reparse=True) == expected


@pytest.mark.parametrize(
    "row",
    [
        {"tokens": ["a"], "raw": "{}"},
        {"tokens": ["a"], "gold_tags": ["O"], "entities": [], "status": "weird"},
        {"tokens": ["a"], "gold_tags": ["O"], "entities": None, "status": "ok"},
        {"tokens": ["a"], "gold": [{"entity": "a"}], "entities": [], "status": "ok"},
    ],
)
def test_predictions_jsonl_rejects_bad_rows(tmp_path: Path, row: dict[str, Any]) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        predictions_jsonl_examples(path)


def test_seed_csv_errors_name_the_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("sentence,output\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        seed_csv_examples(path)
    path.write_text(
        'sentence,output,model_output\n"""a b""","{""entities"": []}",x\n"""a""",nope,x\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"out\.csv: row 3: gold output is not JSON"):
        seed_csv_examples(path)
