"""Memory and fit planner: will a recipe fit its cluster's GPUs, and how long will an epoch take.

Pure functions over the recipe and the cluster profile: no torch, no network. A model's
architecture comes from its local config.json when the recipe points at one, else from the
built-in table in `launcher.plan_tables`.

The memory model follows what PyTorch's caching allocator counts (`max_memory_allocated`) at the
moments a training step peaks: the loss of the forward pass, the start of the backward pass, the
backward through a checkpointed layer, and the optimizer step; for generation, the prefill and the
last decode step. Framework overhead (CUDA context, NCCL and DeepSpeed buffers, fragmentation) is
added on top. Calibrated against shared/calibration/h200_memory.json; the model states under
DeepSpeed ZeRO are DeepSpeed's own estimators (`estimate_zero2_model_states_mem_needs`,
`estimate_zero3_model_states_mem_needs`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from launcher import plan_tables as tables
from launcher.errors import UserError, choices_text

if TYPE_CHECKING:
    from rich.console import RenderableType

    from launcher.cluster import ClusterProfile, GpuSpec
    from launcher.recipe import Recipe

GIB = 1024**3
Optimizer = Literal["foreach", "fused"]
Mode = Literal["autocast", "half", "fp32"]

CONTEXT_GIB = 0.6  # CUDA context + cuBLAS workspaces, outside the allocator's count
NCCL_GIB = 0.5  # NCCL communicator buffers when more than one GPU takes part
DEEPSPEED_GIB = 1.0  # DeepSpeed's reduce / all-gather buckets
FRAGMENTATION = 0.05  # caching-allocator fragmentation, share of the allocated peak
# A training micro-step: FLOPs at KERNEL_MFU of peak + STEP_MS_PER_LAYER per layer. Fitted to
# calibration/h200_throughput.json (1.5B on H200: 1,702 useful tokens/s padded 2x512 seed-style,
# 34,194 packed 4x4096, MFU 0.37).
KERNEL_MFU = 0.51
STEP_MS_PER_LAYER = 5.2
DECODE_MS_PER_LAYER = (0.9, 0.85)  # HF generate step: 0.9 ms/layer + 0.85 ms/layer at batch >= 64

ENCODERS = frozenset(
    {"bert", "roberta", "electra", "deberta", "deberta-v2", "xlm-roberta", "distilbert", "camembert", "mpnet"}
)
UNTIED = frozenset(
    {"llama", "llama4", "llama4_text", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "mistral", "mixtral"}
)
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
LORA_ALIASES = {
    "query": "q_proj",
    "key": "k_proj",
    "value": "v_proj",
    "dense": "o_proj",
    "w1": "gate_proj",
    "w3": "up_proj",
    "w2": "down_proj",
}
BREAKDOWN_KEYS = ("weights", "gradients", "optimizer", "activations", "logits", "kv_cache", "overhead")


# ----------------------------------------------------------------------------- architecture


@dataclass(frozen=True)
class Linear:
    """One kind of linear layer: `count` instances of fan_in x fan_out in the whole model."""

    name: str
    fan_in: int
    fan_out: int
    count: int
    quantizable: bool = True

    @property
    def params(self) -> int:
        return self.fan_in * self.fan_out * self.count


@dataclass(frozen=True)
class Arch:
    """The sizes the planner needs, from a config.json or the built-in table."""

    name: str
    source: str
    encoder: bool
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    linears: tuple[Linear, ...]
    other_params: int  # embeddings, norms, biases: never quantized
    embedding_params: int
    extra_params: int = 0  # e.g. a vision tower: held in memory, idle in a text forward pass
    tied: bool = False
    moe_layers: int = 0
    experts: int = 0
    top_k: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0

    @property
    def total_params(self) -> int:
        return sum(lin.params for lin in self.linears) + self.other_params + self.extra_params

    @property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers

    @property
    def head_params(self) -> int:
        """Parameters of the output matmul (the LM head, or a token classifier)."""
        return sum(lin.params for lin in self.linears if lin.name in ("lm_head", "classifier")) or (
            self.vocab * self.hidden if self.tied else 0
        )

    @property
    def active_matmul_params(self) -> int:
        """Matmul parameters one token passes through (routed experts: top-k of them)."""
        total = 0
        for lin in self.linears:
            if lin.name.startswith("expert_"):
                total += lin.fan_in * lin.fan_out * self.moe_layers * self.top_k
            else:
                total += lin.params
        return total + (self.vocab * self.hidden if self.tied and not self.encoder else 0)

    @property
    def active_params(self) -> int:
        return self.active_matmul_params + self.other_params

    @property
    def largest_layer_params(self) -> int:
        """The largest module DeepSpeed ZeRO-3 gathers at once: a block, the embedding or the head."""
        per_block = {}
        for lin in self.linears:
            if lin.name in ("lm_head", "classifier", "embed_project"):
                continue
            blocks = (
                self.moe_layers
                if lin.name.startswith(("expert_", "shared_", "router"))
                else (self.dense_layers if lin.name in MLP else self.layers)
            )
            kind = (
                "moe"
                if lin.name.startswith(("expert_", "shared_", "router"))
                else ("mlp" if lin.name in MLP else "attn")
            )
            per_block[kind] = per_block.get(kind, 0) + lin.params // max(blocks, 1)
        block = per_block.get("attn", 0) + max(per_block.get("mlp", 0), per_block.get("moe", 0))
        return max(block, self.embedding_params, self.head_params)

    def lora_params(self, targets: frozenset[str], r: int) -> int:
        return sum(
            r * (lin.fan_in + lin.fan_out) * lin.count
            for lin in self.linears
            if _base_name(lin.name) in targets
        )


def _base_name(name: str) -> str:
    return name.removeprefix("expert_").removeprefix("shared_")


def _get(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return default


def arch_from_config(cfg: dict[str, Any], name: str, source: str) -> Arch:
    """Parse a Hugging Face config.json (Qwen2/Llama/Mistral/Mixtral/Llama-4 MoE, BERT-style
    encoders). A missing required key is a UserError naming `source`."""
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    model_type = str(text.get("model_type") or cfg.get("model_type") or "")

    def need(*keys: str) -> int:
        value = _get(text, *keys)
        if value is None:
            raise UserError(
                f"{source}: config.json has no '{keys[0]}'; the planner needs "
                "vocab_size, hidden_size, num_hidden_layers, num_attention_heads"
            )
        return int(value)

    vocab = need("vocab_size")
    h = need("hidden_size", "n_embd", "d_model")
    layers = need("num_hidden_layers", "n_layer", "num_layers")
    heads = need("num_attention_heads", "n_head", "num_heads")
    inter = int(_get(text, "intermediate_size", "n_inner", "ffn_dim", default=4 * h))
    kv_heads = int(_get(text, "num_key_value_heads", default=heads))
    head_dim = int(_get(text, "head_dim", default=h // heads))
    tied = bool(
        _get(text, "tie_word_embeddings", default=cfg.get("tie_word_embeddings", model_type not in UNTIED))
    )
    if model_type in ENCODERS:
        return _encoder_arch(text, name, source, vocab, h, layers, heads, inter)

    hq, kvd = heads * head_dim, kv_heads * head_dim
    linears = [
        Linear("q_proj", h, hq, layers),
        Linear("k_proj", h, kvd, layers),
        Linear("v_proj", h, kvd, layers),
        Linear("o_proj", hq, h, layers),
    ]
    bias = bool(_get(text, "attention_bias", default=model_type.startswith("qwen2")))
    biases = layers * (hq + 2 * kvd) if bias else 0

    experts = int(_get(text, "num_local_experts", "num_experts", "n_routed_experts", default=0))
    moe_layers = top_k = expert_inter = shared_inter = 0
    dense_inter = inter
    if experts:
        top_k = int(_get(text, "num_experts_per_tok", default=2))
        llama4 = model_type.startswith("llama4")
        expert_inter = int(_get(text, "moe_intermediate_size", default=inter))
        shared_inter = int(_get(text, "shared_expert_intermediate_size", default=inter if llama4 else 0))
        step = int(_get(text, "interleave_moe_layer_step", "decoder_sparse_step", default=1))
        moe_layers = layers // step if step > 0 else 0
        moe_layers -= len(text.get("mlp_only_layers") or [])
        dense_inter = int(_get(text, "intermediate_size_mlp", default=inter)) if llama4 else inter
    dense = layers - moe_layers
    if dense:
        linears += [
            Linear("gate_proj", h, dense_inter, dense),
            Linear("up_proj", h, dense_inter, dense),
            Linear("down_proj", dense_inter, h, dense),
        ]
    if moe_layers:
        n = moe_layers * experts
        linears += [
            Linear("expert_gate_proj", h, expert_inter, n),
            Linear("expert_up_proj", h, expert_inter, n),
            Linear("expert_down_proj", expert_inter, h, n),
            Linear("router", h, experts, moe_layers, quantizable=False),
        ]
        if shared_inter:
            linears += [
                Linear("shared_gate_proj", h, shared_inter, moe_layers),
                Linear("shared_up_proj", h, shared_inter, moe_layers),
                Linear("shared_down_proj", shared_inter, h, moe_layers),
            ]
    if not tied:
        linears.append(Linear("lm_head", h, vocab, 1, quantizable=False))
    embedding = vocab * h
    norms = layers * 2 * h + h
    return Arch(
        name=name,
        source=source,
        encoder=False,
        vocab=vocab,
        hidden=h,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=dense_inter,
        linears=tuple(linears),
        other_params=embedding + norms + biases,
        embedding_params=embedding,
        extra_params=_vision_params(cfg, h),
        tied=tied,
        moe_layers=moe_layers,
        experts=experts,
        top_k=top_k,
        expert_intermediate=expert_inter,
        shared_intermediate=shared_inter,
    )


def _vision_params(cfg: dict[str, Any], text_hidden: int) -> int:
    vision = cfg.get("vision_config")
    if not isinstance(vision, dict) or "hidden_size" not in vision:
        return 0
    h, i = int(vision["hidden_size"]), int(vision.get("intermediate_size", 4 * vision["hidden_size"]))
    layers = int(vision.get("num_hidden_layers", 0))
    proj_in = int(vision.get("projector_input_dim", h))
    proj_out = int(vision.get("projector_output_dim", proj_in))
    out = int(vision.get("vision_output_dim", proj_out))
    return layers * (4 * h * h + 2 * h * i) + 4 * h * proj_in + proj_in * proj_out + out * text_hidden


def _encoder_arch(
    text: dict[str, Any], name: str, source: str, vocab: int, h: int, layers: int, heads: int, inter: int
) -> Arch:
    e = int(text.get("embedding_size") or h)
    positions = int(text.get("max_position_embeddings", 512))
    types = int(text.get("type_vocab_size", 2))
    linears = [
        Linear("q_proj", h, h, layers),
        Linear("k_proj", h, h, layers),
        Linear("v_proj", h, h, layers),
        Linear("o_proj", h, h, layers),
        Linear("up_proj", h, inter, layers),
        Linear("down_proj", inter, h, layers),
        Linear("classifier", h, tables.GMB_LABELS, 1, quantizable=False),
    ]
    if e != h:
        linears.append(Linear("embed_project", e, h, 1, quantizable=False))
    embedding = (vocab + positions + types) * e + 2 * e
    other = embedding + layers * (5 * h + inter + 4 * h) + tables.GMB_LABELS
    return Arch(
        name=name,
        source=source,
        encoder=True,
        vocab=vocab,
        hidden=h,
        layers=layers,
        heads=heads,
        kv_heads=heads,
        head_dim=h // heads,
        intermediate=inter,
        linears=tuple(linears),
        other_params=other,
        embedding_params=embedding,
    )


@lru_cache(maxsize=64)
def _read_config(path: str, mtime: float) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read the model's config.json: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: config.json is not a JSON object")
    return data


def _config_path(ref: str | None) -> Path | None:
    if not ref:
        return None
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path / "config.json"
    if path.is_file():
        return path
    return None


def resolve_arch(recipe: Recipe) -> Arch:
    """The recipe's architecture: local config.json (model.config, or model.name_or_path as a
    directory) first, then the built-in table; neither is a UserError naming the key."""
    name = recipe.model.name_or_path
    path = _config_path(recipe.model.config) or _config_path(name)
    if path is not None:
        return arch_from_config(_read_config(str(path), path.stat().st_mtime), name, str(path))
    if recipe.model.config:
        raise UserError(
            f"{recipe.source}: model.config: '{recipe.model.config}' is not a "
            "config.json or a directory holding one"
        )
    return _table_arch(name, recipe.source)


@lru_cache(maxsize=32)
def _table_arch_cached(name: str) -> Arch | None:
    found = tables.find_model(name)
    if found is None:
        return None
    return arch_from_config(found[1], found[0], "built-in table")


def _table_arch(name: str, source: str) -> Arch:
    arch = _table_arch_cached(name)
    if arch is None:
        raise UserError(
            f"{source}: model.name_or_path: '{name}' has no built-in architecture and no local "
            f"config.json, so its memory cannot be planned; known: "
            f"{choices_text(sorted(set(tables.MODELS)))}; or set model.config to a config.json"
        )
    return arch


# ----------------------------------------------------------------------------- the workload


@dataclass(frozen=True)
class Gpu:
    """What the plan knows of one GPU: capacity from the profile, speed from the table."""

    memory_gib: float | None
    bf16: bool
    info: tables.GpuInfo | None
    label: str


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
    lora_r: int
    lora_targets: frozenset[str]
    lora_dropout: float
    eval_batch: int
    new_tokens: int
    optimizer: Optimizer

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
    def trainable(self) -> int:
        if not self.training:
            return 0
        if self.method == "fft":
            return self.arch.total_params
        return self.arch.lora_params(self.lora_targets, self.lora_r)


@dataclass
class Estimate:
    """Per-GPU bytes by component at each phase of a step, and the CPU bytes offload needs."""

    phases: dict[str, dict[str, float]]
    cpu_bytes: float
    overhead_bytes: float = 0.0

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
    buffer_factor: float = 1.5,
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
        return quantized, other * 4, largest * cc
    return quantized + other * cc, 0.0, largest * cc


# ----------------------------------------------------------------------------- activations


def _needs_input(w: Workload, name: str) -> bool:
    """Whether a linear's input is saved for backward (its weight or its LoRA adapter trains)."""
    if w.method == "fft":
        return True
    return _base_name(name) in w.lora_targets and w.lora_dropout == 0


