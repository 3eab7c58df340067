"""Packed samples do not attend to each other, and the loss from the answer's logits alone is the
whole sequence's, on the tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from jobs.data.gmb import load_gmb
from jobs.prompts import ner_example
from jobs.sft import (
    IGNORE,
    PackedCollator,
    PackedDataset,
    TokenStats,
    answer_logits_only,
    computes_answer_logits_only,
    pack,
    tokenize,
)
from launcher.config.recipe import load_recipe


@pytest.fixture(scope="module")
def tokenizer():
    from jobs.modeling import load_tokenizer

    return load_tokenizer(load_recipe("tiny_ner"))


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    from jobs.tiny.models import resolve

    m = AutoModelForCausalLM.from_pretrained(resolve("tiny://qwen2-gmb"), attn_implementation="sdpa")
    m.config.use_cache = False
    return m.eval()


@pytest.fixture(scope="module")
def examples(tokenizer):
    return [ner_example(tokenizer, s.id, s.tokens, s.tags) for s in load_gmb()[:40]]


def test_packed_samples_do_not_attend_to_each_other(model, tokenizer, examples) -> None:
    samples = [tokenize(tokenizer, ex, 1024)[0] for ex in examples[:8]]
    bins = pack(samples, 700)
    assert any(len(b) > 1 for b in bins) and len({sum(len(s) for s in b) for b in bins}) > 1
    stats = TokenStats()
    batch = PackedCollator(tokenizer.pad_token_id, stats)([PackedDataset(bins)[i] for i in range(len(bins))])
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == len(bins)
    assert stats.real == sum(len(s) for s in samples)
    assert stats.real + stats.padding == batch["input_ids"].numel()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        for row, b in enumerate(bins):
            start = 0
            for s in b:
                alone = model(input_ids=torch.tensor([s.input_ids])).logits[0]
                torch.testing.assert_close(packed[row, start : start + len(s)], alone, atol=1e-4, rtol=1e-4)
                start += len(s)
    pads = batch["labels"][batch["input_ids"] == tokenizer.pad_token_id]
    assert (pads == IGNORE).all()


def test_the_answer_logits_alone_give_the_same_loss(model, tokenizer, examples) -> None:
    samples = [tokenize(tokenizer, ex, 1024)[0] for ex in examples[8:16]]
    bins = pack(samples, 700)
    batch = PackedCollator(tokenizer.pad_token_id, TokenStats())(
        [PackedDataset(bins)[i] for i in range(len(bins))]
    )
    learned = int((batch["labels"] != IGNORE).sum())
    assert computes_answer_logits_only(model)
    narrow = answer_logits_only(batch)
    assert narrow["logits_to_keep"].numel() < batch["input_ids"].shape[1] - 1
    assert int((narrow["shift_labels"] != IGNORE).sum()) == learned  # every learned token, once
    with torch.no_grad():
        whole = model(**batch, num_items_in_batch=learned)
        answer = model(**narrow, num_items_in_batch=learned)
    assert answer.logits.shape[1] == narrow["logits_to_keep"].numel()
    torch.testing.assert_close(answer.loss, whole.loss, atol=1e-6, rtol=1e-6)


def test_job_refuses_a_missing_data_file_without_importing_torch(tmp_path: Path) -> None:
    recipe = load_recipe("tiny_ner")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    data = recipe.model_dump(mode="json")
    data["data"]["path"] = str(tmp_path / "gone.csv")
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(data))
    probe = (
        "import sys, runpy; sys.argv=['jobs.train','--run-dir',sys.argv[1]];"
        "from jobs.train.job import main; code=main(); print('torch' in sys.modules); sys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", probe, str(run_dir)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "data.path" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout.strip() == "False"
