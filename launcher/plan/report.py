"""The planner's answer (`Plan`), its JSON form, the assumptions it states, and its rich rendering."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from launcher.plan.fixes import Fix
from launcher.plan.workload import Workload

if TYPE_CHECKING:
    from rich.console import RenderableType


@dataclass
class Plan:
    """The planner's answer for one recipe on one cluster. Memory in GiB per GPU.

    `planner` is the job kind's planner model (training, generation, cpu, none); a plan of a cpu
    or none kind has gpus 0 and zero memory, and says why in `assumptions`."""

    recipe: str
    cluster: str
    job: str
    planner: str
    model: str
    fits: bool
    gpu_gib: float | None
    margin_gib: float | None
    gpus: int = 0
    gpu: str = "none"
    per_gpu_gib: float = 0.0
    peak_allocated_gib: float = 0.0  # what torch.cuda.max_memory_allocated would report
    cpu_gib: float = 0.0
    cpu_capacity_gib: float | None = None
    breakdown: dict[str, float] = field(default_factory=dict)
    peak_phase: str = "none"
    params: int = 0
    trainable_params: int = 0
    time_per_epoch_s: float | None = None
    epochs: float = 1.0
    gpu_hours: float | None = None
    """The whole recipe: epochs (one pass for an evaluation) x time per epoch x GPUs; 0 for a job
    that holds no GPU; None without a time estimate."""
    gpu_hours_max: float = 0.0
    """What the job may hold at most: resources.time x GPUs (a requeued start holds it again)."""
    utilization: float | None = None
    peak_tflops: float | None = None
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (floats to 3 decimals); fixes as {overrides, per_gpu_gib,
        gpu_gib}."""
        return {key: _rounded(value) for key, value in dataclasses.asdict(self).items()}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def assumptions(w: Workload, engine: str) -> list[str]:
    """What the estimate assumes of this workload, one sentence each."""
    out = []
    if w.training:
        if w.method == "fft" and w.precision == "fp32":
            out.append("fp32 training: fp32 weights, gradients and optimizer states, fp32 activations")
        elif w.method == "fft" and w.deepspeed:
            out.append(
                f"DeepSpeed {w.precision} with fp32 master weights and AdamW; model states "
                f"as DeepSpeed's ZeRO estimators give them (stage {w.zero_stage})"
            )
        elif w.method == "fft":
            out.append(
                f"mixed precision: fp32 weights, gradients and optimizer states, forward and "
                f"backward under autocast {w.precision}"
            )
        else:
            base = {"int4": "NF4" + (" + double quant" if w.double_quant else ""), "int8": "int8"}.get(
                w.quant, w.precision
            )
            out.append(f"{w.method}: frozen base in {base}, LoRA r={w.lora_r} adapters in fp32")
            if w.quant != "none" and w.head_16bit:
                out.append(
                    f"embeddings and head in {w.precision} (axolotl casts them back for its attention "
                    "kernels); other non-quantized weights in fp32 (peft's prepare_model_for_kbit_training)"
                )
            elif w.quant != "none":
                out.append(
                    "non-quantized weights (embeddings, head, norms) kept in fp32, as peft's "
                    "prepare_model_for_kbit_training leaves them"
                )
        out.append(f"train.optim {w.optim}: {w.optimizer.label}")
        if w.ckpt_offload:
            out.append("gradient checkpointing offloaded: checkpointed layer inputs in CPU memory")
        if not w.arch.encoder:
            loss = (
                "Cut Cross-Entropy: no logits stored"
                if w.fused_loss
                else "full-vocabulary logits upcast to fp32 for the loss"
            )
            out.append(
                f"sequences of train.max_length={w.seq_len} tokens; {w.attention} attention "
                f"(no s x s scores kept); {loss}"
            )
        if w.gpus > 1:
            out.append("data parallel over all GPUs; communication time not counted")
    else:
        out.append(
            f"generation: prompt of train.max_length={w.seq_len} tokens + "
            f"eval.max_new_tokens={w.new_tokens}, batch {w.eval_batch}, KV cache in "
            f"{w.precision}; logits of the last position only"
        )
        if w.gpus > 1:
            out.append(f"weights and KV cache split over {w.gpus} GPUs (device_map)")
        if engine == "vllm":
            out.append("eval.engine vllm reserves 90% of GPU memory up front; planned as HF generate")
    if w.arch.experts:
        if w.quant == "none":
            how = "all experts resident"
        elif w.arch.experts_linear:
            how = f"{w.quant} applies to every expert (linearized experts)"
        else:
            how = f"experts are 3-D parameters that bitsandbytes leaves in {w.precision}"
        dense = "; every expert computes every token (transformers' Llama-4 MoE)" if w.arch.dense_moe else ""
        out.append(f"MoE: {w.arch.experts} experts, top-{w.arch.top_k} routed per token; {how}{dense}")
    out.append(f"architecture: {w.arch.name} ({w.arch.source})")
    return out


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gpu_hours_text(plan: Plan) -> str:
    """`GPU-hours: ~N (3 epochs x 18 min x 8 GPUs), at most M (resources.time x GPUs)`."""
    if plan.gpu_hours == 0:
        return "GPU-hours: 0 (no GPU)"
    limit = f"at most {plan.gpu_hours_max:,.1f} (resources.time x GPUs)"
    if plan.gpu_hours is None or plan.time_per_epoch_s is None:
        return f"GPU-hours: no estimate; {limit}"
    what = f"{plan.epochs:.3g} epoch{'s' * (plan.epochs != 1)}" if plan.planner == "training" else "one pass"
    how = f"{what} x {_duration(plan.time_per_epoch_s)} x {plan.gpus} GPU{'s' * (plan.gpus != 1)}"
    return f"GPU-hours: ~{plan.gpu_hours:,.1f} ({how}); {limit}"


