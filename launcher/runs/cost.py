"""GPU-hours: what a submission is planned to cost (and the profile's budget for it), and what a
run used, recorded in `<run_dir>/usage.json` once it ended so that no scheduler is asked again.

Planned: the planner's estimate (epochs x time per epoch x GPUs), else the most the run may hold
(resources.time x GPUs). Used: what the backend measured (Slurm: sacct's elapsed time x allocated
GPUs of every start; local and Ray: the run's own start and end times x its GPUs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.errors import UserError
from launcher.jsonio import atomic_write_json, read_object

if TYPE_CHECKING:
    from launcher.config.cluster import ClusterProfile
    from launcher.config.recipe import Recipe
    from launcher.plan.report import Plan

USAGE_FILE = "usage.json"


@dataclass(frozen=True)
class Planned:
    """GPU-hours planned for one run or a whole submission; `estimated` False: only the bound
    resources.time x GPUs is known (the planner has no time estimate for it)."""

    hours: float
    estimated: bool = True

    def text(self) -> str:
        """`~7.2` (an estimate) or `at most 0.3` (the time-limit bound)."""
        return f"~{hours_text(self.hours)}" if self.estimated else f"at most {hours_text(self.hours)}"


NOTHING = Planned(0.0)


def hours_text(hours: float) -> str:
    """GPU-hours to two significant decimals at most: 7.16 -> `7.2`, 0.0333 -> `0.033`, 0 -> `0`."""
    if hours == 0:
        return "0"
    if hours >= 10:
        return f"{hours:,.0f}"
    if hours >= 1:
        return f"{hours:.1f}"
    return f"{hours:.2g}"


def planned_hours(recipe: Recipe, estimate: Plan | None) -> Planned:
    """The planner's estimate of the whole recipe, else resources.time x GPUs."""
    if estimate is not None and estimate.gpu_hours is not None:
        return Planned(estimate.gpu_hours)
    res = recipe.resources
    held = res.nodes * res.gpus_per_node
    return Planned(held * res.seconds / 3600, estimated=held == 0)


def total(planned: Sequence[Planned]) -> Planned:
    return Planned(sum(p.hours for p in planned), all(p.estimated for p in planned))


def check_budget(planned: Sequence[Planned], profile: ClusterProfile) -> None:
    """Refuse a submission (its runs' `planned` GPU-hours together) above the profile's
    `limits.max_gpu_hours`: one UserError line, before anything is created."""
    limit = profile.limits.max_gpu_hours
    whole = total(planned)
    if limit is None or whole.hours <= limit:
        return
    runs = f" for {len(planned)} runs" if len(planned) > 1 else ""
    how = "" if whole.estimated else " (resources.time x GPUs: the planner has no time estimate)"
    raise UserError(
        f"{profile.source}: limits.max_gpu_hours: this submission needs {whole.text()} GPU-hours{runs}"
        f"{how}, more than the {limit:g} allowed on cluster '{profile.name}'; nothing submitted; "
        "submit anyway with --force"
    )


def budget_line(planned: Sequence[Planned], profile: ClusterProfile) -> str:
    """`# GPU-hours: ~7.2 planned (budget 10 on cluster 'a800')` for a dry run; says when the
    submission would be refused."""
    whole = total(planned)
    line = f"# GPU-hours: {whole.text()} planned" + ("" if whole.estimated else " (resources.time x GPUs)")
    limit = profile.limits.max_gpu_hours
    if limit is None:
        return line
    verdict = "over it: refused without --force" if whole.hours > limit else "within it"
    return f"{line}; limits.max_gpu_hours {limit:g} on cluster '{profile.name}': {verdict}"


# ---------------------------------------------------------------------------- used


@dataclass(frozen=True)
class Used:
    """GPU-hours a run's jobs used so far; `final` once every start of them has ended."""

    hours: float
    final: bool


def held_hours(started: float, ended: float | None, gpus: int, now: float | None = None) -> Used:
    """`gpus` held from `started` to `ended` (unix times; None: still running, until `now`)."""
    end = ended if ended is not None else (now if now is not None else datetime.now(UTC).timestamp())
    return Used(max(end - started, 0.0) * gpus / 3600, ended is not None)


def held_in(record: dict[str, Any], gpus: int) -> Used | None:
    """From a run's own record of `started` and `ended` (unix times; local and Ray backends): 0 for
    a run that ended unstarted, None when not known."""
    started, ended = record.get("started"), record.get("ended")
    if not isinstance(started, int | float):
        return Used(0.0, True) if isinstance(ended, int | float) else None
    return held_hours(started, ended if isinstance(ended, int | float) else None, gpus)


def requested_gpus(run_dir: Path) -> int:
    """nodes x gpus_per_node of the run's resolved recipe.yaml; 0 when it cannot be read."""
    import yaml  # not at the top: `launch status` imports this module for hours_text

    try:
        data = yaml.safe_load((run_dir / "recipe.yaml").read_text())
        res: dict[str, Any] = data.get("resources") or {}
        return int(res.get("nodes", 1)) * int(res.get("gpus_per_node", 0))
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError):
        return 0


def recorded(run_dir: Path) -> float | None:
    """The GPU-hours recorded for an ended run; None when none were."""
    value = (read_object(run_dir / USAGE_FILE) or {}).get("gpu_hours")
    return float(value) if isinstance(value, int | float) else None


def record(run_dir: Path, hours: float, source: str) -> None:
    """Write `usage.json` of an ended run: {gpu_hours, source (its backend), measured_at}."""
    when = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_json(run_dir / USAGE_FILE, {"gpu_hours": hours, "source": source, "measured_at": when})