def _group_input(w: Workload, names: tuple[str, ...], fan_in: int) -> float:
    if w.mode == "autocast":  # every op casts its own copy of the fp32 input
        return sum(2 * fan_in for n in names if _needs_input(w, n))
    return w.cc * fan_in if any(_needs_input(w, n) for n in names) else 0.0


def _lora_extra(w: Workload, names: tuple[str, ...], fan_in: int) -> float:
    if w.method == "fft":
        return 0.0
    targeted = sum(1 for n in names if _base_name(n) in w.lora_targets)
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


def _layer_bytes(w: Workload, seq: int) -> tuple[float, float]:
    """(sum over layers, largest layer) of the bytes one token leaves saved for backward."""
    arch, cc, h = w.arch, w.cc, w.arch.hidden
    if arch.encoder:  # Korthikanti et al.: 34sbh + 5as^2b per layer, in 16-bit with dropout
        per = (34 * h + 5 * arch.heads * seq) * cc / 2
        return per * arch.layers, per
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
    moe = attn + _group_input(w, ("router",), h)
    moe += arch.top_k * (cc * h + _mlp_bytes(w, "expert_", arch.expert_intermediate))
    if arch.shared_intermediate:
        moe += _mlp_bytes(w, "shared_", arch.shared_intermediate)
    total = dense * arch.dense_layers + moe * arch.moe_layers
    return total, max(dense if arch.dense_layers else 0, moe if arch.moe_layers else 0)


