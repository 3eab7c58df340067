"""The NER fine-tuning job's pure parts: answer-only loss, the chat template, padding, first-fit
packing, the DeepSpeed configs."""

from __future__ import annotations

import pytest

from jobs.data.gmb import load_gmb
from jobs.prompts import ner_example
from jobs.sft import IGNORE, PadCollator, TokenStats, pack, tokenize
from launcher.config.recipe import load_recipe
from launcher.kinds.deepspeed import deepspeed_config


@pytest.fixture(scope="module")
def tokenizer():
    from jobs.modeling import load_tokenizer

    return load_tokenizer(load_recipe("tiny_ner"))


@pytest.fixture(scope="module")
def examples(tokenizer):
    return [ner_example(tokenizer, s.id, s.tokens, s.tags) for s in load_gmb()[:40]]


def test_loss_only_on_the_answer(tokenizer, examples) -> None:
    for ex in examples:
        sample, cut = tokenize(tokenizer, ex, 1024)
        assert not cut
        prompt_len = len(tokenizer(ex.prompt, add_special_tokens=False)["input_ids"])
        assert sample.labels[:prompt_len] == [IGNORE] * prompt_len
        learned = sample.labels[prompt_len:]
        assert IGNORE not in learned
        assert learned == sample.input_ids[prompt_len:]
        assert learned[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(learned[:-1]) == ex.answer
        assert ex.answer.startswith('{"entities": [')


def test_chat_template_is_used(tokenizer, examples) -> None:
    assert examples[0].prompt.startswith("<|im_start|>user\n")
    assert examples[0].prompt.endswith("<|im_start|>assistant\n")


def test_padding_is_masked(tokenizer, examples) -> None:
    samples = [tokenize(tokenizer, ex, 1024)[0] for ex in examples[:4]]
    stats = TokenStats()
    batch = PadCollator(tokenizer.pad_token_id, stats)(
        [{"input_ids": s.input_ids, "labels": s.labels} for s in samples]
    )
    mask = batch["attention_mask"].bool()
    assert (batch["labels"][~mask] == IGNORE).all()
    assert stats.real == sum(len(s) for s in samples)
    assert stats.real + stats.padding == batch["input_ids"].numel()


def test_first_fit_packing() -> None:
    from jobs.sft import Sample

    sizes = [300, 200, 120, 90, 60, 500, 12, 250]
    samples = [Sample([1] * n, [1] * n) for n in sizes]
    bins = pack(samples, 512)
    assert sorted(len(s) for b in bins for s in b) == sorted(sizes)
    assert all(sum(len(s) for s in b) <= 512 for b in bins)
    assert [[len(s) for s in b] for b in bins] == [[500, 12], [300, 200], [250, 120, 90], [60]]
    assert [[len(s) for s in b] for b in bins] == [[len(s) for s in b] for b in pack(samples, 512)]


def test_deepspeed_configs() -> None:
    z3 = deepspeed_config(load_recipe("ds7b_fft"))["zero_optimization"]
    assert z3["stage"] == 3
    assert z3["offload_optimizer"]["device"] == z3["offload_param"]["device"] == "cpu"
    assert z3["stage3_gather_16bit_weights_on_model_save"] is True
    z1 = deepspeed_config(load_recipe("ds1.5b_fft"))
    assert z1["zero_optimization"]["stage"] == 1 and "offload_param" not in z1["zero_optimization"]
    assert z1["train_micro_batch_size_per_gpu"] == "auto" and z1["fp16"]["enabled"] == "auto"
