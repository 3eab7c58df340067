"""Per-GPU bytes of a training step or of generation, by component and phase.

The model follows what PyTorch's caching allocator counts (`max_memory_allocated`) at the moments
a training step peaks: the loss of the forward pass, the start of the backward pass, the backward
through a checkpointed layer, and the optimizer step; for generation, the prefill and the last
decode step. Calibrated against tests/fixtures/h200_memory.json; the model states under DeepSpeed
ZeRO are DeepSpeed's own estimators (`estimate_zero2_model_states_mem_needs`,
`estimate_zero3_model_states_mem_needs`). Framework overhead (launcher/plan/calibration.py) is
added on top.
"""

from __future__ import annotations

from dataclasses import dataclass

from launcher.plan import tables
from launcher.plan.calibration import (
    CONTEXT_GIB,
    DEEPSPEED_GIB,
    FRAGMENTATION,
    GIB,
    NCCL_GIB,
    OFFLOAD_CKPT_LAYERS_ON_GPU,
    ZERO_BUFFER_FACTOR,
)
from launcher.plan.workload import Workload

BREAKDOWN_KEYS = ("weights", "gradients", "optimizer", "activations", "logits", "kv_cache", "overhead")
ADAM_STATE_BYTES = 8.0  # fp32 m and v: what DeepSpeed's estimators assume


@dataclass
class Estimate:
    """Per-GPU bytes by component at each phase of a step, and the CPU bytes offload needs."""

    phases: dict[str, dict[str, float]]
    cpu_bytes: float

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=lambda p: sum(self.phases[p].values()))

    @property
    def peak_bytes(self) -> float:
        return sum(self.phases[self.peak_phase].values())


# ----------------------------------------------------------------------------- model states


def zero_model_states(
    params: int,
    largest_layer_params: int,
    stage: int,
    gpus_per_node: int,
    nodes: int,
    offload_optimizer: bool,
    offload_params: bool,
    buffer_factor: float = ZERO_BUFFER_FACTOR,
) -> tuple[dict[str, float], float]:
    """Mixed-precision AdamW model states under DeepSpeed: ({weights, gradients, optimizer}
    bytes per GPU, CPU bytes per node). Stages 2 and 3 are DeepSpeed's
    `estimate_zero2_model_states_mem_needs` / `estimate_zero3_model_states_mem_needs`
    (zero_init=True, additional_buffer_factor=1.5) split into components; stages 0 and 1 keep
    16-bit parameters and gradients whole and partition the fp32 states."""
    p, n = params, nodes * gpus_per_node
    if stage == 3:
        layer = 4 * largest_layer_params  # 16-bit parameter and gradient of the gathered layer
        half = {"weights": layer / 2, "gradients": layer / 2, "optimizer": 0.0}
        if offload_optimizer and offload_params:
            cpu = p * 18 / nodes * buffer_factor
        elif offload_optimizer:
            half["weights"] += int(2 * p / n)
            cpu = p * 16 / nodes * buffer_factor
        else:
            states = int(18 * p / n)  # DeepSpeed's 18 bytes: 16-bit + fp32 params, grads, Adam
            half["weights"] += states * 6 / 18
            half["gradients"] += states * 4 / 18
            half["optimizer"] += states * 8 / 18
            cpu = largest_layer_params * 4 * gpus_per_node * buffer_factor
        return half, float(int(cpu))
    if stage == 2 or (stage == 1 and offload_optimizer):
        if offload_optimizer:
            grads16 = 2 * p if stage == 1 else 0
            gpu = {"weights": 2.0 * p, "gradients": float(grads16), "optimizer": 0.0}
            return gpu, float(int(p * max(4 * n, 16) * buffer_factor))
        states = int(18 * p / n)
        gpu = {"weights": 2 * p + states * 4 / 18, "gradients": states * 6 / 18, "optimizer": states * 8 / 18}
        return gpu, float(int(p * 4 * gpus_per_node * buffer_factor))
    shards = n if stage == 1 else 1
    gpu = {
        "weights": 2 * p + 4 * p / shards,
        "gradients": 2 * p + 4 * p / shards,
        "optimizer": 8 * p / shards,
    }
    return gpu, float(int(p * 4 * gpus_per_node * buffer_factor))