def _head_bytes(w: Workload) -> tuple[float, float, float]:
    """Per token: (saved before the head, logits at the loss in forward, logits in its backward)."""
    arch, h = w.arch, w.arch.hidden
    outputs = tables.GMB_LABELS if arch.encoder else arch.vocab
    norm = 0 if arch.encoder else (8 * h if w.mode != "half" else (4 + w.cc) * h)
    before = norm + _group_input(w, ("lm_head",), h)
    forward = outputs * (8 if w.cc == 4 else w.cc + 8)  # logits, fp32 copy, log-softmax
    return before, forward, outputs * 12.0  # log-softmax, its gradient, the logits' gradient


# ----------------------------------------------------------------------------- estimates


def estimate_training(w: Workload) -> Estimate:
    """Per-GPU bytes at each phase of one training step."""
    arch, p = w.arch, w.arch.total_params
    t = w.trainable
    frozen, frozen32, dequant = _weight_bytes(w)
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
        weights, grads, opt = states["weights"], states["gradients"], states["optimizer"]
        copies_fwd = copies_saved = opt_tmp = 0.0
    elif w.method == "fft":
        weights, grads, opt, cpu = _fft_plain_states(w, p)
        cast = 0.0 if w.mode != "autocast" else 2.0 * (p - arch.embedding_params - arch.extra_params)
        copies_fwd = cast
        copies_saved = 2.0 * arch.head_params if w.grad_ckpt and cast else cast
        opt_tmp = 4.0 * t if w.optimizer == "foreach" and not w.deepspeed else 0.0
    else:
        weights = frozen + frozen32
        if w.deepspeed and w.zero_stage == 3:
            weights = weights / w.gpus + 2 * arch.largest_layer_params
        if w.deepspeed and w.zero_stage >= 2:
            states, cpu = zero_model_states(
                t, 0, w.zero_stage, w.gpus_per_node, w.nodes, w.offload_optimizer, w.offload_params
            )
            grads, opt = states["gradients"], states["optimizer"]
            weights += states["weights"]
        else:
            weights += 4.0 * t
            grads, opt = 4.0 * t, 8.0 * t
        # autocast casts fp32 adapters, and a head kept in fp32, to 16-bit copies saved for backward
        copies_fwd = copies_saved = 2.0 * t + (2.0 * arch.head_params if frozen32 else 0.0)
        opt_tmp = 4.0 * t if w.optimizer == "foreach" and not w.deepspeed else 0.0
    if w.gpus > 1 and not w.deepspeed:
        grads += 4.0 * t  # DDP's gradient buckets
    tokens = w.micro_batch * w.seq_len
    layers, one_layer = _layer_bytes(w, w.seq_len)
    before_head, logits_fwd, logits_bwd = _head_bytes(w)
    if w.grad_ckpt and not arch.encoder:
        residual = 4 if w.mode != "half" else w.cc
        saved = (residual * arch.hidden * arch.layers + before_head) * tokens
    else:
        saved = (layers + before_head) * tokens
    recompute = 2 * one_layer * tokens if w.grad_ckpt else 0.0
    grads_kept = grads if (w.grad_accum > 1 or w.deepspeed) else 0.0

    def phase(copies: float, g: float, acts: float, logits: float, o_tmp: float = 0.0) -> dict:
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
        "optimizer step": phase(0.0, grads, 0.0, 0.0, opt_tmp),
    }
    if w.grad_ckpt:
        phases["backward"] = phase(copies_saved, grads, saved + recompute, 0.0)
    return Estimate(phases, cpu)


