"""Scoring text classification with confidence: top-k, P/R/F1, calibration, latency, hierarchy.

``score_classification(rows)`` turns predictions.jsonl rows into the dict written as metrics.json::

    {"id", "level", "gold", "candidates": [...], "predictions": [{"label", "confidence_verbal",
     "confidence_logprob"}, ...ranked, up to 5], "raw", "parse_status": "ok"|"failed"|"error",
     "latency_ms", "prompt_tokens", "completion_tokens", "cached": bool}

``gold`` and each prediction's ``label`` are compared as given (both codes or both labels).
Definitions (pure Python; sklearn is not a dependency, the tests check the formulas by hand):

- top-k: the share of rows whose gold is among the first k predictions. A row whose parse status
  is ``failed`` or ``error`` is a miss at every k, whatever it holds.
- Per class (top-1): tp, predicted, support; precision tp/predicted, recall tp/support, F1 their
  harmonic mean, 0.0 where a denominator is 0 (sklearn's ``zero_division=0``). The classes are the
  gold labels and the predicted top-1 labels; a row with no top-1 prediction (or a top-1 label
  None: an answer that matched no candidate) adds to its gold
  class's support only (it is no class: the research's pipeline made it a class "UNKNOWN", which
  gives the same weighted figures and a lower macro). ``macro`` is the unweighted mean over the
  classes, ``weighted`` the support-weighted mean (sklearn's ``average="weighted"``).
- Confusion matrix: rows gold, columns predicted top-1, in ``labels`` order; the column
  ``(none)`` counts rows with no top-1 prediction.
- Calibration of each confidence kind (``verbalized``: ``confidence_verbal``, ``logprob``:
  ``confidence_logprob``) over the rows whose top-1 prediction carries that confidence (clipped to
  [0, 1]); correctness is the top-1 hit. ECE: ``bins`` equal-width bins on [0, 1] (bin i holds
  i/bins <= c < (i+1)/bins, the last also c = 1), sum over bins of (bin size / n) * |accuracy -
  mean confidence|. Brier: mean of (c - correct)^2 over the same rows (the top-1 form, not the
  multi-class sum). ``null`` when no row has that confidence: never a zero confidence.
- Latency: p50 / p95 (linear interpolation between order statistics, numpy's default) and max
  of ``latency_ms`` over the rows that have one.
- ``requests_sent``: rows not ``cached``; ``cached``: rows that are (a job that retries may put
  its own count over ``requests_sent``).

Hierarchy (``score_levels``): per-level top-1 accuracy, the per-item joint accuracy (an item is
right when it has a row at every level and every one is a top-1 hit), and the research's product
"hit rate" (the product of the per-level accuracies, which the research measured on different
samples per level; it is not a per-item rate).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

NONE_COLUMN = "(none)"
KS = (1, 3, 5)
CONFIDENCES = {"verbalized": "confidence_verbal", "logprob": "confidence_logprob"}


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _failed(row: Mapping[str, Any]) -> bool:
    return row.get("parse_status", "ok") in ("failed", "error")


def ranked(row: Mapping[str, Any]) -> list[str | None]:
    """The row's predicted labels in rank order; empty for a failed or errored call.

    A prediction whose label is None (an answer that matched no candidate) keeps its rank and is
    never a hit nor a class.
    """
    if _failed(row):
        return []
    return [None if p.get("label") is None else str(p["label"]) for p in row.get("predictions") or []]


def top1(row: Mapping[str, Any]) -> str | None:
    labels = ranked(row)
    return labels[0] if labels else None


def hit(row: Mapping[str, Any], k: int = 1) -> bool:
    return str(row.get("gold")) in ranked(row)[:k]


def topk(rows: Sequence[Mapping[str, Any]], ks: Sequence[int] = KS) -> dict[str, float]:
    return {f"top{k}": _ratio(sum(hit(r, k) for r in rows), len(rows)) for k in ks}


# -- P/R/F1 ---------------------------------------------------------------------------------------


def per_class(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | int]]:
    """Top-1 precision, recall, F1, tp, predicted and support per class (module docstring)."""
    support = Counter(str(r.get("gold")) for r in rows)
    predicted: Counter[str] = Counter()
    tp: Counter[str] = Counter()
    for r in rows:
        pred = top1(r)
        if pred is not None:
            predicted[pred] += 1
            tp[pred] += pred == str(r.get("gold"))
    out: dict[str, dict[str, float | int]] = {}
    for cls in sorted(set(support) | set(predicted)):
        p, rec = _ratio(tp[cls], predicted[cls]), _ratio(tp[cls], support[cls])
        out[cls] = {"precision": p, "recall": rec, "f1": _ratio(2 * p * rec, p + rec), "tp": tp[cls],
                    "predicted": predicted[cls], "support": support[cls]}  # fmt: skip
    return out


def averages(classes: Mapping[str, Mapping[str, float | int]]) -> dict[str, dict[str, float]]:
    """``macro`` and ``weighted`` precision, recall, F1 over `per_class` output."""
    total = sum(c["support"] for c in classes.values())
    out: dict[str, dict[str, float]] = {}
    for name in ("macro", "weighted"):
        out[name] = {}
        for m in ("precision", "recall", "f1"):
            if name == "macro":
                out[name][m] = _ratio(sum(c[m] for c in classes.values()), len(classes))
            else:
                out[name][m] = _ratio(sum(c[m] * c["support"] for c in classes.values()), total)
    return out


def confusion(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """Gold x predicted top-1 counts; ``columns`` is `labels` plus ``(none)`` if a row has no top-1."""
    columns = list(labels)
    if any(top1(r) is None for r in rows):
        columns.append(NONE_COLUMN)
    index = {c: i for i, c in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in labels]
    row_of = {c: i for i, c in enumerate(labels)}
    for r in rows:
        pred = top1(r)
        matrix[row_of[str(r.get("gold"))]][index[NONE_COLUMN if pred is None else pred]] += 1
    return {"labels": list(labels), "columns": columns, "matrix": matrix}


# -- calibration ----------------------------------------------------------------------------------


def confidence_pairs(rows: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, bool]]:
    """(top-1 confidence clipped to [0, 1], top-1 correct) for the rows whose top-1 carries `key`."""
    pairs = []
    for r in rows:
        preds = [] if _failed(r) else r.get("predictions") or []
        value = preds[0].get(key) if preds else None
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            pairs.append((min(max(float(value), 0.0), 1.0), hit(r, 1)))
    return pairs


def reliability(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> list[dict[str, Any]]:
    """Per equal-width bin: its edges, count, mean confidence and accuracy (None when empty)."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for conf, correct in pairs:
        members[min(int(conf * bins), bins - 1)].append((conf, correct))
    out = []
    for i, m in enumerate(members):
        out.append({"lower": i / bins, "upper": (i + 1) / bins, "count": len(m),
                    "confidence": sum(c for c, _ in m) / len(m) if m else None,
                    "accuracy": sum(ok for _, ok in m) / len(m) if m else None})  # fmt: skip
    return out


