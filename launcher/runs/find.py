"""Finding a run from what the user typed: a run id, a unique id prefix, or a run directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from launcher.errors import UserError, choices_text, did_you_mean, require_nonempty
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.registry import Registry, RunRow


class FoundRun(NamedTuple):
    run_id: str
    run_dir: Path
    row: RunRow | None
    """Its registry row; None for a run directory the registry does not hold (a stored run's copy)."""


def find_row(registry: Registry, ref: str, kinds: Sequence[str] | None = None) -> RunRow:
    """A registered run by id or unique id prefix. With `kinds` (job kinds), a prefix that names
    several runs but exactly one of those kinds resolves to it: `tiny_ner` is the training run even
    when its eval runs (`tiny_ner_eval-...`) share the prefix. An empty `ref` is a UserError."""
    require_nonempty("RUN", ref)
    rows = registry.find(ref)
    if len(rows) > 1 and kinds is not None:
        rows = [r for r in rows if r.job in kinds] or rows
    if not rows:
        known = registry.near(ref)  # ids sharing its first letters, not the whole registry
        raise UserError(f"unknown run '{ref}'{did_you_mean(ref, known)}; `launch status` lists runs")
    if len(rows) > 1:
        raise UserError(f"run '{ref}' is ambiguous: {choices_text(r.run_id for r in rows[:5])}")
    return rows[0]


def find_run(registry: Registry, ref: str, kinds: Sequence[str] | None = None) -> FoundRun:
    """A run by the path of its directory (one with a recipe.yaml; registered or not), else by id
    or unique id prefix (`find_row`). A path-like `ref` that is neither is "not a run directory";
    an empty one is a UserError (never the current directory)."""
    require_nonempty("RUN", ref)
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "recipe.yaml").is_file():
        run_dir = path.resolve()
        run_id = LaunchInfo.read(run_dir).run_id or run_dir.name
        row = registry.get(run_id)
        if row is not None and Path(row.run_dir).resolve() != run_dir:
            row = None  # a copy of a registered run (downloaded from the store)
        return FoundRun(run_id, run_dir, row)
    try:
        row = find_row(registry, ref, kinds)
    except UserError:
        if path.is_dir() or "/" in ref:
            raise UserError(f"{ref}: not a run directory (no recipe.yaml)") from None
        raise
    return FoundRun(row.run_id, Path(row.run_dir), row)