def _fft_plain_states(w: Workload, p: int) -> tuple[float, float, float, float]:
    """fp32 weights, gradients and AdamW states, sharded by ZeRO when DeepSpeed runs in fp32."""
    if not w.deepspeed:
        return 4.0 * p, 4.0 * p, 8.0 * p, 0.0
    n, s = w.gpus, w.zero_stage
    weights = 4.0 * p / n if s == 3 else 4.0 * p
    grads = 4.0 * p / n if s >= 2 else 4.0 * p
    opt = 8.0 * p / n if s >= 1 else 8.0 * p
    cpu = 0.0
    if w.offload_optimizer:
        cpu, opt = opt * n / w.nodes * 1.5, 0.0
    if w.offload_params:
        cpu, weights = cpu + weights * n / w.nodes * 1.5, 0.0
    if s == 3:
        weights += 8.0 * w.arch.largest_layer_params
    return weights, grads, opt, cpu


def estimate_inference(w: Workload) -> Estimate:
    """Per-GPU bytes of batched generation: weights split over the GPUs (device_map), KV cache."""
    arch, cc, n = w.arch, w.cc, w.gpus
    frozen, frozen32, dequant = _weight_bytes(w)
    weights = (frozen + frozen32) / n + dequant
    b = w.eval_batch
    if arch.encoder:
        tokens = b * w.seq_len
        act = tokens * (cc * 3 * arch.intermediate + 2 * cc * arch.hidden)
        logits = tokens * tables.GMB_LABELS * 4.0
        return Estimate(
            {
                "forward": {
                    "weights": weights,
                    "activations": act,
                    "logits": logits,
                    "gradients": 0.0,
                    "optimizer": 0.0,
                    "kv_cache": 0.0,
                }
            },
            0.0,
        )
    kv_token = arch.layers * 2 * arch.kv_heads * arch.head_dim * cc
    prompt, total = w.seq_len, w.seq_len + w.new_tokens
    width = max(
        arch.intermediate if arch.dense_layers else 0,
        arch.top_k * arch.expert_intermediate + arch.shared_intermediate,
    )
    prefill = b * prompt * (3 * cc * width + 2 * cc * arch.hidden)
    logits = b * arch.vocab * (cc + 8.0)  # last position only; fp32 copy for the scores

    def phase(kv: float, act: float) -> dict[str, float]:
        return {
            "weights": weights,
            "gradients": 0.0,
            "optimizer": 0.0,
            "activations": act,
            "logits": logits,
            "kv_cache": kv,
        }

    return Estimate(
        {
            "prefill": phase(b * prompt * kv_token / n, prefill),
            "decode": phase(b * total * kv_token / n, b * total * kv_token / arch.layers),
        },
        0.0,
    )


