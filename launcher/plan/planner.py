"""`plan(recipe, profile)`: will a recipe fit its cluster's GPUs, and how long will an epoch take.

Pure functions over the recipe and the cluster profile: no torch, no network. What a job kind
needs planned comes from the job-kind table (`launcher/kinds/table.py`, `JobKind.planner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from launcher.kinds.table import kind_of
from launcher.plan.calibration import CONTEXT_GIB, FRAGMENTATION, GIB
from launcher.plan.fixes import find_fixes
from launcher.plan.memory import BREAKDOWN_KEYS, estimate_inference, estimate_training, overhead_bytes
from launcher.plan.report import Plan, assumptions
from launcher.plan.timing import Timing, estimate_time, peak_tflops
from launcher.plan.workload import Gpu, Workload, gpu_of, workload

if TYPE_CHECKING:
    from launcher.config.cluster import ClusterProfile
    from launcher.config.recipe import Recipe


@dataclass
class _Sized:
    """What the memory and time estimates found for a workload."""

    w: Workload
    gpu: Gpu
    per_gpu_gib: float
    allocated_gib: float
    breakdown: dict[str, float]
    peak_phase: str
    cpu_gib: float
    timing: Timing | None
    notes: list[str]


def _size(recipe: Recipe, gpu: Gpu, training: bool) -> _Sized:
    notes: list[str] = []
    w = workload(recipe, gpu, training, notes)
    est = estimate_training(w) if training else estimate_inference(w)
    allocated = est.peak_bytes
    overhead = overhead_bytes(w, allocated)
    phase = est.phases[est.peak_phase]
    breakdown = {k: phase.get(k, 0.0) / GIB for k in BREAKDOWN_KEYS}
    breakdown["overhead"] = overhead / GIB
    per_gpu = (allocated + overhead) / GIB
    timing = estimate_time(w, recipe, gpu)
    return _Sized(
        w, gpu, per_gpu, allocated / GIB, breakdown, est.peak_phase, est.cpu_bytes / GIB, timing, notes
    )


def _cpu_capacity(recipe: Recipe, profile: ClusterProfile) -> float | None:
    node = profile.node.mem_gb if profile.node else None
    caps = [x for x in (recipe.resources.mem_gb, node) if x is not None]
    return min(caps) if caps else None


def _fits(s: _Sized, cpu_cap: float | None) -> bool:
    gpu_ok = s.gpu.memory_gib is not None and s.per_gpu_gib <= s.gpu.memory_gib
    return gpu_ok and (cpu_cap is None or s.cpu_gib <= cpu_cap)


def _epochs(recipe: Recipe, training: bool, steps: int | None) -> float:
    """Passes over the data: train.epochs, or train.max_steps over the optimizer `steps` per epoch
    where it is set (HF Trainer's max_steps overrides epochs); one for an evaluation."""
    if not training:
        return 1.0
    if recipe.train.max_steps and steps:
        return recipe.train.max_steps / steps
    return recipe.train.epochs


def _hours(recipe: Recipe, gpus: int, seconds: float | None, epochs: float) -> tuple[float | None, float]:
    """(estimated GPU-hours of the whole recipe, the most its resources may hold)."""
    held = recipe.resources.nodes * recipe.resources.gpus_per_node
    most = held * recipe.resources.seconds / 3600
    if held == 0:
        return 0.0, 0.0
    if seconds is None:
        return None, most
    return seconds * epochs * gpus / 3600, most


def _build(recipe: Recipe, profile: ClusterProfile, planner: str, s: _Sized | None, why: str = "") -> Plan:
    """The one place a Plan is made: from the estimates, or (s None) a plan with nothing to size."""
    if s is None:
        spec = profile.gpu if profile.gpu != "auto" else None
        capacity = spec.memory_gb if spec is not None else None
        hours, most = _hours(recipe, 0, None, 1.0)
        return Plan(
            recipe=recipe.name, cluster=profile.name, job=recipe.job, planner=planner,
            model=recipe.model.name_or_path, fits=True, gpu_gib=capacity, margin_gib=capacity,
            gpu_hours=hours, gpu_hours_max=most,
            breakdown=dict.fromkeys(BREAKDOWN_KEYS, 0.0), assumptions=[why],
        )  # fmt: skip
    w, gpu = s.w, s.gpu
    cpu_cap = _cpu_capacity(recipe, profile)
    warnings: list[str] = []
    if gpu.memory_gib is None:
        warnings.append(
            f"cluster '{profile.name}' reports no GPUs and the recipe sets no "
            "resources.gpu_memory_gb: no memory verdict possible"
        )
    if cpu_cap is not None and s.cpu_gib > cpu_cap:
        warnings.append(
            f"offload needs {s.cpu_gib:.0f} GiB of CPU memory per node, more than the {cpu_cap:g} available"
        )
    notes = assumptions(w, recipe.eval.engine) + s.notes
    epochs = _epochs(recipe, w.training, None if s.timing is None else s.timing.steps)
    notes.append(
        f"overhead: {CONTEXT_GIB} GiB CUDA context, {FRAGMENTATION:.0%} fragmentation"
        + (", NCCL buffers" if w.gpus > 1 else "")
        + (", DeepSpeed buckets" if w.deepspeed and w.training else "")
    )
    if s.timing is None:
        why = (
            "GPU type not in the built-in table"
            if gpu.info is None
            else f"dataset {recipe.data.dataset} not in the built-in table"
        )
        notes.append(f"no time estimate: {why}")
    else:
        notes.extend(f"time: {how}" for how in s.timing.how)
        if w.training and recipe.train.max_steps and s.timing.steps:
            notes.append(
                f"time: train.max_steps {recipe.train.max_steps:,} of {s.timing.steps:,} optimizer steps per"
                f" epoch: {epochs:.3g} epochs (max_steps overrides train.epochs, as in HF Trainer)"
            )
        total = s.timing.seconds * epochs
        if total > recipe.resources.seconds:
            warnings.append(f"estimated {total / 3600:.1f} h exceeds resources.time {recipe.resources.time}")
    hours, most = _hours(recipe, w.gpus, None if s.timing is None else s.timing.seconds, epochs)
    return Plan(
        recipe=recipe.name, cluster=profile.name, job=recipe.job, planner=planner, model=w.arch.name,
        fits=_fits(s, cpu_cap), gpu_gib=gpu.memory_gib,
        margin_gib=None if gpu.memory_gib is None else gpu.memory_gib - s.per_gpu_gib,
        gpus=w.gpus, gpu=gpu.label, per_gpu_gib=s.per_gpu_gib, peak_allocated_gib=s.allocated_gib,
        cpu_gib=s.cpu_gib, cpu_capacity_gib=cpu_cap, breakdown=s.breakdown, peak_phase=s.peak_phase,
        params=w.arch.total_params, trainable_params=w.trainable,
        time_per_epoch_s=None if s.timing is None else s.timing.seconds,
        epochs=epochs, gpu_hours=hours, gpu_hours_max=most,
        utilization=None if s.timing is None else s.timing.utilization,
        peak_tflops=peak_tflops(w, gpu), assumptions=notes, warnings=warnings,
    )  # fmt: skip


def plan(recipe: Recipe, profile: ClusterProfile) -> Plan:
    """Plan `recipe` on `profile`: per-GPU memory, verdict, time per epoch, and when it does not
    fit, the smallest `--set` changes that do (each checked by planning it).

    The optimizer is the recipe's `train.optim`, the one the job hands the Trainer. A job kind
    whose planner is cpu or none gets a plan with nothing to size that says so. Raises UserError
    when the model's architecture is unknown.
    """
    kind = kind_of(recipe)
    if kind.planner == "cpu":
        why = f"job '{recipe.job}' trains and evaluates on CPU: planned as a CPU job, no GPU memory to size"
        return _build(recipe, profile, kind.planner, None, why)
    if kind.planner == "none" or recipe.eval.engine == "openai":
        what = "an API" if recipe.eval.engine == "openai" else "no model the planner sizes"
        return _build(recipe, profile, kind.planner, None, f"job '{recipe.job}' uses {what}: nothing to plan")
    if recipe.resources.gpus_per_node == 0:
        return _build(recipe, profile, "cpu", None, f"job '{recipe.job}' runs on CPU: nothing to plan")
    planner = "generation" if kind.planner == "training" and recipe.eval.only else kind.planner
    training = planner == "training"  # eval.only: one scoring pass of a checkpoint
    spec = profile.gpus  # detects this machine's GPUs for `gpu: auto`: ask once
    gpu = gpu_of(recipe, spec)
    sized = _size(recipe, gpu, training)
    result = _build(recipe, profile, planner, sized)
    if not result.fits and gpu.memory_gib is not None:

        def replan(changed: Recipe) -> tuple[bool, float, float | None]:
            s = _size(changed, gpu, training)
            return _fits(s, _cpu_capacity(changed, profile)), s.per_gpu_gib, gpu.memory_gib

        per_node = spec.per_node if spec is not None else recipe.resources.gpus_per_node
        result.fixes = find_fixes(recipe, profile, per_node, sized.w.arch, training, replan)
        result.suggestions = [f.text for f in result.fixes]
    return result