def render_plan(plan: Plan) -> RenderableType:
    """A rich renderable: breakdown table, verdict, time, assumptions and suggested fixes."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    heading = Text(f"plan: {plan.recipe} on {plan.cluster}", style="bold")
    if plan.gpus == 0:
        return Group(
            heading,
            Text("fits: no GPU memory to plan", style="bold green"),
            Text(gpu_hours_text(plan)),
            *(Text(f"  - {a}", style="dim") for a in plan.assumptions),
        )
    heading.append(
        f" ({plan.gpus} x {plan.gpu}, {plan.params / 1e9:.2f}B parameters"
        + (
            f", {plan.trainable_params / 1e6:,.1f}M trainable"
            if plan.trainable_params and plan.trainable_params < plan.params
            else ""
        )
        + ")",
        style="",
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("per GPU", style="cyan")
    table.add_column("GiB", justify="right")
    for key, value in plan.breakdown.items():
        table.add_row(key.replace("_", " "), f"{value:.2f}")
    table.add_row(Text("total", style="bold"), Text(f"{plan.per_gpu_gib:.2f}", style="bold"))
    if plan.gpu_gib is not None:
        table.add_row("GPU memory", f"{plan.gpu_gib:.2f}")
    if plan.cpu_gib:
        cap = f" of {plan.cpu_capacity_gib:g}" if plan.cpu_capacity_gib is not None else ""
        table.add_row("CPU per node", f"{plan.cpu_gib:.1f}{cap}")
    parts: list[Any] = [heading, table]
    if plan.fits:
        margin = f" with {plan.margin_gib:.1f} GiB to spare" if plan.margin_gib is not None else ""
        parts.append(Text(f"fits{margin} (peak: {plan.peak_phase})", style="bold green"))
    else:
        short = f", {-plan.margin_gib:.1f} GiB short" if plan.margin_gib is not None else ""
        parts.append(Text(f"does not fit{short} (peak: {plan.peak_phase})", style="bold red"))
    if plan.time_per_epoch_s is not None:
        what = "epoch" if plan.planner == "training" else "evaluation pass"
        parts.append(
            Text(
                f"time per {what}: ~{_duration(plan.time_per_epoch_s)} "
                f"(peak {plan.peak_tflops:g} TFLOPS, utilization "
                f"{(plan.utilization or 0):.0%})"
            )
        )
    parts.append(Text(gpu_hours_text(plan)))
    for note in plan.warnings:
        parts.append(Text(f"warning: {note}", style="yellow"))
    if plan.fixes:
        parts.append(Text("changes that fit:", style="bold"))
        for fix in plan.fixes:
            parts.append(Text(f"  {fix.text}   ({fix.per_gpu_gib:.1f} GiB per GPU)"))
    elif not plan.fits:
        parts.append(Text("no single change found that fits; combine several or use larger GPUs"))
    parts.append(Text("assumptions:", style="dim"))
    parts.extend(Text(f"  - {a}", style="dim") for a in plan.assumptions)
    return Group(*parts)
