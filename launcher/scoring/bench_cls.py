"""The classification benchmark table: dataset, level, shots, mode, model, top-1/3/5, ECE, p50 latency.

One row per ``results/<model>/<recipe>/metrics.json`` (or the old layout's
``results/<model>/metrics.json``) of a ``classify`` run (the run's recipe says ``job:
classify``; the metrics carry ``dataset``, ``level``, ``shots``, ``mode``, ``model``, read with
defaults from the recipe), one per level when the metrics hold ``levels`` (a hierarchical run),
plus a ``joint`` row for the per-item joint top-1. Then the research's published cells (its own
``.md`` reports for DeepSeek-chat, zero-shot, AG News, DDC levels 1-3), marked published: it
reported no calibration and no median latency, only a mean. ``launch bench`` writes the table
as ``benchmark_classification.md`` and ``.csv`` beside the NER table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.kinds.table import KINDS
from launcher.runs.results import read_metrics, result_files
from launcher.scoring import tables

COLUMNS = ("dataset", "level", "shots", "mode", "model", "top-1", "top-3", "top-5", "ECE", "ECE logprob",
           "p50 ms", "n", "notes")  # fmt: skip
CSV_COLUMNS = ("dataset", "level", "shots", "mode", "model", "top1", "top3", "top5", "ece", "ece_logprob",
               "p50_ms", "n", "notes", "published", "run", "result")  # fmt: skip
KIND = KINDS["classify"].name


@dataclass(frozen=True)
class ClsRow:
    dataset: str
    level: str
    shots: str
    mode: str
    model: str
    top1: float | None
    top3: float | None
    top5: float | None
    ece: float | None
    ece_logprob: float | None
    p50_ms: float | None
    n: int | None
    notes: str
    published: bool = False
    run: str | None = None
    result: str | None = None


def _published(level: int, hits: tuple[int, int, int], mean_ms: float) -> ClsRow:
    n = 500
    return ClsRow("ag_news", str(level), "zero", "oracle", "deepseek-chat", hits[0] / n, hits[1] / n,
                  hits[2] / n, None, None, None, n,
                  f"published: the research's report, {hits[0]}/{hits[1]}/{hits[2]} of {n}; "
                  f"mean latency {mean_ms:.0f} ms", True)  # fmt: skip


_LEVELS = (
    _published(1, (320, 452, 484), 14058.51),
    _published(2, (276, 429, 465), 12460.01),
    _published(3, (241, 311, 369), 12633.42),
)
PUBLISHED: tuple[ClsRow, ...] = (
    *_LEVELS,
    ClsRow("ag_news", "product", "zero", "oracle", "deepseek-chat",
           math.prod(r.top1 or 0.0 for r in _LEVELS), None, None, None, None, None, None,
           "derived from the published top-1 cells: the research's hierarchical hit rate (a product of "
           "per-level accuracies on different samples, not a per-item rate)", True),
)  # fmt: skip
"""From the research's ``ag_news_unified_level{1,2,3}_sample500_zero_deepseek-chat.md`` (the tests
read the copies in tests/fixtures/classification and check these cells)."""


def _recipe(run_dir: Path) -> dict[str, Any]:
    from launcher.scoring.bench import _recipe as read

    return read(run_dir)


def is_classify_run(run_dir: Path) -> bool:
    return _recipe(run_dir).get("job") == KIND


def _get(d: Mapping[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _row(block: Mapping[str, Any], meta: dict[str, str], level: str, run: str, result: str) -> ClsRow:
    verbal = _get(block, "calibration", "verbalized")
    logprob = _get(block, "calibration", "logprob")
    notes = [f"{run} {result}"]
    if block.get("cached"):
        notes.append(f"{block.get('requests_sent', 0)} sent, {block['cached']} cached")
    failed = sum(v for k, v in (block.get("parse_status") or {}).items() if k != "ok")
    if failed:
        notes.append(f"{failed} failed")
    return ClsRow(
        meta["dataset"], level, meta["shots"], meta["mode"], meta["model"],
        block.get("top1"), block.get("top3"), block.get("top5"),
        verbal.get("ece") if isinstance(verbal, Mapping) else None,
        logprob.get("ece") if isinstance(logprob, Mapping) else None,
        _get(block, "latency_ms", "p50"), block.get("n"), ", ".join(notes), run=run, result=result,
    )  # fmt: skip


def _first(*values: Any, default: str = "?") -> str:
    """The first value that is not None or empty, as text."""
    return next((str(v) for v in values if v is not None and v != ""), default)


def shots_text(shots: Any) -> str:
    """0 -> zero, 1 -> one, 5 -> few (5); text (the research's "zero") as it is."""
    if isinstance(shots, int) and not isinstance(shots, bool):
        return {0: "zero", 1: "one"}.get(shots, f"few ({shots})")
    return _first(shots)


def _check(row: ClsRow) -> None:
    """A ValueError naming the first number of `row` out of its range (a fraction in [0, 1]; a
    latency a finite number of ms, 0 or more; `n` a count), or of the wrong type."""
    for key in ("top1", "top3", "top5", "ece", "ece_logprob"):
        value = getattr(row, key)
        if value is not None:
            tables.fraction(key, value)
    ms = row.p50_ms
    if ms is not None and (
        isinstance(ms, bool) or not isinstance(ms, int | float) or not (math.isfinite(ms) and ms >= 0)
    ):
        raise ValueError(f"latency_ms.p50: {ms!r} is out of range; valid: a number of ms, 0 or more")
    if row.n is not None and (isinstance(row.n, bool) or not isinstance(row.n, int) or row.n < 0):
        raise ValueError(f"n: {row.n!r} is not a count of items")


def run_rows(run_dir: Path, skipped: list[str] | None = None) -> list[ClsRow]:
    """Rows of one classify run directory (none for any other kind of run).

    A metrics.json whose ``hierarchy`` (or itself) holds `score_levels` output gives one row per
    level and a ``joint`` row; otherwise its top level is one row at its ``level``. A file with a
    number out of range (`_check`) is left out, and `<path>: <why>` appended to `skipped`.
    """
    recipe = _recipe(run_dir)
    if recipe.get("job") != KIND:
        return []
    rows: list[ClsRow] = []
    for path in result_files(run_dir):
        metrics = read_metrics(path.parent)
        if metrics is None:
            continue
        found = _file_rows(run_dir, path, metrics, recipe)
        try:
            for row in found:
                _check(row)
        except ValueError as err:
            if skipped is not None:
                skipped.append(f"{path}: {err}")
            continue
        rows += found
    return rows


def _file_rows(run_dir: Path, path: Path, metrics: dict[str, Any], recipe: dict[str, Any]) -> list[ClsRow]:
    """The rows of one metrics.json of a classify run (see `run_rows`)."""
    data = recipe.get("data") or {}
    ev = recipe.get("eval") or {}
    rows: list[ClsRow] = []
    shots = metrics.get("shots", ev.get("shots"))
    meta = {
        "dataset": _first(metrics.get("dataset"), data.get("dataset"), data.get("name"), data.get("path")),
        "shots": shots_text(shots),
        "mode": _first(metrics.get("mode"), (recipe.get("classify") or {}).get("mode"), default="flat"),
        "model": _first(metrics.get("model"), (recipe.get("model") or {}).get("name_or_path")),
    }
    hierarchy = metrics.get("hierarchy")
    hier: Mapping[str, Any] = hierarchy if isinstance(hierarchy, Mapping) else metrics
    levels = hier.get("levels")
    result = path.parent.relative_to(run_dir / "results").as_posix()
    if isinstance(levels, Mapping) and levels:
        rows += [_row(block, meta, str(lv), run_dir.name, result) for lv, block in levels.items()]
        joint = hier.get("joint_top1")
        if isinstance(joint, Mapping):
            product = hier.get("hit_rate_product")
            note = f"{run_dir.name} {result}, per-item joint top-1"
            if isinstance(product, int | float):
                note += f"; the research's product hit rate {product:.4f}"
            rows.append(ClsRow(meta["dataset"], "joint", meta["shots"], meta["mode"], meta["model"],
                               joint.get("accuracy"), None, None, None, None, None, joint.get("items"),
                               note, run=run_dir.name, result=result))  # fmt: skip
    elif "top1" in metrics:
        rows.append(_row(metrics, meta, _first(metrics.get("level"), default="1"), run_dir.name, result))
    return rows


def collect(
    run_dirs: Sequence[Path], published: bool = True, skipped: list[str] | None = None
) -> list[ClsRow]:
    """Rows of every classify run (in the order given), then the published rows; see `run_rows`."""
    rows = [row for run_dir in run_dirs for row in run_rows(run_dir, skipped)]
    return rows + list(PUBLISHED) if published else rows


def _num(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _cells(row: ClsRow) -> list[str]:
    return [row.dataset, row.level, row.shots, row.mode, row.model, _num(row.top1), _num(row.top3),
            _num(row.top5), _num(row.ece), _num(row.ece_logprob), _num(row.p50_ms, 0),
            "—" if row.n is None else str(row.n), row.notes]  # fmt: skip


def markdown(rows: Sequence[ClsRow]) -> str:
    return tables.markdown(COLUMNS, [_cells(row) for row in rows])


def write_csv(rows: Sequence[ClsRow], path: Path) -> None:
    tables.write_csv(rows, CSV_COLUMNS, path)


def write(rows: Sequence[ClsRow], out: Path) -> dict[str, Path]:
    """benchmark_classification.md and .csv in `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"cls_md": out / "benchmark_classification.md", "cls_csv": out / "benchmark_classification.csv"}
    files["cls_md"].write_text(markdown(rows))
    write_csv(rows, files["cls_csv"])
    return files


def table(rows: Sequence[ClsRow]) -> Any:
    """A rich Table of the rows (published ones dimmed)."""
    from rich.table import Table

    t = Table(title="benchmark (text classification)", title_justify="left")
    for col in COLUMNS:
        numeric = col.startswith(("top", "ECE", "p50")) or col == "n"
        t.add_column(col, justify="right" if numeric else "left", no_wrap=col != "notes", overflow="fold")
    for row in rows:
        t.add_row(*_cells(row), style="dim" if row.published else None)
    return t
