"""`launch score`: score an existing predictions file without a model, as a table or JSON.

The scorer itself is `launcher.scoring.metrics` (pure Python, no torch), imported only when a file is scored.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from launcher.errors import UserError, choices_text, require_file

FORMATS = {"jsonl": "jsonl", "seed-csv": "seed-csv", "seed-cls": "seed-cls"}
EXTENSIONS = {".jsonl": "jsonl", ".csv": "seed-csv"}
METRICS = ("strict", "seed", "all")
COMMON = ("parse_failures", "hallucinated", "unplaceable", "parse_status", "sentences")
BY_METRIC = {"strict": ("strict", "token", "token_bio", "sentence"), "seed": ("seed",)}


def detect_format(path: Path, given: str | None) -> str:
    """The format named by `--format`, else the one the extension says (.jsonl, .csv)."""
    if given is not None:
        if given not in FORMATS:
            raise UserError(f"--format: '{given}' is not a format; valid: {choices_text(FORMATS)}")
        return given
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"{path}: cannot tell the format from the extension '{path.suffix}'; pass --format "
            f"({choices_text(FORMATS)})"
        )
    return fmt


def score_file(path: Path, fmt: str | None = None) -> dict[str, Any]:
    """`launcher.scoring.metrics.score` of a predictions.jsonl or a research output CSV.

    Every problem with the file (missing, unreadable, not the format, no sentences) is a
    one-line UserError.
    """
    require_file(path)
    fmt = detect_format(path, fmt)
    from launcher.scoring import metrics, token_level

    try:
        read = metrics.score_predictions_jsonl if fmt == "jsonl" else metrics.score_seed_csv
        if fmt == "jsonl" and token_level.is_tagged_jsonl(path):
            read = token_level.score_tagged_jsonl  # a baseline's file: a tag per word
        result = read(path)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, csv.Error) as err:
        what = f"missing key {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
        if str(path) not in what:
            what = f"{path}: {what}"
        raise UserError(f"{what} (format {fmt})") from None
    if not result["sentences"]:
        raise UserError(f"{path}: no sentences to score (format {fmt})")
    return result


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise UserError(f"--metric: '{metric}' is not a metric; valid: {choices_text(METRICS)}")


def select(result: dict[str, Any], metric: str) -> dict[str, Any]:
    """The keys of `result` that `--metric` asks for (all of them for `all`)."""
    check_metric(metric)
    if metric == "all":
        return result
    return {k: result[k] for k in (*BY_METRIC[metric], *COMMON) if k in result}


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)


def _f(x: float) -> str:
    return f"{x:.4f}"


def render(result: dict[str, Any], title: str) -> Group:
    """Tables for whatever metrics `result` holds (see `select`)."""
    table = Table(title=title, title_justify="left")
    for col in ("metric", "precision", "recall", "F1", "TP", "FP", "FN"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    if "strict" in result:
        s = result["strict"]
        table.add_row("strict entity (micro)", _f(s["precision"]), _f(s["recall"]), _f(s["f1"]),
                      str(s["tp"]), str(s["fp"]), str(s["fn"]))  # fmt: skip
        table.add_row("strict entity (macro)", "", "", _f(s["macro_f1"]), "", "", "")
    if "token" in result:
        t = result["token"]
        table.add_row("token", _f(t["precision"]), _f(t["recall"]), _f(t["f1"]), str(t["tp"]),
                      str(t["predicted"] - t["tp"]), str(t["gold"] - t["tp"]))  # fmt: skip
    if "token_bio" in result:
        t = result["token_bio"]
        table.add_row("token, exact BIO tag", _f(t["precision"]), _f(t["recall"]), _f(t["f1"]), str(t["tp"]),
                      str(t["fp"]), str(t["fn"]))  # fmt: skip
    if "sentence" in result:
        s = result["sentence"]
        table.add_row("sentence exact match", "", "", f"acc {_f(s['accuracy'])}", str(s["correct"]), "",
                      str(s["total"] - s["correct"]))  # fmt: skip
    if "seed" in result:
        s = result["seed"]
        table.add_row("seed entity", _f(s["precision"]), _f(s["recall"]), _f(s["f1"]), str(s["tp"]),
                      str(s["fp"]), str(s["fn"]))  # fmt: skip
        t = s["token"]
        table.add_row("seed token", _f(t["precision"]), _f(t["recall"]), _f(t["f1"]), str(t["correct"]),
                      str(t["predicted"] - t["correct"]), str(t["gold"] - t["correct"]))  # fmt: skip
        st = s["sentence"]
        table.add_row("seed sentence", "", "", f"acc {_f(st['accuracy'])}", str(st["correct"]), "",
                      str(st["evaluated"] - st["correct"]))  # fmt: skip
    parts: list[Any] = [table]
    per_type = result.get("strict", {}).get("per_type") or {}
    if per_type:
        types = Table(title="strict entity, per type", title_justify="left")
        for col in ("type", "precision", "recall", "F1", "support"):
            types.add_column(col, justify="left" if col == "type" else "right")
        for label, row in per_type.items():
            types.add_row(label, _f(row["precision"]), _f(row["recall"]), _f(row["f1"]), str(row["support"]))
        parts.append(types)
    status = result.get("parse_status") or {}
    facts = [f"sentences {result['sentences']}", f"parse failures {result['parse_failures']}"]
    if "hallucinated" in result:
        facts.append(f"hallucinated entities {result['hallucinated']}")
    if status:
        facts.append("parse status " + ", ".join(f"{k} {v}" for k, v in status.items()))
    if "seed" in result:
        facts.append(f"seed metric skipped {result['seed']['skipped']} unparsable outputs")
    parts.append(Text("; ".join(facts)))
    return Group(*parts)
