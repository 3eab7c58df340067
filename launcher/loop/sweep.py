"""`launch sweep`: one run per point of a grid, all validated and planned before any is submitted.

A sweep is a row of the `sweeps` registry table; its points are ordinary runs with
`parent = <sweep id>`, submitted together by `launching.submit_many` (one Slurm job array with
`%P`, the local GPU queue, the Ray array supervisor). Each point's launch.json carries `sweep`
and `sweep_point` (its varied keys); its resolved recipe and hash never contain the `sweep:` section.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from launcher import paths
from launcher.config.cluster import load_cluster
from launcher.config.grid import Point, expand, parse_grid, point_overrides, unique_points, value_text
from launcher.config.recipe import Recipe, load_recipe, recipe_from_data
from launcher.config.yamlio import load_yaml
from launcher.errors import UserError, choices_text, require_nonempty, require_positive
from launcher.loop import chain
from launcher.runs import refresh as refreshing
from launcher.runs import service as launching
from launcher.runs.cost import budget_line, total
from launcher.runs.registry import Registry, SweepRow
from launcher.runs.service import Prepared, prepare_loaded
from launcher.views.sweeps import point_text, points_table

if TYPE_CHECKING:
    from rich.table import Table


def new_sweep_id(recipe_name: str, now: datetime | None = None) -> str:
    """`sweep-<recipe>-<YYYYmmdd>-<HHMM>-<4 hex>`."""
    now = now or datetime.now()
    return f"sweep-{recipe_name}-{now:%Y%m%d-%H%M}-{secrets.token_hex(2)}"


@dataclass
class PreparedSweep:
    """Every point of a sweep validated and prepared; nothing created yet."""

    sweep_id: str
    recipe: Recipe  # the recipe with the --set overrides, before any point's
    keys: list[str]
    points: list[Point]
    prepared: list[Prepared]
    max_parallel: int
    duplicates: list[Point] = field(default_factory=list)
    """Points the grid gave more than once, each left out after its first (`duplicates_text`)."""


def prepare(
    recipe_ref: str,
    cluster_ref: str,
    grid: list[str],
    zip_: bool = False,
    sets: list[str] | None = None,
    max_parallel: int | None = None,
    force: bool = False,
    live_code: bool = False,
) -> PreparedSweep:
    """Load, validate and plan every point; creates nothing. A bad point is a UserError naming it.

    `--grid` options replace the recipe's `sweep.grid` as a whole; `--zip` and `--max-parallel`
    win over the section's `zip` and `max_parallel`."""
    sets = list(sets or [])
    base = load_recipe(recipe_ref, sets)
    spec = base.sweep
    values = parse_grid(grid) if grid else (spec.grid if spec else None)
    if not values:
        raise UserError(
            f"{base.source}: no grid: give --grid KEY=V1,V2 (e.g. --grid train.lr=1e-5,2e-5) "
            "or a sweep: section with a grid"
        )
    if max_parallel is not None:
        require_positive("--max-parallel", max_parallel)  # 0 is refused, never the default
    points, duplicates = unique_points(expand(values, zip_ or bool(spec and spec.zip)))
    parallel = max_parallel if max_parallel is not None else (spec.max_parallel if spec else 4)
    profile = load_cluster(cluster_ref)
    sweep_id = new_sweep_id(base.name)
    prepared = []
    path = paths.resolve("recipes", recipe_ref)
    data = load_yaml(path)
    data.setdefault("name", path.stem)
    for index, point in enumerate(points):
        try:  # the file read once, each point built from a copy of its data
            recipe = recipe_from_data(copy.deepcopy(data), path, sets + point_overrides(point))
            recipe._base = base._base  # one base for every point: its digest is computed once
            p = prepare_loaded(recipe, profile, parent=sweep_id, force=force, live_code=live_code)
        except UserError as err:
            err.args = (f"sweep point {index} ({point_text(point)}): {err}",)
            raise
        p.run.sweep, p.run.sweep_point = sweep_id, point
        prepared.append(p)
    return PreparedSweep(sweep_id, base, list(values), points, prepared, parallel, duplicates)