def _weight_bytes(w: Workload) -> tuple[float, float, float]:
    """(frozen-or-16-bit weights, fp32 weights kept for autocast, largest quantized linear) bytes."""
    arch, cc = w.arch, w.cc
    if w.training and w.method == "fft":
        return 0.0, 0.0, 0.0
    quantized = other = 0.0
    largest = 0
    per_param = {"int4": 0.5 + (1 / 64 + 4 / (64 * 256) if w.double_quant else 4 / 64), "int8": 1.0}.get(
        w.quant
    )
    for lin in arch.linears:
        if per_param is not None and lin.quantizable:
            extra = 4 * lin.fan_out * lin.count if w.quant == "int8" else 0  # row scales
            quantized += lin.params * per_param + extra
            largest = max(largest, lin.fan_in * lin.fan_out)
        else:
            other += lin.params
    other += arch.other_params + arch.extra_params
    # peft's prepare_model_for_kbit_training keeps what is not quantized in fp32 for training
    if w.training and w.quant != "none":
        if w.head_16bit:
            half = arch.embedding_params + (0 if arch.tied else arch.head_params)
            return quantized + half * cc, (other - half) * 4, largest * cc
        return quantized, other * 4, largest * cc
    return quantized + other * cc, 0.0, largest * cc


# ----------------------------------------------------------------------------- activations


def _needs_input(w: Workload, name: str) -> bool:
    """Whether a linear's input is saved for backward (its weight or its LoRA adapter trains)."""
    if w.method == "fft":
        return True
    return name in w.lora_targets and w.lora_dropout == 0


def _group_input(w: Workload, names: tuple[str, ...], fan_in: int) -> float:
    if w.mode == "autocast":  # every op casts its own copy of the fp32 input
        return sum(2 * fan_in for n in names if _needs_input(w, n))
    return w.cc * fan_in if any(_needs_input(w, n) for n in names) else 0.0


def _lora_extra(w: Workload, names: tuple[str, ...], fan_in: int) -> float:
    if w.method == "fft":
        return 0.0
    targeted = sum(1 for n in names if n in w.lora_targets)
    dropout = (w.cc + 1) * fan_in if w.lora_dropout > 0 else 0
    return targeted * (w.cc * w.lora_r + dropout)


def _mlp_bytes(w: Workload, prefix: str, width: int) -> float:
    h = w.arch.hidden
    gate_up = (f"{prefix}gate_proj", f"{prefix}up_proj")
    down = (f"{prefix}down_proj",)
    return (
        _group_input(w, gate_up, h)
        + 3 * w.cc * width
        + _group_input(w, down, width)
        + _lora_extra(w, gate_up, h)
        + _lora_extra(w, down, width)
    )


def _layer_bytes(w: Workload, seq: int) -> tuple[float, float, float]:
    """Per token: (saved for backward over all layers, the largest layer's, the gradients that
    live at once while backward runs through that layer).

    Decoder attention (sdpa or flex) keeps q, k, v and its output, never the s x s scores. A
    dense MoE runs its experts one after another, so only one expert's gradients live at once."""
    arch, cc, h = w.arch, w.cc, w.arch.hidden
    if arch.encoder:  # Korthikanti et al.: 34sbh + 5as^2b per layer, in 16-bit with dropout
        per = (34 * h + 5 * arch.heads * seq) * cc / 2
        return per * arch.layers, per, per
    hq, kvd = arch.heads * arch.head_dim, arch.kv_heads * arch.head_dim
    norms = 2 * (8 * h if w.mode != "half" else (4 + cc) * h)
    attn = (
        norms
        + _group_input(w, ("q_proj", "k_proj", "v_proj"), h)
        + cc * (2 * hq + 2 * kvd)
        + _group_input(w, ("o_proj",), hq)
        + _lora_extra(w, ("q_proj", "k_proj", "v_proj"), h)
        + _lora_extra(w, ("o_proj",), hq)
    )
    dense = attn + _mlp_bytes(w, "", arch.intermediate)
    expert = cc * h + _mlp_bytes(w, "expert_", arch.expert_intermediate)
    shared = _mlp_bytes(w, "shared_", arch.shared_intermediate) if arch.shared_intermediate else 0.0
    moe_rest = attn + _group_input(w, ("router",), h) + shared
    moe = moe_rest + arch.experts_computed * expert
    total = dense * arch.dense_layers + moe * arch.moe_layers
    largest = max(dense if arch.dense_layers else 0, moe if arch.moe_layers else 0)
    grads = max(dense if arch.dense_layers else 0, moe_rest + expert if arch.moe_layers else 0)
    return total, largest, grads


