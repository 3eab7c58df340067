"""Writing a table of dataclass rows as Markdown and CSV, and checking the numbers that go into
them: the bench tables share this."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any


def markdown(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A Markdown table; `|` inside a cell is escaped."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in cells:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Any], columns: Sequence[str], path: Path) -> None:
    """Dataclass rows, the named fields only, numbers at full precision (`repr`, so each equals the
    metrics.json it came from), None as an empty cell."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            data = asdict(row)
            writer.writerow({k: "" if data[k] is None else data[k] for k in columns})


def fraction(key: str, value: Any) -> float:
    """A precision, recall, F1, accuracy or ECE read from metrics.json: a finite number in [0, 1];
    else a ValueError naming the key and the value (the bench skips the file with a warning)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: {value!r} is not a number")
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ValueError(f"{key}: {value!r} is out of range; valid: a number in [0, 1]")
    return number
