"""The spaCy job's pure parts, with the real pinned en_core_web_sm: GMB docs, the research's token
level by hand, strict scores equal seqeval, pipeline names resolve to the pinned packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.data.gmb import Sentence
from launcher.errors import UserError
from launcher.kinds.spacy import PIPELINES, resolve


def test_docs_carry_gmb_tokens_and_tags_exactly() -> None:
    import spacy

    from jobs.spacy.job import clean_tags, doc_tags, gmb_doc

    vocab = spacy.blank("en").vocab
    tokens = ["Mr.", "Blair", "visited", "New", "York", "on", "Monday", "."]
    tags = ["B-per", "I-per", "O", "B-geo", "I-geo", "O", "B-tim", "O"]
    doc = gmb_doc(vocab, tokens, tags)
    assert [t.text for t in doc] == tokens
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "per"), (3, 5, "geo"), (6, 7, "tim")]
    assert doc_tags(doc) == tags
    assert clean_tags(["I-geo", "O", "B-org", "I-per"]) == ["O", "O", "B-org", "O"]  # seqeval strict
    assert gmb_doc(vocab, tokens).ents == ()


def test_research_token_level_by_hand() -> None:
    from jobs.spacy.job import score_tags
    from launcher.scoring.token_level import bio_token_prf

    gold = ["B-per", "I-per", "O", "B-geo"]
    pred = ["B-per", "B-per", "B-org", "O"]
    # word 0 tp; word 1 B-per vs I-per: fp + fn; word 2 fp; word 3 fn
    assert bio_token_prf([gold], [pred]) == {
        "precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3, "tp": 1, "fp": 2, "fn": 2,
    }  # fmt: skip
    sentence = Sentence(1, ["Tony", "Blair", "in", "Paris"], gold)
    metrics = score_tags([sentence], [pred])
    strict = metrics["strict"]  # gold: per 0-2, geo 3-4; predicted: per 0-1, per 1-2, org 2-3
    assert (strict["tp"], strict["fp"], strict["fn"]) == (0, 3, 2)
    assert metrics["token_bio"]["tp"] == 1 and metrics["sentences"] == 1


def test_strict_scores_equal_seqeval() -> None:
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from jobs.spacy.job import score_tags

    gold = [["B-per", "I-per", "O", "B-geo"], ["B-tim", "O", "B-org", "I-org"]]
    pred = [["B-per", "I-per", "O", "O"], ["B-tim", "O", "B-org", "O"]]
    sentences = [Sentence(i, ["w"] * 4, g) for i, g in enumerate(gold)]
    ours = score_tags(sentences, pred)["strict"]["f1"]
    assert ours == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2))


def test_pipeline_names_resolve_to_the_pinned_packages(tmp_path: Path) -> None:
    assert list(PIPELINES) == ["en_core_web_sm", "en_core_web_md", "en_core_web_lg"]
    for name in ("en_core_web_sm", "en_core_web_md"):
        found = Path(resolve(name))
        assert json.loads((found / "meta.json").read_text())["version"] == "3.8.0"
    with pytest.raises(UserError, match="python -m spacy download en_core_web_lg"):
        resolve("en_core_web_lg")
    with pytest.raises(UserError, match="did you mean 'en_core_web_sm'"):
        resolve("en_core_web_smm")
    with pytest.raises(UserError, match="not a spaCy pipeline directory"):
        resolve(str(tmp_path))