def duplicates_text(p: PreparedSweep) -> str | None:
    """The one warning line about the duplicate points left out; None when there were none."""
    if not p.duplicates:
        return None
    first = " ".join(point_overrides(p.duplicates[0]))
    return (
        f"warning: the grid gives {len(p.duplicates)} duplicate point(s) (e.g. {first}): each runs once, "
        f"{len(p.points)} point(s) left"
    )


def submit(p: PreparedSweep, registry: Registry) -> list[str]:
    """Register the sweep, then submit every point together; a failed submit leaves nothing."""

    profile = p.prepared[0].run.profile
    registry.add_sweep(p.sweep_id, p.recipe.name, profile.name, p.keys)
    try:
        return launching.submit_many(p.prepared, registry, p.max_parallel, parent=p.sweep_id)
    except BaseException:
        if not registry.children(p.sweep_id):  # a signal may have left points that reached the scheduler
            registry.remove_sweep(p.sweep_id)
        raise


def at_once(p: PreparedSweep) -> int:
    """Points that will run at once: `max_parallel` as the backend applies it (the local cluster
    runs CPU-only points no more than its cores allow)."""
    requests = [x.request for x in p.prepared]
    return min(p.prepared[0].backend.array_limit(requests, p.max_parallel), len(p.points))


def dry_run_text(p: PreparedSweep) -> str:
    """What `launch sweep` would submit: where the backend makes one job of all points
    (`Backend.array_script`) that job's script, else the first point's script (the others differ
    only in run id, directory and their overrides)."""
    first = p.prepared[0]
    backend = first.backend
    requests = [x.request for x in p.prepared]
    head = [
        f"# sweep {p.sweep_id}: {len(p.points)} point(s) of {p.recipe.name} on {first.run.profile.name} "
        f"({first.run.profile.backend}), at most {at_once(p)} at once"
    ]
    head.append(budget_line([x.gpu_hours for x in p.prepared], first.run.profile))
    cost = backend.array_cost(requests, p.max_parallel)
    head += [cost] if cost else []
    one_script = backend.array_script(requests, p.max_parallel) if len(requests) > 1 else None
    if one_script is not None:
        body = one_script.rstrip() + "\n"
    else:
        body = requests[0].describe()
        if len(requests) > 1:
            body += f"# ... and {len(requests) - 1} more run(s) like it, one per point\n"
    return "\n".join(head) + "\n\n" + body


def dry_run_table(p: PreparedSweep) -> Table:
    rows = [[str(i), x.run.run_id, x.gpu_hours.text(), *(value_text(pt[k]) for k in p.keys)]
            for i, (pt, x) in enumerate(zip(p.points, p.prepared, strict=True))]  # fmt: skip
    title = f"sweep {p.sweep_id} (dry run): {total([x.gpu_hours for x in p.prepared]).text()} GPU-hours"
    return points_table(p.keys, rows, ["point", "run (planned)", "GPU-hours"], title)


def resolve(registry: Registry, ref: str) -> SweepRow | None:
    """The sweep an id or unique prefix names; None when it names none (it may be a run). A prefix
    that does not start `sweep-` and names a run too is the run's; an empty `ref` is a UserError
    (never a prefix of every sweep)."""
    require_nonempty("RUN", ref)
    found = registry.find_sweeps(ref)
    if found and not ref.startswith("sweep-") and registry.find(ref):
        return None
    if len(found) > 1:
        raise UserError(f"sweep '{ref}' is ambiguous: {choices_text(s.sweep_id for s in found[:5])}")
    return found[0] if found else None


def cancel_all(registry: Registry, sweep_row: SweepRow) -> dict[str, str]:
    """Cancel every unfinished point of a sweep and every point's chain; {run id: state after}."""

    rows = refreshing.refresh(registry, registry.children(sweep_row.sweep_id), fresh=True)
    states = {row.run_id: row.state for row in rows}  # in the sweep's order
    # one cancel for all the points (of all the sweep's arrays), the queued ones first
    states.update({run_id: state.value for run_id, state in launching.cancel_many(registry, rows).items()})
    for row in rows:
        chain.cancel(registry, registry.get(row.run_id) or row)
    return states