def _head_bytes(w: Workload) -> tuple[float, float, float]:
    """Per token: (saved before the head, logits at the loss in forward, logits in its backward)."""
    arch, h = w.arch, w.arch.hidden
    outputs = tables.GMB_LABELS if arch.encoder else arch.vocab
    norm = 0 if arch.encoder else (8 * h if w.mode != "half" else (4 + w.cc) * h)
    before = norm + _group_input(w, ("lm_head",), h)
    if w.fused_loss:  # Cut Cross-Entropy: logits computed blockwise in SRAM, never stored
        return before, 0.0, 0.0
    forward = outputs * (8 if w.cc == 4 else w.cc + 8)  # logits, fp32 copy, log-softmax
    return before, forward, outputs * 12.0  # log-softmax, its gradient, the logits' gradient


def checkpoint_bytes(w: Workload) -> float:
    """Bytes of the checkpointed layer inputs of one micro-batch (what `offload` moves to the CPU)."""
    residual = 4 if w.mode != "half" else w.cc
    return float(residual * w.arch.hidden * w.arch.layers * w.micro_batch * w.seq_len)


# ----------------------------------------------------------------------------- estimates


def estimate_training(w: Workload) -> Estimate:
    """Per-GPU bytes at each phase of one training step."""
    arch, p = w.arch, w.arch.total_params
    t = w.trainable
    frozen, frozen32, dequant = _weight_bytes(w)
    opt_scale = w.optimizer.states / ADAM_STATE_BYTES
    step_tmp = 0.0 if w.deepspeed else w.optimizer.step * t
    cpu = 0.0
    if w.method == "fft" and w.deepspeed and w.precision != "fp32":
        states, cpu = zero_model_states(
            p,
            arch.largest_layer_params,
            w.zero_stage,
            w.gpus_per_node,
            w.nodes,
            w.offload_optimizer,
            w.offload_params,
        )
        weights, grads, opt = states["weights"], states["gradients"], states["optimizer"] * opt_scale
        copies_fwd = copies_saved = 0.0
    elif w.method == "fft":
        weights, grads, opt, cpu = _fft_plain_states(w, p)
        cast = 0.0 if w.mode != "autocast" else 2.0 * (p - arch.embedding_params - arch.extra_params)
        copies_fwd = cast
        copies_saved = 2.0 * arch.head_params if w.grad_ckpt and cast else cast
    else:
        weights = frozen + frozen32
        if w.deepspeed and w.zero_stage == 3:
            weights = weights / w.gpus + 2 * arch.largest_layer_params
        if w.deepspeed and w.zero_stage >= 2:
            states, cpu = zero_model_states(
                t, 0, w.zero_stage, w.gpus_per_node, w.nodes, w.offload_optimizer, w.offload_params
            )
            grads, opt = states["gradients"], states["optimizer"] * opt_scale
            weights += states["weights"]
        else:
            weights += 4.0 * t
            grads, opt = 4.0 * t, w.optimizer.states * t
        # autocast casts fp32 adapters, and a head kept in fp32, to 16-bit copies saved for backward
        head32 = frozen32 and not w.head_16bit
        copies_fwd = copies_saved = 2.0 * t + (2.0 * arch.head_params if head32 else 0.0)
    if w.gpus > 1 and not w.deepspeed:
        grads += 4.0 * t  # DDP's gradient buckets
    tokens = w.micro_batch * w.seq_len
    layers, one_layer, one_layer_grads = _layer_bytes(w, w.seq_len)
    before_head, logits_fwd, logits_bwd = _head_bytes(w)
    if w.grad_ckpt and not arch.encoder:
        kept = checkpoint_bytes(w)
        if w.ckpt_offload:
            cpu += kept
            kept *= OFFLOAD_CKPT_LAYERS_ON_GPU / arch.layers
        saved = kept + before_head * tokens
    else:
        saved = (layers + before_head) * tokens
    recompute = (one_layer + one_layer_grads) * tokens if w.grad_ckpt else 0.0
    grads_kept = grads if (w.grad_accum > 1 or w.deepspeed) else 0.0

    def phase(copies: float, g: float, acts: float, logits: float, o_tmp: float = 0.0) -> dict[str, float]:
        return {
            "weights": weights + copies + dequant,
            "gradients": g,
            "optimizer": opt + o_tmp,
            "activations": acts,
            "logits": logits * tokens,
            "kv_cache": 0.0,
        }

    phases = {
        "forward": phase(copies_fwd, grads_kept, saved, logits_fwd),
        "loss backward": phase(copies_saved, grads_kept, saved, logits_bwd),
        "optimizer step": phase(0.0, grads, 0.0, 0.0, step_tmp),
    }
    if w.grad_ckpt:
        phases["backward"] = phase(copies_saved, grads, saved + recompute, 0.0)
    return Estimate(phases, cpu)


