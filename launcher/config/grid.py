"""A sweep's grid: the `sweep:` section of a recipe, `--grid KEY=V1,V2,...`, and its points.

Pure logic, no registry or scheduler: `launcher/loop/sweep.py` plans and submits the points.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from launcher.config.schema import Strict
from launcher.config.yamlio import Loader
from launcher.errors import UserError
from launcher.runs.launch_info import LaunchInfo

Point = dict[str, Any]
"""One point of a sweep: {dotted recipe key: value}, the varied keys only, in grid order."""


class SweepSpec(Strict):
    """The `sweep:` section a recipe may carry. `launch sweep` runs its points; `launch recipe`
    ignores it (one plain run of the recipe as written); it is never part of a resolved recipe."""

    grid: dict[str, list[Any]] = Field(
        description="recipe key (dotted, as for --set) -> the values to try, e.g. {train.lr: [1e-5, 2e-5]}"
    )
    zip: bool = Field(False, description="pair the lists (all of one length) instead of a cartesian grid")
    max_parallel: int = Field(4, ge=1, description="points running at once")

    @field_validator("grid")
    @classmethod
    def _lists(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not grid:
            raise ValueError("the grid is empty; give at least one key with a list of values")
        empty = [key for key, values in grid.items() if not values]
        if empty:
            raise ValueError(f"grid key {empty[0]} has no values; give a list of at least one")
        return grid


def split_values(text: str) -> list[str]:
    """`a,b,[c,d],"e,f"` -> ['a', 'b', '[c,d]', '"e,f"']: commas inside brackets or quotes stay."""
    parts: list[str] = []
    depth, quote = 0, ""
    current: list[str] = []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_value(raw: str) -> Any:
    """A grid value read as YAML, as `--set` reads its value."""
    try:
        return yaml.load(raw, Loader=Loader) if raw else ""
    except yaml.YAMLError:
        return raw


def parse_grid(texts: list[str]) -> dict[str, list[Any]]:
    """`--grid KEY=V1,V2` options -> {KEY: [V1, V2]}; a key given twice or no value is a UserError."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--grid {text}: expected KEY=V1,V2,..., e.g. --grid train.lr=1e-5,2e-5")
        if key in grid:
            raise UserError(f"--grid {key}: given twice; give all its values in one --grid {key}=V1,V2")
        values = [v for v in split_values(raw) if v != ""]
        if not values:
            raise UserError(f"--grid {key}: no values; expected --grid {key}=V1,V2,...")
        grid[key] = [parse_value(v) for v in values]
    return grid


def expand(grid: dict[str, list[Any]], zip_: bool = False) -> list[Point]:
    """The points of a grid, in order: cartesian (the first key varies slowest) or, with `zip_`,
    the i-th values of every list together (all lists must have one length: else a UserError)."""
    keys = list(grid)
    if zip_:
        lengths = {key: len(values) for key, values in grid.items()}
        if len(set(lengths.values())) > 1:
            given = ", ".join(f"{key} has {n}" for key, n in lengths.items())
            raise UserError(f"--zip: the grid lists must have one length to be paired: {given} values")
        return [dict(zip(keys, values, strict=True)) for values in zip(*grid.values(), strict=True)]
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def unique_points(points: list[Point]) -> tuple[list[Point], list[Point]]:
    """(the points, each once, in order; the later copies left out). Two points are one when their
    `--set` texts are equal (`train.seed=1,1,1` is one point)."""
    seen: set[tuple[str, ...]] = set()
    kept: list[Point] = []
    dropped: list[Point] = []
    for point in points:
        key = tuple(point_overrides(point))
        (dropped if key in seen else kept).append(point)
        seen.add(key)
    return kept, dropped


def value_text(value: Any) -> str:
    """A value as `--set` text that reads back as the same value: 1e-05, 3, true, foo, [1, 2]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str) and parse_value(value) == value and "," not in value:
        return value
    return json.dumps(value)  # JSON is YAML: a string that would read as a number stays a string


def point_overrides(point: Point) -> list[str]:
    """The `--set` strings of a point: ['train.lr=1e-05', 'train.epochs=3']."""
    return [f"{key}={value_text(value)}" for key, value in point.items()]


def short_overrides(overrides: list[str]) -> str:
    """`train.lr=1e-05`, `train.epochs=3` -> `lr=1e-05,epochs=3`: the last part of each key, the
    whole key where two keys end alike (`train.seed`, `data.seed`)."""
    pairs = [text.partition("=")[::2] for text in overrides]
    lasts = [key.rsplit(".", 1)[-1] for key, _ in pairs]
    return ",".join(
        f"{last if lasts.count(last) == 1 else key}={value}"
        for (key, value), last in zip(pairs, lasts, strict=True)
    )


def overrides_facts(run_dir: Path) -> list[tuple[str, str]]:
    """`launch status RUN` lines: the run's overrides and, for a sweep point, its sweep."""
    info = LaunchInfo.read(run_dir)
    facts = []
    if info.overrides:
        facts.append(("overrides", " ".join(info.overrides)))
    if info.sweep:
        facts.append(("sweep", info.sweep))
    return facts
