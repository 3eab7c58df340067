"""The smallest `--set` changes that make a recipe fit, each checked by planning the changed recipe."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from launcher.errors import UserError
from launcher.plan import tables

if TYPE_CHECKING:
    from launcher.config.cluster import ClusterProfile
    from launcher.config.recipe import Recipe
    from launcher.plan.architecture import Arch

Ladder = list[list[str]]  # candidate changes, from the mildest to the strongest


@dataclass
class Fix:
    """A change that makes the recipe fit, checked by planning the changed recipe."""

    overrides: list[str]
    per_gpu_gib: float
    gpu_gib: float | None

    @property
    def text(self) -> str:
        return " ".join(f"--set {o}" for o in self.overrides)


def _generation_ladders(recipe: Recipe, per_node: int) -> list[Ladder]:
    res, b, q = recipe.resources, recipe.eval.batch_size, recipe.quantization.mode
    stronger = {"none": ("int8", "int4"), "int8": ("int4",), "int4": ()}[q]
    return [
        [[f"eval.batch_size={b // 2**k}"] for k in range(1, 12) if b // 2**k >= 1],
        [[f"quantization.mode={m}"] for m in stronger],
        [[f"resources.gpus_per_node={g}"] for g in (2, 4, 8, 16) if res.gpus_per_node < g <= per_node],
    ]


def _zero_ladder(recipe: Recipe) -> Ladder:
    d = recipe.distributed
    ds = ["distributed.strategy=deepspeed"] if d.strategy != "deepspeed" else []
    zero: Ladder = []
    if recipe.resources.gpus > 1:
        zero += [[*ds, f"distributed.zero_stage={s}"] for s in (2, 3) if s > d.zero_stage]
    off = ["distributed.offload_optimizer=cpu"] if d.offload_optimizer == "none" else []
    if d.zero_stage <= 2 and off:
        zero.append([*ds, "distributed.zero_stage=2", *off])
    if d.zero_stage < 3 or off:
        zero.append([*ds, "distributed.zero_stage=3", *off])
    if d.offload_params == "none":
        everything = ["distributed.offload_optimizer=cpu", "distributed.offload_params=cpu"]
        zero.append([*ds, "distributed.zero_stage=3", *everything])
    return zero


def _training_ladders(recipe: Recipe, profile: ClusterProfile, per_node: int, arch: Arch) -> list[Ladder]:
    res, t, d = recipe.resources, recipe.train, recipe.distributed
    max_nodes = profile.limits.max_nodes if profile.backend != "local" else 1
    families: list[Ladder] = []
    linearized = tables.LINEARIZED.get(arch.name)
    if arch.experts and not arch.experts_linear and linearized and recipe.quantization.mode != "none":
        families.append([[f"model.name_or_path={linearized}"]])
    if not t.gradient_checkpointing:
        families.append([["train.gradient_checkpointing=true"]])
    elif t.gradient_checkpointing is True and recipe.engine == "axolotl":
        families.append([["train.gradient_checkpointing=offload"]])
    if recipe.engine == "axolotl" and not t.cut_cross_entropy and not arch.encoder:
        families.append([["train.cut_cross_entropy=true"]])
    mb = t.micro_batch_size
    families.append(
        [
            [f"train.micro_batch_size={mb // 2**k}", f"train.grad_accum={t.grad_accum * 2**k}"]
            for k in range(1, 12)
            if mb // 2**k >= 1
        ]
    )
    if d.strategy != "deepspeed" and t.optim in ("adamw_torch", "adamw_torch_fused"):
        families.append([[f"train.optim={o}"] for o in ("adamw_torch_fused", "adamw_8bit") if o != t.optim])
    families.append(_zero_ladder(recipe))
    sharded = d.strategy == "deepspeed" and d.zero_stage >= 1
    shard = [] if sharded else ["distributed.strategy=deepspeed", "distributed.zero_stage=3"]
    more = [
        [*shard, f"resources.gpus_per_node={g}"] for g in (2, 4, 8, 16) if res.gpus_per_node < g <= per_node
    ]
    more += [
        [*shard, f"resources.gpus_per_node={per_node}", f"resources.nodes={n}"]
        for n in range(res.nodes + 1, max_nodes + 1)
    ]
    families.append(more)
    families.append(
        [[f"train.max_length={t.max_length // 2**k}"] for k in range(1, 8) if t.max_length // 2**k >= 128]
    )
    if not arch.encoder and recipe.method == "fft":
        families.append([["method=lora"], ["method=qlora", "quantization.mode=int4"]])
    elif not arch.encoder and recipe.method == "lora":
        families.append([["method=qlora", "quantization.mode=int4"]])
    return families


def find_fixes(
    recipe: Recipe,
    profile: ClusterProfile,
    per_node: int,
    arch: Arch,
    training: bool,
    per_gpu_if_fits: Callable[[Recipe], tuple[bool, float, float | None]],
) -> list[Fix]:
    """The mildest fitting change of each family (checkpointing, micro-batch, optimizer, ZeRO and
    offload, more GPUs, max_length, LoRA/QLoRA; for generation: batch, quantization, GPUs),
    retried with checkpointing on when none fits alone. `per_gpu_if_fits` plans a changed
    recipe: (fits, GiB per GPU, GPU GiB)."""
    from launcher.config.recipe import Recipe as RecipeModel
    from launcher.config.schema import apply_overrides

    base = recipe.model_dump()

    def attempt(overrides: list[str]) -> Fix | None:
        data = apply_overrides(RecipeModel, json.loads(json.dumps(base)), overrides)
        try:
            changed = RecipeModel.model_validate(data)
        except ValueError:
            return None
        changed._source = recipe.source
        try:
            fits, per_gpu, capacity = per_gpu_if_fits(changed)
        except UserError:
            return None
        return Fix(overrides, per_gpu, capacity) if fits else None

    if training:
        families = _training_ladders(recipe, profile, per_node, arch)
        ckpt = [] if recipe.train.gradient_checkpointing else ["train.gradient_checkpointing=true"]
    else:
        families, ckpt = _generation_ladders(recipe, per_node), []
    found: list[Fix] = []
    for family in families:
        fix = next((f for f in map(attempt, family) if f), None)
        if fix is None and ckpt and family and family[0] != ckpt:
            fix = next((f for f in (attempt(ckpt + c) for c in family) if f), None)
        if fix is not None and not any(set(f.overrides) <= set(fix.overrides) for f in found):
            found.append(fix)
    return found
