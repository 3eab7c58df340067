"""W&B for jobs: mode from the recipe, profile and environment, ids kept in launch.json, no secrets."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from launcher.config.grid import point_overrides, short_overrides
from launcher.config.recipe import Recipe
from launcher.errors import SetupError, UserError
from launcher.runs.launch_info import LaunchInfo
from launcher.tracking.wandb_mode import node_mode, redact_data
from launcher.tracking.wandb_reach import base_url, check_reachable

FLUSH_S = 5.0
"""How often an offline run's file gets what was logged: `launch sync --wandb --follow` reads it."""
PROBE_S = 5.0
"""How long W&B has to answer the job's one try when the profile's tracking.wandb.mode is auto."""


def _unreachable() -> str | None:
    """Why W&B does not answer from this node within PROBE_S; None when it does."""
    try:
        check_reachable(base_url(), timeout_s=PROBE_S)
    except (SetupError, UserError) as err:
        return str(err).split("; check", 1)[0]
    return None


def run_name(info: LaunchInfo, run_dir: Path) -> str:
    """`<run id> lr=1e-05,epochs=3`: the run id and its overrides (a sweep point: its varied keys)."""
    point = info.sweep_point
    overrides = point_overrides(point) if point else list(info.overrides)
    name = info.run_id or run_dir.name
    return f"{name} {short_overrides(overrides)}" if overrides else name


def start(recipe: Recipe, run_dir: Path, job_type: str, **extra_config: Any) -> Any | None:
    """Start (or resume) this run's W&B run on rank 0; None when disabled or on other ranks."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    spec = recipe.tracking.wandb
    info = LaunchInfo.read(run_dir)
    profile = ((info.extra.get("profile") or {}).get("tracking") or {}).get("wandb") or {}
    mode, fell_back = node_mode(spec.mode, profile.get("mode", "auto"), _unreachable)
    if fell_back:
        print(fell_back, flush=True)
    if mode == "disabled":
        return None
    import wandb

    saved = info.wandb.get(job_type) or {}
    run_id = saved.get("id") or uuid.uuid4().hex[:12]
    overrides = list(info.overrides)
    config = {**recipe.model_dump(mode="json", exclude={"sweep"}), **extra_config, "overrides": overrides}
    if info.sweep:
        config.update(sweep=info.sweep, sweep_point=info.sweep_point or {})
    config = redact_data(config)
    run = wandb.init(
        project=spec.project, entity=spec.entity, group=info.sweep or spec.group or recipe.name,
        job_type=job_type, name=run_name(info, run_dir), id=run_id, resume="allow", dir=str(run_dir),
        mode=mode, config=config, tags=spec.tags, reinit="finish_previous",
        settings=wandb.Settings(x_transaction_log_flush_interval=FLUSH_S),
    )  # fmt: skip
    entry: dict[str, Any] = {"id": run_id, "mode": mode, "project": spec.project}
    if mode == "online":
        entry["url"] = run.url
    else:
        entry["offline_dir"] = str(Path(run.dir).parent)
    wandb_info = dict(info.wandb)
    wandb_info[job_type] = entry
    wandb_info.update({k: v for k, v in entry.items() if k in ("url", "offline_dir")})
    LaunchInfo.update(run_dir, wandb=wandb_info)
    return run
