"""`launch score --format seed-cls`: re-score the research's classification result CSVs.

The research's layout (``model/API/result/<model>/<dataset>_level<N>_sample<S>_<shot>_<model>.csv``,
also gzipped): ``index, title, ddc_code, predicted_code, predicted_codes, predictions, confidence,
duration, candidate_count, prompt, response``. Only ``index``, ``title``, ``ddc_code``, ``prompt``
and ``response`` are read (``duration``, seconds, when present): the predicted columns are ignored
and ``response`` is parsed again, with the research's matcher (``seed``) and the strict one
(``launcher.scoring.cls_match``), against the gold code's siblings in the label tree (the shipped
DDC tree unless ``--labels`` names another). The research's ``ddc_code`` has lost its zero padding
(``0`` for ``000``); it is padded to the tree's code width as the research did.

The level is ``--level``, else the ``level<N>`` in the file name, else the prompt's "top-level" /
"second-level" / "third-level classifier". A research report beside the file (same name, ``.md``)
gives the published top-1/3/5 hits, and the result says whether ``seed`` equals them.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

from launcher.errors import UserError, require_file
from launcher.scoring.classification import score_classification
from launcher.scoring.cls_match import MATCHERS, Match, match
from launcher.scoring.labels import LabelTree

REQUIRED = ("index", "title", "ddc_code", "prompt", "response")
_LEVEL_WORDS = {"top-level": 1, "second-level": 2, "third-level": 3}
_HITS = re.compile(r"\|\s*\*\*Top-(\d)\*\*\s*\|\s*[\d.]+%\s*\|\s*(\d+)/(\d+)\s*\|")
_WEIGHTED = re.compile(r"\|\s*\*\*(Precision|Recall|F1 Score) \(Weighted\)\*\*\s*\|\s*([\d.]+)\s*\|")


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return io.StringIO(raw.decode("utf-8-sig"), newline="")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows; a missing, unreadable or incomplete file is a one-line UserError."""
    require_file(path)
    csv.field_size_limit(2**31 - 1)
    try:
        reader = csv.DictReader(_open_text(path))
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)} (format seed-cls needs "
                f"{', '.join(REQUIRED)}); found: {', '.join(header) or 'no header'}"
            )
        rows = [{(k or "").strip(): v or "" for k, v in row.items()} for row in reader]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, gzip.BadGzipFile) as err:
        raise UserError(
            f"{path}: cannot read as CSV ({str(err).splitlines()[0]}) (format seed-cls)"
        ) from None
    if not rows:
        raise UserError(f"{path}: no rows to score (format seed-cls)")
    return rows


def infer_level(path: Path, rows: list[dict[str, str]]) -> int:
    found = re.search(r"level(\d+)", path.name, re.IGNORECASE)
    if found:
        return int(found.group(1))
    for word, level in _LEVEL_WORDS.items():
        if f"{word} classifier" in rows[0].get("prompt", ""):
            return level
    raise UserError(f"{path}: cannot tell the DDC level from the file name or the prompt; pass --level")


def gold_code(text: str, tree: LabelTree) -> str | None:
    """The research's normalisation: the first run of digits, zero-padded (``'0'`` -> ``'000'``)."""
    found = re.search(r"\d+", text or "")
    return tree.normalise_code(found.group(0)) if found else None


