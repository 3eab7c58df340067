"""Memory and fit planner: will a recipe fit its cluster's GPUs, and how long will an epoch take.

    architecture.py  a model's sizes from its config.json or the built-in table (tables.py)
    workload.py      what one planned run is: GPUs, precision, optimizer, LoRA targets
    memory.py        per-GPU bytes by component and phase of a step; DeepSpeed ZeRO model states
    timing.py        seconds per epoch or evaluation pass, host transfers included
    fixes.py         the smallest --set changes that fit, each checked by planning it
    report.py        Plan, its JSON form, its rendering
    planner.py       plan(): the entry point
    calibration.py   every measured or fitted constant, with its source

Names are resolved on first use, so `import launcher.plan.tables` loads the tables alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from launcher.plan.architecture import Arch, arch_from_config, resolve_arch
    from launcher.plan.calibration import GIB
    from launcher.plan.fixes import Fix
    from launcher.plan.memory import zero_model_states
    from launcher.plan.planner import plan
    from launcher.plan.report import Plan, render_plan

_WHERE = {
    "Arch": "architecture",
    "arch_from_config": "architecture",
    "resolve_arch": "architecture",
    "GIB": "calibration",
    "Fix": "fixes",
    "zero_model_states": "memory",
    "plan": "planner",
    "Plan": "report",
    "render_plan": "report",
}
__all__ = [
    "GIB",
    "Arch",
    "Fix",
    "Plan",
    "arch_from_config",
    "plan",
    "render_plan",
    "resolve_arch",
    "zero_model_states",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'launcher.plan' has no attribute '{name}'")
    return getattr(importlib.import_module(f"launcher.plan.{_WHERE[name]}"), name)
