"""Built-in tables for the planner: GPUs, the research's models (as config.json keys), datasets.

Pure data, no imports beyond the standard library. Published figures: GPU peaks from the vendors'
datasheets, model sizes from each model's config.json on the Hugging Face hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuInfo:
    """One GPU model. `tflops`: peak dense bf16 (fp16 where bf16 is missing) tensor-core TFLOPS
    with fp32 accumulation, as PyTorch runs its matmuls; `memory_gib` as nvidia-smi reports it."""

    key: str
    name: str
    memory_gib: float
    bf16: bool
    tflops: float
    bandwidth_tb_s: float
    pcie_gen: int  # the host link (x16): offload traffic runs at calibration.PCIE_GB_S[pcie_gen]


# fmt: off
GPUS: dict[str, GpuInfo] = {
    g.key: g
    for g in (
        # GeForce cards run fp16 with fp32 accumulation at half their fp16-accumulate rate.
        GpuInfo("rtx2080ti", "NVIDIA GeForce RTX 2080 Ti", 11.0, False, 53.8, 0.616, 3),
        GpuInfo("rtx4090", "NVIDIA GeForce RTX 4090", 24.0, True, 165.2, 1.008, 4),
        GpuInfo("t4", "NVIDIA T4", 15.0, False, 65.0, 0.320, 3),
        GpuInfo("v100", "NVIDIA V100 32GB", 32.0, False, 125.0, 0.900, 3),
        GpuInfo("a100-40gb", "NVIDIA A100 40GB", 40.0, True, 312.0, 1.555, 4),
        GpuInfo("a100-80gb", "NVIDIA A100 80GB", 80.0, True, 312.0, 2.039, 4),
        GpuInfo("a800", "NVIDIA A800 80GB", 80.0, True, 312.0, 2.039, 4),
        GpuInfo("a800-40gb", "NVIDIA A800 40GB", 40.0, True, 312.0, 1.555, 4),
        GpuInfo("l40s", "NVIDIA L40S", 45.0, True, 362.0, 0.864, 4),
        GpuInfo("h100", "NVIDIA H100 SXM 80GB", 79.6, True, 989.4, 3.35, 5),
        GpuInfo("h100-pcie", "NVIDIA H100 PCIe 80GB", 79.6, True, 756.0, 2.0, 5),
        GpuInfo("h200", "NVIDIA H200 141GB", 140.4, True, 989.4, 4.8, 5),
    )
}
# fmt: on


def _norm(text: str) -> str:
    text = text.lower()
    for word in ("nvidia", "geforce", "tesla", "sxm4", "sxm5", "sxm"):
        text = text.replace(word, "")
    return re.sub(r"[^a-z0-9]", "", text)


def find_gpu(gpu_type: str | None, memory_gb: float | None = None) -> GpuInfo | None:
    """The table entry for a profile's `gpu.type` (a key or an nvidia-smi name); None if unknown.

    A100 and A800 come in 40 and 80 GB: the profile's memory picks the variant.
    """
    if not gpu_type:
        return None
    n = _norm(gpu_type)
    big = memory_gb is None or memory_gb >= 60 or "80g" in n
    if "2080ti" in n:
        return GPUS["rtx2080ti"]
    if "4090" in n:
        return GPUS["rtx4090"]
    if "a100" in n:
        return GPUS["a100-80gb" if big else "a100-40gb"]
    if "a800" in n:
        return GPUS["a800" if big else "a800-40gb"]
    if "h100" in n:
        return GPUS["h100-pcie" if "pcie" in n or n.endswith("nvl") else "h100"]
    if "h200" in n:
        return GPUS["h200"]
    if "l40s" in n:
        return GPUS["l40s"]
    if "v100" in n:
        return GPUS["v100"]
    if n == "t4":
        return GPUS["t4"]
    return None


# fmt: off
# Architectures in config.json form, read by the same parser as a local config.json.
# The two DeepSeek distills are exactly tests/fixtures/h200_memory.json's `architectures`.
_QWEN2_1_5B: dict[str, Any] = {
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "tie_word_embeddings": False,
}
_QWEN2_7B: dict[str, Any] = {
    "model_type": "qwen2",
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "tie_word_embeddings": False,
}
# Llama-4-Scout-17B-16E (meta-llama/Llama-4-Scout-17B-16E, config.json): every one of the 48
# layers is MoE (interleave_moe_layer_step 1) with 16 routed experts (top-1) of intermediate 8192
# plus one shared expert of the same width (transformers' Llama4TextMoe builds it from
# intermediate_size); intermediate_size_mlp 16384 would size dense layers, of which Scout has none.
# The text model is 107.8B parameters; the vision tower and projector bring it to ~109B.
# In the hub checkpoint each layer's experts are two 3-D parameters (gate_up_proj, down_proj)
# that bitsandbytes does not quantize; axolotl's linearized copy stores them as nn.Linear, which
# NF4 quantizes (`planner_linearized_experts`, a key of this table only).
_LLAMA4_SCOUT: dict[str, Any] = {
    "model_type": "llama4",
    "tie_word_embeddings": False,
    "text_config": {
        "model_type": "llama4_text",
        "vocab_size": 202048,
        "hidden_size": 5120,
        "intermediate_size": 8192,
        "intermediate_size_mlp": 16384,
        "num_hidden_layers": 48,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "num_local_experts": 16,
        "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 1,
        "attention_bias": False,
    },
    "vision_config": {
        "hidden_size": 1408,
        "intermediate_size": 5632,
        "num_hidden_layers": 34,
        "projector_input_dim": 4096,
        "projector_output_dim": 4096,
        "vision_output_dim": 4096,
    },
}
_LLAMA4_SCOUT_LINEARIZED: dict[str, Any] = {**_LLAMA4_SCOUT, "planner_linearized_experts": True}
LINEARIZED_SCOUT = "axolotl-quants/Llama-4-Scout-17B-16E-Linearized-bnb-nf4-bf16"
_ELECTRA_BASE: dict[str, Any] = {  # google/electra-base-discriminator, config.json
    "model_type": "electra",
    "vocab_size": 30522,
    "hidden_size": 768,
    "embedding_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
# numind/NuNER-v2.0 is a RoBERTa-base encoder (its config.json: roberta-base's sizes).
_ROBERTA_BASE: dict[str, Any] = {
    "model_type": "roberta",
    "vocab_size": 50265,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
}
# sentence-transformers/all-MiniLM-L6-v2, config.json: a 6-layer BERT of hidden 384.
_MINILM_L6: dict[str, Any] = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 384,
    "intermediate_size": 1536,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}

# jobs/tiny/models.py's CPU-sized stand-ins (its SIZES["qwen2-gmb"]; BPE vocabulary of 2,048) and the
# tiny encoders of the token-classification job (hidden 64, 2 layers, 2 heads, vocabulary ~2,000).
# A built tiny model's own config.json, in the cache, is read first (architecture.resolve_arch).
_TINY_QWEN2: dict[str, Any] = {
    "model_type": "qwen2", "vocab_size": 2048, "hidden_size": 64, "intermediate_size": 192,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "tie_word_embeddings": True,
}
_TINY_ENCODER: dict[str, Any] = {
    "vocab_size": 2000, "hidden_size": 64, "embedding_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 2,
}

MODELS: dict[str, dict[str, Any]] = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": _QWEN2_1_5B,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": _QWEN2_7B,
    "meta-llama/Llama-4-Scout-17B-16E": _LLAMA4_SCOUT,
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": _LLAMA4_SCOUT,
    LINEARIZED_SCOUT: _LLAMA4_SCOUT_LINEARIZED,
    "google/electra-base-discriminator": _ELECTRA_BASE,
    "numind/NuNER-v2.0": _ROBERTA_BASE,
    "sentence-transformers/all-MiniLM-L6-v2": _MINILM_L6,
    "tiny://qwen2-gmb": _TINY_QWEN2,
    "tiny://electra-gmb": {"model_type": "electra", **_TINY_ENCODER, "max_position_embeddings": 512},
    "tiny://roberta-gmb": {"model_type": "roberta", **_TINY_ENCODER, "max_position_embeddings": 514,
                           "type_vocab_size": 1},
}
# fmt: on
# Checkpoints whose experts are linear layers, for hub names whose experts are 3-D parameters.
LINEARIZED: dict[str, str] = {
    "meta-llama/Llama-4-Scout-17B-16E": LINEARIZED_SCOUT,
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": LINEARIZED_SCOUT,
}


def find_model(name: str) -> tuple[str, dict[str, Any]] | None:
    """(hub name, config) for a hub name or its last component, case-insensitive; else None."""
    wanted = name.strip().rstrip("/").lower()
    for hub, config in MODELS.items():
        if wanted in (hub.lower(), hub.lower().rsplit("/", 1)[1]):
            return hub, config
    return None


@dataclass(frozen=True)
class DatasetInfo:
    """What the time estimate needs of a dataset."""

    samples: int
    lm_tokens_per_sample: float  # prompt + JSON answer, as the generative recipes format it
    subword_tokens_per_sample: float  # one sentence, for encoder token classification


DATASETS: dict[str, DatasetInfo] = {
    # 47,959 GMB sentences of 21.86 words on average; generative samples are 80-200 tokens,
    # mean 139.9 (tests/fixtures/h200_throughput.json); ~1.4 subwords per word.
    "gmb": DatasetInfo(47959, 140.0, 31.0),
    "ag_news": DatasetInfo(7600, 120.0, 60.0),
}

GMB_LABELS = 17  # IOB2 tags: O plus B-/I- of 8 entity types
