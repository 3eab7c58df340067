"""Seconds per epoch (training) or per evaluation pass (generation) on the planned GPUs.

Calibrated on tests/fixtures/h200_throughput.json; the constants and their sources are in
launcher/plan/calibration.py. Host transfers (DeepSpeed ZeRO offload, offloaded checkpointing)
and DeepSpeed's CPU optimizer step are added to the GPU time, not overlapped with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from launcher.plan import tables
from launcher.plan.calibration import (
    CPU_ADAM_BYTES_PER_PARAM,
    DECODE_BANDWIDTH_SHARE,
    DECODE_FLOPS_SHARE,
    DECODE_MS_PER_LAYER,
    HOST_MEMORY_GB_S,
    INT4_MATMUL_EFFICIENCY,
    KERNEL_MFU,
    PCIE_GB_S,
    QUANT_DECODE_SLOWDOWN,
    STEP_MS_PER_LAYER,
)
from launcher.plan.memory import checkpoint_bytes, estimate_inference
from launcher.plan.workload import Gpu, Workload

if TYPE_CHECKING:
    from launcher.config.recipe import Recipe


@dataclass(frozen=True)
class Timing:
    """Seconds per epoch or evaluation pass, model FLOPs utilization, and how it was reckoned."""

    seconds: float
    utilization: float
    how: list[str]
    steps: int | None = None
    """Optimizer steps per epoch (training): what train.max_steps counts."""


def peak_tflops(w: Workload, gpu: Gpu) -> float | None:
    if gpu.info is None:
        return None
    return gpu.info.tflops / 2 if w.precision == "fp32" else gpu.info.tflops  # TF32: half rate


def epoch_samples(recipe: Recipe, training: bool) -> int | None:
    info = tables.DATASETS.get(recipe.data.dataset)
    if info is None:
        return None
    d = recipe.data
    if not training:
        n = info.samples if d.dataset == "ag_news" else round(info.samples * d.test_size)
        return min(n, d.max_eval_samples or n)
    train = info.samples * (1 - d.test_size)
    train = train - d.validation_size if d.validation_size >= 1 else train * (1 - d.validation_size)
    n = max(1, round(train))
    return min(n, d.max_train_samples or n)


def _forward_flops_per_token(w: Workload, span: float) -> float:
    """Matmul FLOPs plus attention over `span` earlier tokens (all of them for an encoder)."""
    arch = w.arch
    causal = 1.0 if arch.encoder else 0.5
    return 2 * arch.computed_matmul_params + 4 * arch.layers * span * causal * arch.heads * arch.head_dim


def host_transfers(w: Workload, gpu: Gpu, micro_steps: int) -> tuple[float, str]:
    """(seconds per epoch, description) of what crosses the PCIe link of each GPU and the CPU
    optimizer step: ZeRO-3 parameter offload gathers every 16-bit partition in from the CPU in
    each pass; optimizer offload sends the 16-bit gradient partition out each micro-step, runs
    AdamW on the CPU each optimizer step and sends the updated partition back; offloaded
    checkpointing sends each layer input out in the forward pass and back in the backward."""
    assert gpu.info is not None
    pcie = PCIE_GB_S[gpu.info.pcie_gen] * 1e9
    n, p, t = w.gpus, w.arch.total_params, w.trainable
    per_micro = per_step = cpu_step = 0.0
    parts: list[str] = []
    if w.deepspeed and w.offload_params:
        passes = 3 if w.grad_ckpt else 2
        per_micro += 2 * p / n * passes
        parts.append(f"parameter partitions in {passes}x per micro-step")
    if w.deepspeed and w.offload_optimizer:
        per_micro += 2 * t / n
        if not w.offload_params:
            per_step += 2 * t / n
        cpu_step = t / w.nodes * CPU_ADAM_BYTES_PER_PARAM / (HOST_MEMORY_GB_S * 1e9)
        parts.append(
            f"gradients out per micro-step, CPU AdamW of {cpu_step:.1f} s per optimizer step "
            f"({CPU_ADAM_BYTES_PER_PARAM} bytes per parameter at {HOST_MEMORY_GB_S:g} GB/s)"
        )
    if w.ckpt_offload:
        per_micro += 2 * checkpoint_bytes(w)
        parts.append("checkpointed layer inputs out and back per micro-step")
    if not parts:
        return 0.0, ""
    optimizer_steps = math.ceil(micro_steps / w.grad_accum)
    seconds = micro_steps * per_micro / pcie + optimizer_steps * (per_step / pcie + cpu_step)
    how = (
        f"host transfers {seconds / max(micro_steps, 1):.2f} s per micro-step over PCIe gen "
        f"{gpu.info.pcie_gen} at {pcie / 1e9:g} GB/s ({'; '.join(parts)})"
    )
    return seconds, how


def estimate_time(w: Workload, recipe: Recipe, gpu: Gpu) -> Timing | None:
    """Time per epoch or evaluation pass on these GPUs; None without a GPU or dataset entry.

    A training micro-step costs its FLOPs at KERNEL_MFU of peak plus STEP_MS_PER_LAYER per layer
    (launches, optimizer, trainer), plus its host transfers; a decode step costs the most of HF
    generate's per-layer time, reading the weights at DECODE_BANDWIDTH_SHARE of HBM bandwidth,
    and its FLOPs at DECODE_FLOPS_SHARE of peak."""
    peak = peak_tflops(w, gpu)
    samples = epoch_samples(recipe, w.training)
    info = tables.DATASETS.get(recipe.data.dataset)
    if peak is None or samples is None or info is None or gpu.info is None:
        return None
    arch, flops_rate = w.arch, peak * 1e12 * KERNEL_MFU
    if w.training:
        per_sample = info.subword_tokens_per_sample if arch.encoder else info.lm_tokens_per_sample
        # FlexAttention's block mask skips the other samples of a packed row; sdpa attends to all
        flex = w.packing and w.attention == "flex_attention" and not arch.encoder
        span = min(per_sample, w.seq_len) if flex else w.seq_len
        forward = _forward_flops_per_token(w, span)
        if w.packing:
            steps = math.ceil(samples * min(per_sample, w.seq_len) / (w.micro_batch * w.seq_len))
        else:
            steps = math.ceil(samples / w.micro_batch)
        steps = math.ceil(steps / w.gpus)
        passes = (3 if w.method == "fft" else 2) + (1 if w.grad_ckpt else 0)
        flops = w.micro_batch * w.seq_len * forward * passes
        slowdown = 1 / INT4_MATMUL_EFFICIENCY if w.quant == "int4" else 1.0
        step = flops * slowdown / flops_rate + arch.layers * STEP_MS_PER_LAYER / 1000
        transfers, moved = host_transfers(w, gpu, steps)
        seconds = steps * step + transfers
        mfu = flops * steps / (peak * 1e12 * seconds)
        how = [
            f"{steps:,} micro-steps per GPU of {step:.2f} s ({passes}x forward FLOPs at "
            f"{KERNEL_MFU:.0%} of {peak:g} TFLOPS + {STEP_MS_PER_LAYER} ms per layer"
            + (f"; {w.attention} over {span:.0f}-token samples" if flex else "")
            + f"); model FLOPs utilization {mfu:.0%}"
        ]
        if moved:
            how.append(moved)
        return Timing(seconds, mfu, how, steps=math.ceil(steps / w.grad_accum))
    forward = _forward_flops_per_token(w, w.seq_len)
    b = w.eval_batch
    batches = math.ceil(samples / b)
    per_layer = (DECODE_MS_PER_LAYER[0] + DECODE_MS_PER_LAYER[1] * min(1.0, b / 64)) / 1000
    prefill_flops = forward * b * w.seq_len
    prefill = prefill_flops / flops_rate + arch.layers * per_layer
    if arch.encoder:
        return Timing(batches * prefill, prefill_flops / (peak * 1e12 * prefill), ["one forward per batch"])
    weights = estimate_inference(w).phases["decode"]["weights"] * w.gpus
    step = max(
        arch.layers * per_layer,
        weights / (gpu.info.bandwidth_tb_s * 1e12 * DECODE_BANDWIDTH_SHARE),
        2 * arch.computed_matmul_params * b / (peak * 1e12 * DECODE_FLOPS_SHARE),
    )
    step *= QUANT_DECODE_SLOWDOWN.get(w.quant, 1.0)
    seconds = batches * (prefill + w.new_tokens * step)
    flops = batches * (prefill_flops + w.new_tokens * 2 * arch.computed_matmul_params * b)
    decode = (
        f"{batches:,} batches x {w.new_tokens} decode steps of {step * 1000:.0f} ms (HF "
        f"generate's per-layer cost, or weights read at {DECODE_BANDWIDTH_SHARE:.0%} of "
        f"{gpu.info.bandwidth_tb_s:g} TB/s) + prefill"
    )
    return Timing(seconds, flops / (peak * 1e12 * seconds), [decode])