def ece(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error over equal-width bins (module docstring)."""
    n = len(pairs)
    error: float = sum(
        b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability(pairs, bins) if b["count"]
    )
    return error


def brier(pairs: Sequence[tuple[float, bool]]) -> float:
    """Mean squared gap between the top-1 confidence and its correctness (1 or 0)."""
    return _ratio(sum((c - float(ok)) ** 2 for c, ok in pairs), len(pairs))


def calibration(rows: Sequence[Mapping[str, Any]], bins: int = 10) -> dict[str, Any]:
    out: dict[str, Any] = {"bins": bins}
    for name, key in CONFIDENCES.items():
        pairs = confidence_pairs(rows, key)
        if not pairs:
            out[name] = None
            continue
        mean = sum(c for c, _ in pairs) / len(pairs)
        out[name] = {"ece": ece(pairs, bins), "brier": brier(pairs), "n": len(pairs),
                     "mean_confidence": mean, "reliability": reliability(pairs, bins)}  # fmt: skip
    return out


# -- latency and the whole --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between order statistics; None if empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def latency(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    values = [float(r["latency_ms"]) for r in rows if isinstance(r.get("latency_ms"), int | float)]
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values, default=None)}


def score_classification(rows: Sequence[Mapping[str, Any]], *, bins: int = 10) -> dict[str, Any]:
    """metrics.json for predictions.jsonl rows of one level (module docstring)."""
    classes = per_class(rows)
    labels = sorted({str(r.get("gold")) for r in rows} | {c for c in classes})
    status = Counter(str(r.get("parse_status", "ok")) for r in rows)
    prompt_tokens = sum(int(r.get("prompt_tokens") or 0) for r in rows)
    completion_tokens = sum(int(r.get("completion_tokens") or 0) for r in rows)
    cached = sum(bool(r.get("cached")) for r in rows)
    return {
        "n": len(rows),
        **topk(rows),
        "hits": {f"top{k}": sum(hit(r, k) for r in rows) for k in KS},
        "calibration": calibration(rows, bins),
        "latency_ms": latency(rows),
        "requests_sent": len(rows) - cached,
        "cached": cached,
        **averages(classes),
        "per_class": classes,
        "confusion": confusion(rows, labels),
        "parse_status": {s: status.get(s, 0) for s in ("ok", "failed", "error")},
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "tokens": {"prompt": prompt_tokens, "completion": completion_tokens},
    }


# -- hierarchy ------------------------------------------------------------------------------------


def per_level_accuracy(rows: Sequence[Mapping[str, Any]], k: int = 1) -> dict[int, float]:
    """Top-k accuracy per ``level`` (rows without a level count as level 1)."""
    by_level: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_level[int(r.get("level") or 1)].append(r)
    return {lv: _ratio(sum(hit(r, k) for r in rs), len(rs)) for lv, rs in sorted(by_level.items())}


def joint_accuracy(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | int]:
    """Share of items (by ``id``) with a row at every level seen and a top-1 hit at each."""
    levels = {int(r.get("level") or 1) for r in rows}
    items: dict[str, dict[int, bool]] = defaultdict(dict)
    for r in rows:
        items[str(r.get("id"))][int(r.get("level") or 1)] = hit(r, 1)
    right = sum(set(got) == levels and all(got.values()) for got in items.values())
    return {"accuracy": _ratio(right, len(items)), "correct": right, "items": len(items)}


def hit_rate(accuracies: Mapping[int, float]) -> float:
    """The research's "hierarchical hit rate": the product of the per-level accuracies."""
    return math.prod(accuracies.values()) if accuracies else 0.0


def score_levels(rows: Sequence[Mapping[str, Any]], *, bins: int = 10) -> dict[str, Any]:
    """`score_classification` per level plus per-level accuracy, joint accuracy and hit rate."""
    by_level: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_level[int(r.get("level") or 1)].append(r)
    accuracy = per_level_accuracy(rows)
    return {
        "levels": {str(lv): score_classification(rs, bins=bins) for lv, rs in sorted(by_level.items())},
        "per_level_top1": {str(lv): a for lv, a in accuracy.items()},
        "joint_top1": joint_accuracy(rows),
        "hit_rate_product": hit_rate(accuracy),
    }


# -- the reliability diagram -------------------------------------------------------------------------


def write_reliability_png(calib: Mapping[str, Any], path: str | Path, title: str = "") -> Path | None:
    """A reliability diagram of each confidence kind in a `calibration` dict; None if it has none.

    matplotlib (the dev extra) is imported here only, with the Agg backend.
    """
    kinds = [(name, calib[name]) for name in CONFIDENCES if calib.get(name)]
    if not kinds:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 4.5), squeeze=False)
    for ax, (name, block) in zip(axes[0], kinds, strict=True):
        bins = block["reliability"]
        width = bins[0]["upper"] - bins[0]["lower"]
        full = [b for b in bins if b["count"]]
        ax.bar([b["lower"] for b in full], [b["accuracy"] for b in full], width=width, align="edge",
               edgecolor="black", alpha=0.7, label="accuracy")  # fmt: skip
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.plot([b["confidence"] for b in full], [b["accuracy"] for b in full], "o", color="black",
                label="mean confidence")  # fmt: skip
        what = f"{name}: ECE {block['ece']:.3f}, Brier {block['brier']:.3f}, n {block['n']}"
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="top-1 confidence", ylabel="accuracy", title=what)
        ax.legend(loc="upper left", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