def _overhead(w: Workload, allocated: float) -> float:
    extra = CONTEXT_GIB * GIB + FRAGMENTATION * allocated
    if w.gpus > 1:
        extra += NCCL_GIB * GIB
    if w.deepspeed and w.training:
        extra += DEEPSPEED_GIB * GIB
    return extra


# ----------------------------------------------------------------------------- time


def _peak_tflops(w: Workload, gpu: Gpu) -> float | None:
    if gpu.info is None:
        return None
    return gpu.info.tflops / 2 if w.precision == "fp32" else gpu.info.tflops  # TF32: half rate


def _epoch_samples(recipe: Recipe, training: bool) -> int | None:
    info = tables.DATASETS.get(recipe.data.dataset)
    if info is None:
        return None
    d = recipe.data
    if not training:
        n = info.samples if d.dataset == "ag_news" else round(info.samples * d.test_size)
        return min(n, d.max_eval_samples or n)
    n = info.samples * (1 - d.test_size)
    n = n - d.validation_size if d.validation_size >= 1 else n * (1 - d.validation_size)
    n = max(1, round(n))
    return min(n, d.max_train_samples or n)


def _forward_flops_per_token(w: Workload) -> float:
    arch = w.arch
    causal = 1.0 if arch.encoder else 0.5
    return 2 * arch.active_matmul_params + 4 * arch.layers * w.seq_len * causal * arch.heads * arch.head_dim


def estimate_time(w: Workload, recipe: Recipe, gpu: Gpu) -> tuple[float | None, float | None, str]:
    """(seconds per epoch or evaluation pass, model FLOPs utilization, how) on these GPUs.

    A training micro-step costs its FLOPs at KERNEL_MFU of peak plus STEP_MS_PER_LAYER per layer
    (launches, optimizer, trainer); a decode step costs the most of HF generate's per-layer time,
    reading the weights at 70% of HBM bandwidth, and its FLOPs at half of peak."""
    peak = _peak_tflops(w, gpu)
    samples = _epoch_samples(recipe, w.training)
    info = tables.DATASETS.get(recipe.data.dataset)
    if peak is None or samples is None or info is None or gpu.info is None:
        return None, None, ""
    arch, flops_rate = w.arch, peak * 1e12 * KERNEL_MFU
    forward = _forward_flops_per_token(w)
    if w.training:
        per_sample = info.subword_tokens_per_sample if arch.encoder else info.lm_tokens_per_sample
        if recipe.train.packing:
            steps = math.ceil(samples * min(per_sample, w.seq_len) / (w.micro_batch * w.seq_len))
        else:
            steps = math.ceil(samples / w.micro_batch)
        steps = math.ceil(steps / w.gpus)
        passes = (3 if w.method == "fft" else 2) + (1 if w.grad_ckpt else 0)
        flops = w.micro_batch * w.seq_len * forward * passes
        slowdown = 1 / 0.6 if w.quant == "int4" else 1.0  # 4-bit dequantization in every matmul
        step = flops * slowdown / flops_rate + arch.layers * STEP_MS_PER_LAYER / 1000
        seconds = steps * step
        mfu = flops / (peak * 1e12 * step)
        how = (
            f"{steps:,} micro-steps per GPU of {step:.2f} s ({passes}x forward FLOPs at "
            f"{KERNEL_MFU:.0%} of {peak:g} TFLOPS + {STEP_MS_PER_LAYER} ms per layer); "
            f"model FLOPs utilization {mfu:.0%}"
        )
        return seconds, mfu, how
    b = w.eval_batch
    batches = math.ceil(samples / b)
    per_layer = (DECODE_MS_PER_LAYER[0] + DECODE_MS_PER_LAYER[1] * min(1.0, b / 64)) / 1000
    prefill_flops = forward * b * w.seq_len
    prefill = prefill_flops / flops_rate + arch.layers * per_layer
    if arch.encoder:
        return batches * prefill, prefill_flops / (peak * 1e12 * prefill), "one forward per batch"
    weights = estimate_inference(w).phases["decode"]["weights"] * w.gpus
    step = max(
        arch.layers * per_layer,
        weights / (gpu.info.bandwidth_tb_s * 1e12 * 0.7),
        2 * arch.active_matmul_params * b / (peak * 1e12 * 0.5),
    )
    step *= {"int8": 4.0, "int4": 1.5}.get(w.quant, 1.0)  # bitsandbytes kernels
    seconds = batches * (prefill + w.new_tokens * step)
    flops = batches * (prefill_flops + w.new_tokens * 2 * arch.active_matmul_params * b)
    mfu = flops / (peak * 1e12 * seconds)
    how = (
        f"{batches:,} batches x {w.new_tokens} decode steps of {step * 1000:.0f} ms (HF "
        f"generate's per-layer cost, or weights read at 70% of {gpu.info.bandwidth_tb_s:g} "
        "TB/s) + prefill"
    )
    return seconds, mfu, how


# ----------------------------------------------------------------------------- the plan


@dataclass
class Fix:
    """A change that makes the recipe fit, checked by planning the changed recipe."""

    overrides: list[str]
    per_gpu_gib: float
    gpu_gib: float | None

    @property
    def text(self) -> str:
        return " ".join(f"--set {o}" for o in self.overrides)


