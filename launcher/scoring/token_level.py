"""Scoring of models that predict one IOB2 tag per word (spaCy, token classifiers).

Torch-free; the baseline jobs and `launch score` both use it. The metrics are the generative
runs' (`launcher.scoring.metrics.score`: strict entity P/R/F1 equal to seqeval's strict IOB2
mode, type-level token P/R/F1, sentence exact match, counts) plus `token_bio`, the token level
the research reported for its ELECTRA and NuNER baselines, so those published numbers sit beside
ours like for like.

A tagged ``predictions.jsonl`` row is ``{"id", "tokens", "gold_tags", "pred_tags"}`` (one tag per
token each); extra keys are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from launcher.scoring.entities import Entity, PlacementStats
from launcher.scoring.metrics import Example, _prf, score, strict_spans
from launcher.scoring.parse import ParseResult


def bio_token_prf(gold: Iterable[Sequence[str]], pred: Iterable[Sequence[str]]) -> dict[str, Any]:
    """Token-level P/R/F1 the research's way: one decision per word (its first sub-token), the
    full BIO tag compared exactly.

    Per word with gold tag g and predicted tag p: tp += g == p != O; fp += p != g and p != O;
    fn += p != g and g != O. A word whose tags are both entities but differ (B-per vs I-per,
    B-per vs B-org) is one fp and one fn. precision = tp / (tp + fp), recall = tp / (tp + fn).
    (The research skipped words cut off by its max length; the jobs predict O for those, so
    they count here as misses.)
    """
    tp = fp = fn = 0
    for g_tags, p_tags in zip(gold, pred, strict=True):
        if len(g_tags) != len(p_tags):
            raise ValueError(f"gold has {len(g_tags)} tags, prediction {len(p_tags)}")
        for g, p in zip(g_tags, p_tags, strict=True):
            tp += g == p != "O"
            fp += p != g and p != "O"
            fn += p != g and g != "O"
    return _prf(tp, fp, fn)


def tagged_example(tokens: Sequence[str], gold_tags: Sequence[str], pred_tags: Sequence[str]) -> Example:
    """A scored sentence whose prediction is a tag per word (no text to parse or place).

    The predicted entities are the strict spans of `pred_tags` (an I-X that continues nothing
    is no entity, as in seqeval's strict mode), so the seed metric sees the same entities.
    """
    if not len(tokens) == len(gold_tags) == len(pred_tags):
        raise ValueError(f"{len(tokens)} tokens, {len(gold_tags)} gold tags, {len(pred_tags)} predicted tags")
    base = Example.from_tags(tokens, gold_tags, ParseResult([], "ok"))
    entities = []
    for start, end, kind in strict_spans(pred_tags):
        words = list(tokens[start:end])
        order = sum(1 for i in range(start) if list(tokens[i : i + len(words)]) == words)
        entities.append(Entity(" ".join(words), kind.lower(), order))
    return Example(
        list(tokens), base.gold, list(gold_tags), ParseResult(entities, "ok"), list(pred_tags),
        PlacementStats(placed=len(entities)),
    )  # fmt: skip


def score_tagged(
    tokens: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """`metrics.score` of tagged sentences plus ``token_bio`` (`bio_token_prf`)."""
    examples = [tagged_example(t, g, p) for t, g, p in zip(tokens, gold_tags, pred_tags, strict=True)]
    result = score(examples)
    result["token_bio"] = bio_token_prf(gold_tags, pred_tags)
    return result


def is_tagged_jsonl(path: Path) -> bool:
    """Whether the first row of a predictions.jsonl holds ``pred_tags`` (a baseline's file). A
    first row that does not read is not one: the generative reader then says what is wrong."""
    with Path(path).open(encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError):
                    return False
                return isinstance(row, dict) and "pred_tags" in row
    return False


def score_tagged_jsonl(path: Path) -> dict[str, Any]:
    """`score_tagged` of a tagged predictions.jsonl; a malformed row raises ValueError naming
    the file and line."""
    tokens, gold, pred = [], [], []
    with Path(path).open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {lineno}"
            row = json.loads(line)
            try:
                t, g, p = row["tokens"], row["gold_tags"], row["pred_tags"]
            except (KeyError, TypeError):
                raise ValueError(f"{where}: a tagged row needs tokens, gold_tags and pred_tags") from None
            if not (isinstance(t, list) and isinstance(g, list) and isinstance(p, list)):
                raise ValueError(f"{where}: tokens, gold_tags and pred_tags must be lists")
            if not len(t) == len(g) == len(p):
                raise ValueError(f"{where}: {len(t)} tokens, {len(g)} gold tags, {len(p)} predicted tags")
            tokens.append(t)
            gold.append(g)
            pred.append(p)
    try:
        return score_tagged(tokens, gold, pred)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
