"""Classification metrics, hand-checked: top-k, P/R/F1, confusion, ECE, Brier, latency, hierarchy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from launcher.scoring import classification as c


def _row(gold: str, labels: list[str | None], conf: list[float | None] | None = None, status: str = "ok",
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    conf = conf or [None] * len(labels)
    preds = [
        {"label": lab, "confidence_verbal": v, "confidence_logprob": None}
        for lab, v in zip(labels, conf, strict=True)
    ]
    return {"id": extra.pop("id", gold), "gold": gold, "predictions": preds, "parse_status": status, **extra}


# Six rows: A->A, A->A, A->B (A 2nd), B->B, B failed (B listed, still a miss), C->D (D never gold).
ROWS = [
    _row("A", ["A", "B"]),
    _row("A", ["A"]),
    _row("A", ["B", "A"]),
    _row("B", ["B"]),
    _row("B", ["B"], status="failed"),
    _row("C", ["D", "E", "F", "C"]),
]


def test_topk_counts_failed_rows_as_misses() -> None:
    assert c.topk(ROWS) == {"top1": 3 / 6, "top3": 4 / 6, "top5": 5 / 6}
    assert c.ranked(ROWS[4]) == [] and c.top1(ROWS[4]) is None


def test_per_class_and_averages_by_hand() -> None:
    classes = c.per_class(ROWS)
    assert list(classes) == ["A", "B", "C", "D"]
    # A: tp 2 of 2 predicted, support 3 -> P 1, R 2/3, F1 0.8
    assert classes["A"] == {"precision": 1.0, "recall": 2 / 3, "f1": pytest.approx(0.8), "tp": 2,
                            "predicted": 2, "support": 3}  # fmt: skip
    # B: predicted for rows 3 and 4 (the failed row predicts nothing), tp 1, support 2
    assert (classes["B"]["precision"], classes["B"]["recall"], classes["B"]["f1"]) == (0.5, 0.5, 0.5)
    assert classes["C"]["support"] == 1 and classes["C"]["f1"] == 0.0
    assert classes["D"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "predicted": 1, "support": 0}
    avg = c.averages(classes)
    assert avg["macro"] == pytest.approx({"precision": 1.5 / 4, "recall": (2 / 3 + 0.5) / 4, "f1": 1.3 / 4})
    # weighted by support 3, 2, 1, 0: P (3*1 + 2*.5)/6, R (3*2/3 + 2*.5)/6, F1 (3*.8 + 2*.5)/6
    assert avg["weighted"] == pytest.approx({"precision": 4 / 6, "recall": 3 / 6, "f1": 3.4 / 6})


def test_confusion_matrix_has_a_none_column_for_rows_without_a_prediction() -> None:
    cm = c.confusion(ROWS, ["A", "B", "C", "D"])
    assert cm["columns"] == ["A", "B", "C", "D", "(none)"]
    assert cm["matrix"] == [[2, 1, 0, 0, 0], [0, 1, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]
    assert "(none)" not in c.confusion(ROWS[:2], ["A"])["columns"]


def test_an_unmatched_answer_keeps_its_rank_and_is_no_class() -> None:
    row = _row("A", [None, "A"])
    assert c.top1(row) is None and c.hit(row, 1) is False and c.hit(row, 3) is True
    assert list(c.per_class([row])) == ["A"]


PAIRS = [(0.95, True), (0.85, False), (0.85, True), (0.3, False), (1.0, True), (0.0, False)]


def test_ece_equal_width_bins_by_hand() -> None:
    # bins of 0.1: {0.95, 1.0} acc 1 conf .975; {.85, .85} acc .5 conf .85; {.3} acc 0; {0.0} acc 0
    assert c.ece(PAIRS, 10) == pytest.approx((2 * 0.025 + 2 * 0.35 + 0.3 + 0) / 6)
    # two bins: [0, .5) holds .3 and 0 (conf .15, acc 0); [.5, 1] holds four (conf .9125, acc .75)
    assert c.ece(PAIRS, 2) == pytest.approx((2 * 0.15 + 4 * 0.1625) / 6)
    bins = c.reliability(PAIRS, 10)
    assert [b["count"] for b in bins] == [1, 0, 0, 1, 0, 0, 0, 0, 2, 2]
    assert bins[9]["confidence"] == pytest.approx(0.975) and bins[1]["accuracy"] is None
    assert c.ece([(0.7, True), (0.7, False)], 10) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="bins"):
        c.reliability(PAIRS, 0)


def test_brier_on_the_top1_confidence() -> None:
    assert c.brier(PAIRS) == pytest.approx((0.05**2 + 0.85**2 + 0.15**2 + 0.3**2 + 0 + 0) / 6)
    assert c.brier([]) == 0.0


def test_calibration_uses_rows_with_a_confidence_and_null_without() -> None:
    rows = [
        _row("A", ["A"], [0.9]),
        _row("A", ["B"], [1.2]),  # clipped to 1.0
        _row("A", ["A"], [None]),  # no number written: not part of it
        _row("A", ["A"], [0.5], status="error"),  # failed calls carry no confidence
    ]
    cal = c.calibration(rows, bins=10)
    assert cal["bins"] == 10 and cal["logprob"] is None
    v = cal["verbalized"]
    assert v["n"] == 2 and v["mean_confidence"] == pytest.approx(0.95)
    assert v["brier"] == pytest.approx((0.1**2 + 1.0) / 2)
    assert v["ece"] == pytest.approx(abs(0.5 - 0.95))  # 0.9 and 1.0 share the last bin
    lp = [{"gold": "A", "parse_status": "ok", "predictions": [{"label": "A", "confidence_logprob": 0.6}]}]
    assert c.calibration(lp)["logprob"]["ece"] == pytest.approx(0.4)
    assert c.calibration(lp)["verbalized"] is None


def test_percentiles_linear_interpolation() -> None:
    assert c.percentile([4, 1, 3, 2], 50) == 2.5
    assert c.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert c.percentile([7], 95) == 7 and c.percentile([], 50) is None
    lat = c.latency([{"latency_ms": 10}, {"latency_ms": 30.0}, {"latency_ms": None}, {}])
    assert lat == {"p50": 20.0, "p95": pytest.approx(29.0), "max": 30.0}


def test_score_classification_top_level_shape() -> None:
    rows = [
        _row(
            "A", ["A", "B"], [0.9, 0.1], latency_ms=100, prompt_tokens=50, completion_tokens=7, cached=False
        ),
        _row("B", ["A", "B"], [0.6, 0.3], latency_ms=300, prompt_tokens=40, completion_tokens=9, cached=True),
        _row("B", [], status="error", latency_ms=None, cached=False),
    ]
    m = c.score_classification(rows, bins=10)
    assert {"n", "top1", "top3", "top5", "calibration", "latency_ms", "requests_sent", "cached"} <= set(m)
    assert (m["n"], m["top1"], m["top3"], m["top5"]) == (3, 1 / 3, 2 / 3, 2 / 3)
    assert m["hits"] == {"top1": 1, "top3": 2, "top5": 2}
    assert m["calibration"]["verbalized"]["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.6)
    assert m["calibration"]["verbalized"]["brier"] == pytest.approx((0.01 + 0.36) / 2)
    assert m["calibration"]["logprob"] is None and m["calibration"]["bins"] == 10
    assert m["latency_ms"] == {"p50": 200.0, "p95": pytest.approx(290.0), "max": 300.0}
    assert (m["requests_sent"], m["cached"]) == (2, 1)
    assert (m["prompt_tokens"], m["completion_tokens"]) == (90, 16)
    assert m["parse_status"] == {"ok": 2, "failed": 0, "error": 1}
    assert {"macro", "weighted", "per_class", "confusion"} <= set(m)


def test_hierarchy_per_level_joint_and_product_hit_rate() -> None:
    rows = [
        _row("1", ["1"], id="a", level=1), _row("10", ["10"], id="a", level=2),  # both right
        _row("1", ["1"], id="b", level=1), _row("10", ["11"], id="b", level=2),  # level 2 wrong
        _row("2", ["1"], id="c", level=1), _row("20", ["20"], id="c", level=2),  # level 1 wrong
        _row("3", ["3"], id="d", level=1),  # no level-2 row: not joint-right
    ]  # fmt: skip
    acc = c.per_level_accuracy(rows)
    assert acc == {1: 3 / 4, 2: 2 / 3}
    assert c.joint_accuracy(rows) == {"accuracy": 1 / 4, "correct": 1, "items": 4}
    assert c.hit_rate(acc) == pytest.approx(0.5)
    levels = c.score_levels(rows)
    assert levels["levels"]["2"]["n"] == 3 and levels["per_level_top1"] == {"1": 0.75, "2": 2 / 3}
    assert levels["hit_rate_product"] == pytest.approx(0.5) and levels["joint_top1"]["correct"] == 1


def test_reliability_png(tmp_path: Path) -> None:
    cal = c.calibration([_row("A", ["A"], [0.9]), _row("A", ["B"], [0.6])])
    path = c.write_reliability_png(cal, tmp_path / "sub" / "reliability.png", title="t")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.write_reliability_png(c.calibration([_row("A", ["A"])]), tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