def _fft_plain_states(w: Workload, p: int) -> tuple[float, float, float, float]:
    """fp32 weights, gradients and optimizer states, sharded by ZeRO when DeepSpeed runs in fp32."""
    opt_bytes = w.optimizer.states
    if not w.deepspeed:
        return 4.0 * p, 4.0 * p, opt_bytes * p, 0.0
    n, s = w.gpus, w.zero_stage
    weights = 4.0 * p / n if s == 3 else 4.0 * p
    grads = 4.0 * p / n if s >= 2 else 4.0 * p
    opt = opt_bytes * p / n if s >= 1 else opt_bytes * p
    cpu = 0.0
    if w.offload_optimizer:
        cpu, opt = opt * n / w.nodes * ZERO_BUFFER_FACTOR, 0.0
    if w.offload_params:
        cpu, weights = cpu + weights * n / w.nodes * ZERO_BUFFER_FACTOR, 0.0
    if s == 3:
        weights += 8.0 * w.arch.largest_layer_params
    return weights, grads, opt, cpu


def estimate_inference(w: Workload) -> Estimate:
    """Per-GPU bytes of batched generation: weights split over the GPUs (device_map), KV cache."""
    arch, cc, n = w.arch, w.cc, w.gpus
    frozen, frozen32, dequant = _weight_bytes(w)
    weights = (frozen + frozen32) / n + dequant
    b = w.eval_batch
    zero = {"gradients": 0.0, "optimizer": 0.0}
    if arch.encoder:
        tokens = b * w.seq_len
        act = tokens * (cc * 3 * arch.intermediate + 2 * cc * arch.hidden)
        logits = tokens * tables.GMB_LABELS * 4.0
        forward = {"weights": weights, "activations": act, "logits": logits, "kv_cache": 0.0, **zero}
        return Estimate({"forward": forward}, 0.0)
    kv_token = arch.layers * 2 * arch.kv_heads * arch.head_dim * cc
    prompt, total = w.seq_len, w.seq_len + w.new_tokens
    width = max(
        arch.intermediate if arch.dense_layers else 0,
        arch.experts_computed * arch.expert_intermediate + arch.shared_intermediate,
    )
    prefill = b * prompt * (3 * cc * width + 2 * cc * arch.hidden)
    logits = b * arch.vocab * (cc + 8.0)  # last position only; fp32 copy for the scores

    def phase(kv: float, act: float) -> dict[str, float]:
        return {"weights": weights, "activations": act, "logits": logits, "kv_cache": kv, **zero}

    return Estimate(
        {
            "prefill": phase(b * prompt * kv_token / n, prefill),
            "decode": phase(b * total * kv_token / n, b * total * kv_token / arch.layers),
        },
        0.0,
    )


def overhead_bytes(w: Workload, allocated: float) -> float:
    """What nvidia-smi shows beyond max_memory_allocated: context, fragmentation, NCCL, DeepSpeed."""
    extra = CONTEXT_GIB * GIB + FRAGMENTATION * allocated
    if w.gpus > 1:
        extra += NCCL_GIB * GIB
    if w.deepspeed and w.training:
        extra += DEEPSPEED_GIB * GIB
    return extra