@dataclass
class Plan:
    """The planner's answer for one recipe on one cluster. Memory in GiB per GPU."""

    recipe: str
    cluster: str
    job: str
    model: str
    fits: bool
    per_gpu_gib: float
    peak_allocated_gib: float  # what torch.cuda.max_memory_allocated would report
    gpu_gib: float | None
    margin_gib: float | None
    cpu_gib: float
    cpu_capacity_gib: float | None
    gpus: int
    gpu: str
    breakdown: dict[str, float]
    peak_phase: str
    params: int
    trainable_params: int
    time_per_epoch_s: float | None
    utilization: float | None
    peak_tflops: float | None
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: fits, per_gpu_gib, cpu_gib, breakdown and everything else."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 2)

        return {
            "recipe": self.recipe,
            "cluster": self.cluster,
            "job": self.job,
            "model": self.model,
            "fits": self.fits,
            "per_gpu_gib": r(self.per_gpu_gib),
            "peak_allocated_gib": r(self.peak_allocated_gib),
            "gpu_gib": r(self.gpu_gib),
            "margin_gib": r(self.margin_gib),
            "cpu_gib": r(self.cpu_gib),
            "cpu_capacity_gib": r(self.cpu_capacity_gib),
            "gpus": self.gpus,
            "gpu": self.gpu,
            "breakdown": {k: round(v, 3) for k, v in self.breakdown.items()},
            "peak_phase": self.peak_phase,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "time_per_epoch_s": None if self.time_per_epoch_s is None else round(self.time_per_epoch_s),
            "utilization": None if self.utilization is None else round(self.utilization, 4),
            "peak_tflops": self.peak_tflops,
            "assumptions": list(self.assumptions),
            "warnings": list(self.warnings),
            "suggestions": list(self.suggestions),
            "fixes": [{"set": f.overrides, "per_gpu_gib": r(f.per_gpu_gib)} for f in self.fixes],
        }


def _gpu(recipe: Recipe, spec: GpuSpec | None) -> Gpu:
    if spec is None:
        memory = recipe.resources.gpu_memory_gb
        info = tables.find_gpu(recipe.resources.gpu_type, memory)
        return Gpu(
            memory,
            info.bf16 if info else True,
            info,
            info.name if info else recipe.resources.gpu_type or "unknown GPU",
        )
    info = tables.find_gpu(spec.type, spec.memory_gb)
    return Gpu(spec.memory_gb, spec.bf16, info, info.name if info else spec.type or "GPU")


def _workload(recipe: Recipe, gpu: Gpu, optimizer: Optimizer, notes: list[str]) -> Workload:
    arch = resolve_arch(recipe)
    training = recipe.job in ("train", "token_classification")
    dtype = recipe.model.dtype
    if recipe.quantization.mode != "none" and recipe.quantization.compute_dtype != "auto":
        dtype = recipe.quantization.compute_dtype
    if dtype == "auto":
        dtype = "bf16" if gpu.bf16 else "fp16"
        notes.append(f"model.dtype auto: {dtype} on {gpu.label}")
    elif dtype == "bf16" and not gpu.bf16:
        notes.append(f"{gpu.label} has no bf16; planned as fp16, which needs the same memory")
    lora = recipe.lora
    targets: set[str] = set()
    if lora is not None:
        for t in lora.target_modules:
            if t in ("all-linear", "all_linear"):
                targets.update(ATTENTION + MLP)
            else:
                targets.add(LORA_ALIASES.get(t, t))
    unknown = sorted(targets - set(ATTENTION + MLP))
    if unknown and recipe.method != "fft":
        notes.append(f"lora.target_modules {', '.join(unknown)} not in the architecture; ignored")
    d, res = recipe.distributed, recipe.resources
    return Workload(
        arch=arch,
        training=training,
        method=recipe.method if training else "fft",
        precision=dtype,  # type: ignore[arg-type]
        quant=recipe.quantization.mode,
        double_quant=recipe.quantization.double_quant,
        deepspeed=d.strategy == "deepspeed",
        zero_stage=d.zero_stage,
        offload_optimizer=d.offload_optimizer != "none",
        offload_params=d.offload_params != "none",
        nodes=res.nodes,
        gpus_per_node=max(res.gpus_per_node, 1),
        micro_batch=recipe.train.micro_batch_size,
        seq_len=recipe.train.max_length,
        grad_accum=recipe.train.grad_accum,
        grad_ckpt=recipe.train.gradient_checkpointing,
        lora_r=lora.r if lora else 0,
        lora_targets=frozenset(targets),
        lora_dropout=lora.dropout if lora else 0.0,
        eval_batch=recipe.eval.batch_size,
        new_tokens=recipe.eval.max_new_tokens,
        optimizer=optimizer,
    )