def published_report(path: Path) -> dict[str, Any] | None:
    """The hits (and weighted P/R/F1) of the research's ``.md`` report beside `path`, if there is one."""
    name = re.sub(r"\.csv(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    md = path.with_name(name + ".md")
    if not md.is_file():
        return None
    text = md.read_text(encoding="utf-8", errors="replace")
    hits = {f"top{k}": int(got) for k, got, _ in _HITS.findall(text)}
    totals = {int(total) for _, _, total in _HITS.findall(text)}
    if set(hits) != {"top1", "top3", "top5"} or len(totals) != 1:
        return None
    weighted = {m.split()[0].lower(): float(v) for m, v in _WEIGHTED.findall(text)}
    return {"report": str(md), "n": totals.pop(), "hits": hits, "weighted": weighted}


def _row(item: dict[str, str], gold: str, level: int, found: Match) -> dict[str, Any]:
    duration = item.get("duration", "")
    try:
        latency = float(duration) * 1000.0 if duration else None
    except ValueError:
        latency = None
    return {
        "id": item["index"], "level": level, "gold": gold,
        "predictions": found.predictions("code"),
        "raw": item["response"], "parse_status": found.status, "latency_ms": latency, "cached": False,
    }  # fmt: skip


def summary(rows: list[dict[str, Any]], sources: Counter[str], bins: int) -> dict[str, Any]:
    full = score_classification(rows, bins=bins)
    keep = ("n", "top1", "top3", "top5", "hits", "calibration", "macro", "weighted", "parse_status")
    out = {k: full[k] for k in keep}
    out["source"] = {s: sources.get(s, 0) for s in ("json", "lines", "raw", "none")}
    out["latency_ms"] = full["latency_ms"]
    return out


def score_seed_cls(
    path: Path, level: int | None = None, labels: Path | None = None, bins: int = 10
) -> dict[str, Any]:
    """``seed`` and ``strict`` scores of one research result CSV (module docstring)."""
    rows = read_rows(path)
    tree = LabelTree.from_csv(labels) if labels is not None else LabelTree.ddc()
    level = level if level is not None else infer_level(path, rows)
    if level < 1 or level > tree.depth:
        raise UserError(f"--level: {level} is not a level of {tree.source}; valid: 1 to {tree.depth}")
    scored: dict[str, list[dict[str, Any]]] = {m: [] for m in MATCHERS}
    sources: dict[str, Counter[str]] = {m: Counter() for m in MATCHERS}
    for lineno, item in enumerate(rows, start=2):
        gold = gold_code(item["ddc_code"], tree)
        if gold is None or tree.get(gold, level) is None:
            raise UserError(
                f"{path}: row {lineno}: ddc_code '{item['ddc_code']}' is not a level-{level} code of "
                f"{tree.source} (wrong --level or --labels?)"
            )
        candidates = tree.candidates(gold, level)
        for m in MATCHERS:
            found = match(item["response"], candidates, m)
            sources[m][found.source] += 1
            scored[m].append(_row(item, gold, level, found))
    result: dict[str, Any] = {"file": str(path), "level": level, "labels": tree.source,
                              "labels_skipped": tree.skipped}  # fmt: skip
    for m in MATCHERS:
        result[m] = summary(scored[m], sources[m], bins)
    report = published_report(path)
    if report is not None:
        result["published"] = report
        result["seed_equals_published"] = (
            report["hits"] == result["seed"]["hits"] and report["n"] == result["seed"]["n"]
        )
    return result


def render_text(result: dict[str, Any]) -> str:
    """A short plain table: matcher, n, top-1/3/5 (hits), ECE, Brier; the published line if any."""
    head = f"{'matcher':<10} {'n':>5} {'top-1':>14} {'top-3':>14} {'top-5':>14} {'ECE':>7} {'Brier':>7}"
    lines = [f"{result['file']} (level {result['level']}, labels {result['labels']})", head]
    for m in MATCHERS:
        s = result[m]
        cells = [f"{s[f'top{k}']:.4f} ({s['hits'][f'top{k}']})" for k in (1, 3, 5)]
        verbal = s["calibration"]["verbalized"] or {}
        ece = f"{verbal['ece']:.4f}" if verbal else "-"
        brier = f"{verbal['brier']:.4f}" if verbal else "-"
        lines.append(f"{m:<10} {s['n']:>5} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} {ece:>7} {brier:>7}")
    pub = result.get("published")
    if pub:
        cells = [f"{pub['hits'][f'top{k}'] / pub['n']:.4f} ({pub['hits'][f'top{k}']})" for k in (1, 3, 5)]
        lines.append(f"{'published':<10} {pub['n']:>5} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14}")
        lines.append("seed equals published: " + ("yes" if result["seed_equals_published"] else "NO"))
    return "\n".join(lines)
