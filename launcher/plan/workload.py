"""What one planned run is: the architecture, the GPUs, and the recipe's settings the estimates use.

The optimizer table gives the bytes per trainable parameter of each `train.optim` (the HF Trainer
`optim` names the recipe allows), from each implementation's state layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from launcher.plan import tables
from launcher.plan.architecture import Arch, resolve_arch

if TYPE_CHECKING:
    from launcher.config.cluster import GpuSpec
    from launcher.config.recipe import Recipe

Mode = Literal["autocast", "half", "fp32"]


@dataclass(frozen=True)
class OptimizerInfo:
    """Bytes per trainable parameter: `states` held between steps, `step` temporaries at the step."""

    states: float
    step: float
    label: str


# bitsandbytes 8-bit states: one byte per element + an fp32 absmax per block of 2,048 (Dettmers
# et al. 2022, "8-bit Optimizers via Block-wise Quantization"); torchao's AdamW8bit / AdamW4bit:
# blocks of 256 / 128 with an fp32 scale each (torchao.optim, README). Two states (m, v) each.
_BNB8 = 2 * (1 + 4 / 2048)
OPTIMIZERS: dict[str, OptimizerInfo] = {  # keyed by launcher.config.sections.Optim
    "adamw_torch": OptimizerInfo(
        8.0, 4.0, "torch AdamW (foreach): fp32 states, an fp32 temporary per weight"
    ),
    "adamw_torch_fused": OptimizerInfo(8.0, 0.0, "torch AdamW (fused): fp32 states, no temporaries"),
    "adamw_torch_8bit": OptimizerInfo(2 * (1 + 4 / 256), 0.0, "torchao AdamW8bit: 8-bit states"),
    "adamw_torch_4bit": OptimizerInfo(2 * (0.5 + 4 / 128), 0.0, "torchao AdamW4bit: 4-bit states"),
    "adamw_8bit": OptimizerInfo(_BNB8, 0.0, "bitsandbytes AdamW8bit: 8-bit states"),
    "adamw_bnb_8bit": OptimizerInfo(_BNB8, 0.0, "bitsandbytes AdamW8bit: 8-bit states"),
    "paged_adamw_8bit": OptimizerInfo(_BNB8, 0.0, "bitsandbytes paged AdamW8bit: 8-bit states, all resident"),
}


@dataclass(frozen=True)
class Gpu:
    """What the plan knows of one GPU: capacity from the profile, speed from the table."""

    memory_gib: float | None
    bf16: bool
    info: tables.GpuInfo | None
    label: str


def gpu_of(recipe: Recipe, spec: GpuSpec | None) -> Gpu:
    """The GPU the recipe runs on: the profile's, else the recipe's resources.gpu_* keys."""
    if spec is None:
        memory = recipe.resources.gpu_memory_gb
        info = tables.find_gpu(recipe.resources.gpu_type, memory)
        label = info.name if info else recipe.resources.gpu_type or "unknown GPU"
        return Gpu(memory, info.bf16 if info else True, info, label)
    info = tables.find_gpu(spec.type, spec.memory_gb)
    return Gpu(spec.memory_gb, spec.bf16, info, info.name if info else spec.type or "GPU")


@dataclass(frozen=True)
class Workload:
    """Everything the memory and time estimates depend on, resolved from recipe and profile."""

    arch: Arch
    training: bool
    method: str
    precision: Literal["bf16", "fp16", "fp32"]
    quant: str
    double_quant: bool
    deepspeed: bool
    zero_stage: int
    offload_optimizer: bool
    offload_params: bool
    nodes: int
    gpus_per_node: int
    micro_batch: int
    seq_len: int
    grad_accum: int
    grad_ckpt: bool
    ckpt_offload: bool  # train.gradient_checkpointing: offload (checkpointed inputs on the CPU)
    lora_r: int
    lora_targets: frozenset[str]  # names of Arch.linears that carry an adapter
    lora_dropout: float
    eval_batch: int
    new_tokens: int
    optim: str
    attention: str
    packing: bool
    fused_loss: bool  # train.cut_cross_entropy: the loss never materializes the logits
    head_16bit: bool  # k-bit training keeps embeddings and head in the compute dtype (axolotl)

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def cc(self) -> int:
        """Bytes of one activation element."""
        return 4 if self.precision == "fp32" else 2

    @property
    def mode(self) -> Mode:
        if self.precision == "fp32":
            return "fp32"
        if self.training and self.method == "fft" and not self.deepspeed:
            return "autocast"
        return "half"

    @property
    def optimizer(self) -> OptimizerInfo:
        return OPTIMIZERS[self.optim]

    @property
    def trainable(self) -> int:
        if not self.training:
            return 0
        if self.method == "fft":
            return self.arch.total_params
        return self.arch.lora_params(self.lora_targets, self.lora_r)


def attention_of(recipe: Recipe, training: bool) -> str:
    """The attention the job runs (jobs/modeling.py's rule): `auto` is flex_attention for packed
    training on a GPU, else sdpa."""
    choice = recipe.model.attn_implementation
    if choice != "auto":
        return choice
    return "flex_attention" if training and recipe.train.packing else "sdpa"


def workload(recipe: Recipe, gpu: Gpu, training: bool, notes: list[str]) -> Workload:
    """The recipe's run on `gpu`; what the planner had to decide for it is appended to `notes`."""
    arch = resolve_arch(recipe)
    dtype = recipe.model.dtype
    if recipe.quantization.mode != "none" and recipe.quantization.compute_dtype != "auto":
        dtype = recipe.quantization.compute_dtype
    if dtype == "auto":
        dtype = "bf16" if gpu.bf16 else "fp16"
        notes.append(f"model.dtype auto: {dtype} on {gpu.label}")
    elif dtype == "bf16" and not gpu.bf16:
        notes.append(f"{gpu.label} has no bf16; planned as fp16, which needs the same memory")
    lora = recipe.lora
    targets: frozenset[str] = frozenset()
    if lora is not None and recipe.method != "fft":
        targets, unmatched = arch.lora_targets(lora.target_modules)
        if unmatched:
            notes.append(f"lora.target_modules {', '.join(unmatched)} match no linear layer of {arch.name}")
    d, res, t = recipe.distributed, recipe.resources, recipe.train
    attention = attention_of(recipe, training)
    return Workload(
        arch=arch,
        training=training,
        method=recipe.method if training else "fft",
        precision=dtype,
        quant=recipe.quantization.mode,
        double_quant=recipe.quantization.double_quant,
        deepspeed=d.strategy == "deepspeed",
        zero_stage=d.zero_stage,
        offload_optimizer=d.offload_optimizer != "none",
        offload_params=d.offload_params != "none",
        nodes=res.nodes,
        gpus_per_node=max(res.gpus_per_node, 1),
        micro_batch=t.micro_batch_size,
        seq_len=t.max_length,
        grad_accum=t.grad_accum,
        grad_ckpt=bool(t.gradient_checkpointing),
        ckpt_offload=t.gradient_checkpointing == "offload",
        lora_r=lora.r if lora else 0,
        lora_targets=targets,
        lora_dropout=lora.dropout if lora else 0.0,
        eval_batch=recipe.eval.batch_size,
        new_tokens=recipe.eval.max_new_tokens,
        optim=t.optim,
        attention=attention,
        packing=t.packing,
        fused_loss=t.cut_cross_entropy,
        # axolotl casts embeddings, head and norms back from peft's fp32 for flash/flex attention
        # and for CCE (axolotl/loaders/model.py, _convert_embedding_modules_dtype)
        head_16bit=recipe.engine == "axolotl"
        and (t.cut_cross_entropy or attention in ("flex_attention", "flash_attention_2")),
    )