def _assumptions(w: Workload, recipe_engine: str) -> list[str]:
    out = []
    if w.training:
        if w.method == "fft" and w.precision == "fp32":
            out.append("fp32 training: fp32 weights, gradients and AdamW states, fp32 activations")
        elif w.method == "fft" and w.deepspeed:
            out.append(
                f"DeepSpeed {w.precision} with fp32 master weights and AdamW; model states "
                f"as DeepSpeed's ZeRO estimators give them (stage {w.zero_stage})"
            )
        elif w.method == "fft":
            out.append(
                f"mixed precision: fp32 weights, gradients and AdamW states, forward and "
                f"backward under autocast {w.precision}"
            )
        else:
            base = {"int4": "NF4" + (" + double quant" if w.double_quant else ""), "int8": "int8"}.get(
                w.quant, w.precision
            )
            out.append(
                f"{w.method}: frozen base in {base}, LoRA r={w.lora_r} adapters and their "
                "AdamW states in fp32"
            )
            if w.quant != "none":
                out.append(
                    "non-quantized weights (embeddings, head, norms) kept in fp32, as peft's "
                    "prepare_model_for_kbit_training leaves them"
                )
        if not w.deepspeed:
            out.append(
                f"torch AdamW ({w.optimizer}): "
                + (
                    "a temporary fp32 copy of the trainable weights at the step"
                    if w.optimizer == "foreach"
                    else "no temporaries at the step"
                )
            )
        if not w.arch.encoder:
            out.append(
                f"sequences of train.max_length={w.seq_len} tokens; sdpa attention; "
                "full-vocabulary logits upcast to fp32 for the loss"
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
    if not w.training and recipe_engine == "vllm":
        out.append("eval.engine vllm reserves 90% of GPU memory up front; planned as HF generate")
    if w.arch.experts:
        out.append(
            f"MoE: {w.arch.experts} experts, top-{w.arch.top_k} routed per token; "
            + (
                "int4 applies to every expert (linearized experts)"
                if w.quant == "int4"
                else "all experts resident"
            )
        )
    out.append(f"architecture: {w.arch.name} ({w.arch.source})")
    return out


def _trivial(recipe: Recipe, profile: ClusterProfile, why: str) -> Plan:
    zero = dict.fromkeys(BREAKDOWN_KEYS, 0.0)
    gpu = profile.gpu if profile.gpu != "auto" else None
    capacity = gpu.memory_gb if gpu is not None else None
    return Plan(
        recipe=recipe.name,
        cluster=profile.name,
        job=recipe.job,
        model=recipe.model.name_or_path,
        fits=True,
        per_gpu_gib=0.0,
        peak_allocated_gib=0.0,
        gpu_gib=capacity,
        margin_gib=capacity,
        cpu_gib=0.0,
        cpu_capacity_gib=None,
        gpus=0,
        gpu="none",
        breakdown=zero,
        peak_phase="none",
        params=0,
        trainable_params=0,
        time_per_epoch_s=None,
        utilization=None,
        peak_tflops=None,
        assumptions=[why],
    )


def _cpu_capacity(recipe: Recipe, profile: ClusterProfile) -> float | None:
    caps = [
        x for x in (recipe.resources.mem_gb, profile.node.mem_gb if profile.node else None) if x is not None
    ]
    return min(caps) if caps else None


def _core(recipe: Recipe, profile: ClusterProfile, gpu: Gpu, optimizer: Optimizer) -> Plan:
    notes: list[str] = []
    w = _workload(recipe, gpu, optimizer, notes)
    est = estimate_training(w) if w.training else estimate_inference(w)
    allocated = est.peak_bytes
    overhead = _overhead(w, allocated)
    breakdown = {k: v / GIB for k, v in est.phases[est.peak_phase].items()}
    breakdown["overhead"] = overhead / GIB
    breakdown = {k: breakdown.get(k, 0.0) for k in BREAKDOWN_KEYS}
    per_gpu = (allocated + overhead) / GIB
    cpu_gib = est.cpu_bytes / GIB
    cpu_cap = _cpu_capacity(recipe, profile)
    warnings: list[str] = []
    fits = gpu.memory_gib is not None and per_gpu <= gpu.memory_gib
    if gpu.memory_gib is None:
        warnings.append(
            f"cluster '{profile.name}' reports no GPUs and the recipe sets no "
            "resources.gpu_memory_gb: no memory verdict possible"
        )
    if cpu_cap is not None and cpu_gib > cpu_cap:
        fits = False
        warnings.append(
            f"offload needs {cpu_gib:.0f} GiB of CPU memory per node, more than the {cpu_cap:g} available"
        )
    seconds, mfu, how = estimate_time(w, recipe, gpu)
    assumptions = _assumptions(w, recipe.eval.engine) + notes
    assumptions.append(
        f"overhead: {CONTEXT_GIB} GiB CUDA context, {FRAGMENTATION:.0%} "
        "fragmentation"
        + (", NCCL buffers" if w.gpus > 1 else "")
        + (", DeepSpeed buckets" if w.deepspeed and w.training else "")
    )
    if seconds is None:
        why = (
            "GPU type not in the built-in table"
            if gpu.info is None
            else f"dataset {recipe.data.dataset} not in the built-in table"
        )
        assumptions.append(f"no time estimate: {why}")
    else:
        assumptions.append(f"time: {how}")
        if w.training and w.offload_optimizer:
            assumptions.append("time excludes CPU offload transfers and the CPU optimizer step")
        total = seconds * recipe.train.epochs if w.training else seconds
        if total > recipe.resources.seconds:
            warnings.append(f"estimated {total / 3600:.1f} h exceeds resources.time {recipe.resources.time}")
    return Plan(
        recipe=recipe.name,
        cluster=profile.name,
        job=recipe.job,
        model=w.arch.name,
        fits=fits,
        per_gpu_gib=per_gpu,
        peak_allocated_gib=allocated / GIB,
        gpu_gib=gpu.memory_gib,
        margin_gib=None if gpu.memory_gib is None else gpu.memory_gib - per_gpu,
        cpu_gib=cpu_gib,
        cpu_capacity_gib=cpu_cap,
        gpus=w.gpus,
        gpu=gpu.label,
        breakdown=breakdown,
        peak_phase=est.peak_phase,
        params=w.arch.total_params,
        trainable_params=w.trainable,
        time_per_epoch_s=seconds,
        utilization=mfu,
        peak_tflops=_peak_tflops(w, gpu),
        assumptions=assumptions,
        warnings=warnings,
    )


def plan(recipe: Recipe, profile: ClusterProfile, *, optimizer: Optimizer = "foreach") -> Plan:
    """Plan `recipe` on `profile`: per-GPU memory, verdict, time per epoch, and when it does not
    fit, the smallest `--set` changes that do (each checked by planning it).

    `optimizer` is the torch AdamW implementation of non-DeepSpeed training (PyTorch's default,
    foreach, holds one fp32 temporary per trainable weight at the step; fused holds none).
    Raises UserError when the model's architecture is unknown.
    """
    if recipe.resources.gpus_per_node == 0:
        return _trivial(recipe, profile, f"job '{recipe.job}' runs on CPU: nothing to plan")
    if recipe.job in ("spacy", "classify", "smoke") or recipe.eval.engine == "openai":
        why = "an API" if recipe.eval.engine == "openai" else "no model the planner sizes"
        return _trivial(recipe, profile, f"job '{recipe.job}' uses {why}: nothing to plan")
    spec = profile.gpus  # detects this machine's GPUs for `gpu: auto`: ask once
    gpu = _gpu(recipe, spec)
    result = _core(recipe, profile, gpu, optimizer)
    if not result.fits and gpu.memory_gib is not None:
        per_node = spec.per_node if spec is not None else recipe.resources.gpus_per_node
        result.fixes = _fixes(recipe, profile, gpu, per_node, optimizer)
        result.suggestions = [f.text for f in result.fixes]
    return result


# ----------------------------------------------------------------------------- suggestions


def _ladders(recipe: Recipe, profile: ClusterProfile, per_node: int) -> list[list[list[str]]]:
    """Families of candidate changes, each ordered from the mildest to the strongest."""
    res, t, d = recipe.resources, recipe.train, recipe.distributed
    max_nodes = profile.limits.max_nodes if profile.backend != "local" else 1
    families: list[list[list[str]]] = []
    if recipe.job == "evaluate":
        b = recipe.eval.batch_size
        families.append([[f"eval.batch_size={b // 2**k}"] for k in range(1, 12) if b // 2**k >= 1])
        q = recipe.quantization.mode
        families.append(
            [
                [f"quantization.mode={m}"]
                for m in ("int8", "int4")
                if (q, m) in (("none", "int8"), ("none", "int4"), ("int8", "int4"))
            ]
        )
        families.append(
            [[f"resources.gpus_per_node={g}"] for g in (2, 4, 8, 16) if res.gpus_per_node < g <= per_node]
        )
        return families
    if not t.gradient_checkpointing:
        families.append([["train.gradient_checkpointing=true"]])
    mb = t.micro_batch_size
    families.append(
        [
            [f"train.micro_batch_size={mb // 2**k}", f"train.grad_accum={t.grad_accum * 2**k}"]
            for k in range(1, 12)
            if mb // 2**k >= 1
        ]
    )
    ds = ["distributed.strategy=deepspeed"] if d.strategy != "deepspeed" else []
    zero: list[list[str]] = []
    gpus = res.gpus
    if gpus > 1:
        zero += [[*ds, f"distributed.zero_stage={s}"] for s in (2, 3) if s > d.zero_stage]
    off = ["distributed.offload_optimizer=cpu"] if d.offload_optimizer == "none" else []
    if d.zero_stage <= 2 and off:
        zero.append([*ds, "distributed.zero_stage=2", *off])
    if d.zero_stage < 3 or off:
        zero.append([*ds, "distributed.zero_stage=3", *off])
    if d.offload_params == "none":
        everything = ["distributed.offload_optimizer=cpu", "distributed.offload_params=cpu"]
        zero.append([*ds, "distributed.zero_stage=3", *everything])
    families.append(zero)
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
    if recipe.method == "fft" and recipe.job == "train":
        families.append([["method=lora"], ["method=qlora", "quantization.mode=int4"]])
    elif recipe.method == "lora":
        families.append([["method=qlora", "quantization.mode=int4"]])
    return families


def _fixes(
    recipe: Recipe, profile: ClusterProfile, gpu: Gpu, per_node: int, optimizer: Optimizer
) -> list[Fix]:
    """The mildest fitting change of each family (checkpointing, micro-batch, ZeRO and offload,
    more GPUs, max_length, LoRA/QLoRA), retried with checkpointing on when none fits alone."""
    from launcher.recipe import Recipe as RecipeModel
    from launcher.schema import apply_overrides

    base = recipe.model_dump()

    def attempt(overrides: list[str]) -> Fix | None:
        data = apply_overrides(RecipeModel, json.loads(json.dumps(base)), overrides)
        try:
            changed = RecipeModel.model_validate(data)
        except ValueError:
            return None
        changed._source = recipe.source
        try:
            result = _core(changed, profile, gpu, optimizer)
        except UserError:
            return None
        return Fix(overrides, result.per_gpu_gib, result.gpu_gib) if result.fits else None

    ckpt = (
        []
        if recipe.train.gradient_checkpointing or recipe.job == "evaluate"
        else ["train.gradient_checkpointing=true"]
    )
    found: list[Fix] = []
    for family in _ladders(recipe, profile, per_node):
        fix = next((f for f in map(attempt, family) if f), None)
        if fix is None and ckpt and family and family[0] != ckpt:
            fix = next((f for f in (attempt(ckpt + c) for c in family) if f), None)
        if fix is not None and not any(set(f.overrides) <= set(fix.overrides) for f in found):
            found.append(fix)
    return found


# ----------------------------------------------------------------------------- rendering


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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
        what = "epoch" if plan.job != "evaluate" else "evaluation pass"
        parts.append(
            Text(
                f"time per {what}: ~{_duration(plan.time_per_epoch_s)} "
                f"(peak {plan.peak_tflops:g} TFLOPS, utilization "
                f"{(plan.utilization or 0):.0%})"
            )
        )
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


__all__ = [
    "Arch",
    "Fix",
    "Plan",
    "arch_from_config",
    "plan",
    "render_plan",
    "resolve_arch",
    "zero_model_states",
]
