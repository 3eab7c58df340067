"""Scoring generative NER: strict span P/R/F1, token level, sentence level, and the seed metric.

Pure functions over tokens, tags and parsed outputs; no torch, no seqeval (the tests check the
strict numbers against seqeval). One sentence is an ``Example``; ``score`` turns a list of them
into the dict written as ``metrics.json`` and printed by ``launch score --json``::

    {"strict": {"precision", "recall", "f1", "tp", "fp", "fn", "macro_f1",
                "per_type": {type: {"precision", "recall", "f1", "tp", "fp", "fn", "support"}}},
     "seed": {"precision", "recall", "f1", "tp", "fp", "fn", "gold", "evaluated", "skipped",
              "token": {"precision", "recall", "f1", "correct", "predicted", "gold"},
              "sentence": {"accuracy", "correct", "evaluated", "total"}},
     "token": {"precision", "recall", "f1", "tp", "predicted", "gold"},
     "sentence": {"accuracy", "correct", "total"},
     "parse_failures": int, "hallucinated": int, "unplaceable": int,
     "parse_status": {"ok": int, "repaired": int, "truncated": int, "failed": int},
     "sentences": int}

Every ratio with a zero denominator is 0.0.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.scoring.entities import Entity, PlacementStats, bio_to_entities, entities_to_bio
from launcher.scoring.parse import STATUSES, ParseResult, parse_output

Span = tuple[int, int, str]
"""A strict entity: (start, end exclusive, type)."""


@dataclass(frozen=True)
class Example:
    """One scored sentence.

    ``gold_tags`` are valid IOB2 for ``tokens``. ``gold`` is the gold entity list as the
    reference states it (the seed metric compares against it verbatim). ``gold_unplaced`` are gold
    entities that could not be placed on the tokens; they count as strict misses.
    ``prediction`` is the parsed model output. ``placement`` says what happened to its entities.
    """

    tokens: list[str]
    gold: list[Entity]
    gold_tags: list[str]
    prediction: ParseResult
    pred_tags: list[str]
    placement: PlacementStats
    gold_unplaced: list[Entity] = field(default_factory=list)

    @classmethod
    def from_tags(cls, tokens: Sequence[str], gold_tags: Sequence[str], prediction: ParseResult) -> Example:
        """Gold given as IOB2 tags (the GMB case); gold entities derive from them."""
        if len(tokens) != len(gold_tags):
            raise ValueError(f"{len(tokens)} tokens but {len(gold_tags)} gold tags")
        gold = bio_to_entities(tokens, gold_tags)
        return cls._build(list(tokens), gold, list(gold_tags), [], prediction)

    @classmethod
    def from_entities(cls, tokens: Sequence[str], gold: Sequence[Entity], prediction: ParseResult) -> Example:
        """Gold given as entities (the seed CSV case); gold tags come from placing them."""
        gold_tags, stats = entities_to_bio(tokens, gold)
        unplaced = [*stats.hallucinated, *stats.unplaceable]
        return cls._build(list(tokens), list(gold), gold_tags, unplaced, prediction)

    @classmethod
    def _build(
        cls,
        tokens: list[str],
        gold: list[Entity],
        gold_tags: list[str],
        gold_unplaced: list[Entity],
        prediction: ParseResult,
    ) -> Example:
        pred_tags, placement = entities_to_bio(tokens, prediction.entities or [])
        return cls(tokens, gold, gold_tags, prediction, pred_tags, placement, gold_unplaced)


# ---------------------------------------------------------------------------------------------
# strict entity level


def strict_spans(tags: Sequence[str]) -> list[Span]:
    """Entities of an IOB2 tag sequence as seqeval's strict mode reads them.

    An entity is a ``B-X`` followed by the longest run of ``I-X``. An ``I-X`` that does not
    continue such a run belongs to no entity. Raises ``ValueError`` on a tag that is not ``O``
    or ``B-``/``I-`` prefixed.
    """
    spans: list[Span] = []
    start, kind = -1, ""
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and start >= 0 and tag[2:] == kind:
            continue
        if start >= 0:
            spans.append((start, i, kind))
            start = -1
        if tag.startswith("B-"):
            start, kind = i, tag[2:]
        elif tag != "O" and not tag.startswith("I-"):
            raise ValueError(f"invalid IOB2 tag {tag!r} at position {i}")
    if start >= 0:
        spans.append((start, len(tags), kind))
    return spans


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "precision": p,
        "recall": r,
        "f1": _ratio(2 * p * r, p + r),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def strict_prf(
    gold: Iterable[Sequence[str]],
    pred: Iterable[Sequence[str]],
    extra_fp: Mapping[str, int] | None = None,
    extra_fn: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Strict entity-level P/R/F1 over paired IOB2 tag sequences.

    With no extras this equals seqeval's ``classification_report(gold, pred, mode="strict",
    scheme=IOB2)``: micro P/R/F1 over all types; ``per_type`` for every type seen in gold or
    predictions (sorted), with ``support`` = gold count; ``macro_f1`` = unweighted mean of the
    per-type F1. ``extra_fp``/``extra_fn`` add per-type false positives/negatives that have no
    span (entities that could not be placed on the sentence).
    """
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter(extra_fp or {})
    fn: Counter[str] = Counter(extra_fn or {})
    for g_tags, p_tags in zip(gold, pred, strict=True):
        if len(g_tags) != len(p_tags):
            raise ValueError(f"gold has {len(g_tags)} tags, prediction {len(p_tags)}")
        g, p = set(strict_spans(g_tags)), set(strict_spans(p_tags))
        tp.update(s[2] for s in g & p)
        fp.update(s[2] for s in p - g)
        fn.update(s[2] for s in g - p)
    per_type = {}
    for typ in sorted(set(tp) | set(fp) | set(fn)):
        row = _prf(tp[typ], fp[typ], fn[typ])
        row["support"] = tp[typ] + fn[typ]
        per_type[typ] = row
    out = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    out["per_type"] = per_type
    out["macro_f1"] = _ratio(sum(r["f1"] for r in per_type.values()), len(per_type))
    return out


# ---------------------------------------------------------------------------------------------
# token level


def token_prf(
    gold: Iterable[Sequence[str]],
    pred: Iterable[Sequence[str]],
    extra_pred: int = 0,
    extra_gold: int = 0,
) -> dict[str, Any]:
    """Token-level P/R/F1 over paired IOB2 tag sequences.

    Each tag is reduced to its type (``B-geo`` and ``I-geo`` are both ``geo``). ``predicted`` =
    tokens whose predicted type is not O, ``gold`` = tokens whose gold type is not O, ``tp`` =
    tokens where both are the same non-O type. precision = tp / predicted, recall = tp / gold.
    ``extra_pred``/``extra_gold`` add tokens that could not be placed (words of hallucinated or
    unplaceable entities), so they count against precision or recall.
    """
    tp, n_pred, n_gold = 0, extra_pred, extra_gold
    for g_tags, p_tags in zip(gold, pred, strict=True):
        for g_tag, p_tag in zip(g_tags, p_tags, strict=True):
            g_type, p_type = g_tag[2:] if g_tag != "O" else "", p_tag[2:] if p_tag != "O" else ""
            n_pred += bool(p_type)
            n_gold += bool(g_type)
            tp += bool(g_type) and g_type == p_type
    p, r = _ratio(tp, n_pred), _ratio(tp, n_gold)
    f1 = _ratio(2 * p * r, p + r)
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "predicted": n_pred, "gold": n_gold}


# ---------------------------------------------------------------------------------------------
# the research's own scorer


def seed_metric(pairs: Iterable[tuple[Sequence[Entity], ParseResult]]) -> dict[str, Any]:
    """The research's scorer over (gold entities, parsed prediction) pairs.

    Only predictions with status ``ok`` are evaluated (the research skipped outputs whose JSON
    did not parse as is or did not end in ``}``); the rest are ``skipped``. Per evaluated
    sentence, gold and predicted entities become multisets of ``(entity, order, label)``:
    tp = size of the multiset intersection, fp/fn = the excess on either side. Entity precision
    = tp / (tp + fp), recall = tp / gold, where gold counts the evaluated sentences' entities.
    Token level: ``correct`` = sum over matched triples of their word counts, ``predicted`` /
    ``gold`` = words in all predicted / gold entity texts. Sentence accuracy = sentences whose two
    multisets are equal / evaluated sentences (the research's denominator; ``total`` also counts
    the skipped ones).
    """
    tp = fp = fn = n_gold = correct_words = pred_words = gold_words = 0
    evaluated = skipped = exact = 0
    for gold, pred in pairs:
        if pred.status != "ok" or pred.entities is None:
            skipped += 1
            continue
        evaluated += 1
        g = Counter((e.entity, e.order, e.label) for e in gold)
        p = Counter((e.entity, e.order, e.label) for e in pred.entities)
        both = g & p
        tp += sum(both.values())
        fp += sum((p - g).values())
        fn += sum((g - p).values())
        n_gold += len(gold)
        exact += g == p
        correct_words += sum(n * len(key[0].split()) for key, n in both.items())
        pred_words += sum(len(e.words) for e in pred.entities)
        gold_words += sum(len(e.words) for e in gold)
    p_ent, r_ent = _ratio(tp, tp + fp), _ratio(tp, n_gold)
    p_tok, r_tok = _ratio(correct_words, pred_words), _ratio(correct_words, gold_words)
    return {
        "precision": p_ent,
        "recall": r_ent,
        "f1": _ratio(2 * p_ent * r_ent, p_ent + r_ent),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "gold": n_gold,
        "evaluated": evaluated,
        "skipped": skipped,
        "token": {
            "precision": p_tok,
            "recall": r_tok,
            "f1": _ratio(2 * p_tok * r_tok, p_tok + r_tok),
            "correct": correct_words,
            "predicted": pred_words,
            "gold": gold_words,
        },
        "sentence": {
            "accuracy": _ratio(exact, evaluated),
            "correct": exact,
            "evaluated": evaluated,
            "total": evaluated + skipped,
        },
    }


# ---------------------------------------------------------------------------------------------
# everything together


def sentence_correct(example: Example) -> bool:
    """Exact match: the output parsed (any status but ``failed``), every predicted entity was
    placed, no gold entity was left unplaced, and the predicted strict spans (with types) equal
    the gold ones."""
    return (
        example.prediction.status != "failed"
        and example.placement.not_placed == 0
        and not example.gold_unplaced
        and set(strict_spans(example.pred_tags)) == set(strict_spans(example.gold_tags))
    )


def score(examples: Iterable[Example]) -> dict[str, Any]:
    """All metrics for a set of sentences, in the ``metrics.json`` layout (module docstring).

    A sentence whose output failed to parse has no predictions: its gold entities are misses and
    it stays in every denominator. Predicted entities that could not be placed (hallucinated:
    text absent from the sentence; unplaceable: every occurrence overlaps an entity already
    placed) are strict false positives of their label and add their words to the predicted token
    count; unplaced gold entities likewise count as misses.
    """
    examples = list(examples)
    extra_fp: Counter[str] = Counter()
    extra_fn: Counter[str] = Counter()
    extra_pred_words = extra_gold_words = 0
    for ex in examples:
        for ent in [*ex.placement.hallucinated, *ex.placement.unplaceable]:
            extra_fp[ent.label] += 1
            extra_pred_words += len(ent.words)
        for ent in ex.gold_unplaced:
            extra_fn[ent.label] += 1
            extra_gold_words += len(ent.words)
    gold_tags = [ex.gold_tags for ex in examples]
    pred_tags = [ex.pred_tags for ex in examples]
    statuses = Counter(ex.prediction.status for ex in examples)
    correct = sum(sentence_correct(ex) for ex in examples)
    return {
        "strict": strict_prf(gold_tags, pred_tags, extra_fp, extra_fn),
        "seed": seed_metric((ex.gold, ex.prediction) for ex in examples),
        "token": token_prf(gold_tags, pred_tags, extra_pred_words, extra_gold_words),
        "sentence": {
            "accuracy": _ratio(correct, len(examples)),
            "correct": correct,
            "total": len(examples),
        },
        "parse_failures": statuses["failed"],
        "hallucinated": sum(len(ex.placement.hallucinated) for ex in examples),
        "unplaceable": sum(len(ex.placement.unplaceable) for ex in examples),
        "parse_status": {s: statuses[s] for s in STATUSES},
        "sentences": len(examples),
    }


# ---------------------------------------------------------------------------------------------
# file formats


def _gold_entities(items: Any, where: str) -> list[Entity]:
    if not isinstance(items, list):
        raise ValueError(f"{where}: gold entities must be a list")
    try:
        return [Entity.from_dict(item) for item in items]
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def seed_csv_examples(path: Path) -> list[Example]:
    """Examples from a research output CSV (columns ``sentence``, ``output``, ``model_output``).

    ``sentence`` is the input as the research quoted it (``"..."``): one pair of enclosing
    double quotes is removed and the rest split on whitespace. ``output`` is the gold JSON;
    ``model_output`` is the raw generation, parsed with ``parse_output``. A gold JSON that does
    not parse raises ``ValueError`` naming the CSV row (the header is row 1).
    """
    with Path(path).open(encoding="utf-8-sig", newline="") as f:  # a BOM (Excel's default) allowed
        reader = csv.DictReader(f)
        missing = {"sentence", "output", "model_output"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        rows = [(r["sentence"], r["output"], r["model_output"]) for r in reader]
    examples = []
    for row, (sentence, output, raw) in enumerate(rows, start=2):
        text = sentence[1:-1] if len(sentence) >= 2 and sentence[0] == sentence[-1] == '"' else sentence
        where = f"{path}: row {row}"
        try:
            gold_obj = json.loads(output)
        except ValueError as exc:
            raise ValueError(f"{where}: gold output is not JSON: {exc}") from None
        except RecursionError:
            raise ValueError(f"{where}: gold output is JSON nested too deeply to read") from None
        if not isinstance(gold_obj, dict):
            raise ValueError(f"{where}: gold output is not a JSON object")
        gold = _gold_entities(gold_obj.get("entities"), where)
        examples.append(Example.from_entities(text.split(), gold, parse_output(raw)))
    return examples


def score_seed_csv(path: Path) -> dict[str, Any]:
    """``score`` of a research output CSV (see ``seed_csv_examples``)."""
    return score(seed_csv_examples(path))


def predictions_jsonl_examples(path: Path, *, reparse: bool = False) -> list[Example]:
    """Examples from a ``predictions.jsonl`` written by the evaluation job.

    One JSON object per line:

    * ``id``: the sentence id (GMB ``Sentence: N``), informational.
    * ``tokens``: list of str, the sentence tokens.
    * gold, either ``gold_tags`` (list of IOB2 tags, one per token) or ``gold`` (list of
      ``{"entity", "order", "label"}`` dicts); ``gold_tags`` wins when both are present.
    * ``raw``: str, the raw generation.
    * ``prompt`` (optional): str, the prompt, used when ``raw`` is parsed here.
    * ``entities``: list of entity dicts or null, and ``status``: ok | repaired | truncated |
      failed, the parse made by the job.

    The stored ``entities``/``status`` are used unless ``reparse`` is true or they are absent, in
    which case ``raw`` is parsed again with ``parse_output``. Blank lines are ignored.
    """
    examples = []
    with Path(path).open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {lineno}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{where}: not JSON: {exc}") from None
            except RecursionError:
                raise ValueError(f"{where}: JSON nested too deeply to read") from None
            tokens = row["tokens"]
            if reparse or "status" not in row or "entities" not in row:
                pred = parse_output(row.get("raw") or "", row.get("prompt"))
            else:
                status = row["status"]
                if status not in STATUSES:
                    raise ValueError(f"{where}: unknown status {status!r}")
                ents = row["entities"]
                if (status == "failed") != (ents is None):
                    raise ValueError(f"{where}: entities must be null exactly when status is failed")
                pred = ParseResult(
                    None if ents is None else _gold_entities(ents, where), status, row.get("error")
                )
            if row.get("gold_tags") is not None:
                examples.append(Example.from_tags(tokens, row["gold_tags"], pred))
            elif row.get("gold") is not None:
                gold = _gold_entities(row["gold"], where)
                examples.append(Example.from_entities(tokens, gold, pred))
            else:
                raise ValueError(f"{where}: neither gold_tags nor gold")
    return examples


def score_predictions_jsonl(path: Path, *, reparse: bool = False) -> dict[str, Any]:
    """``score`` of a ``predictions.jsonl`` (see ``predictions_jsonl_examples``)."""
    return score(predictions_jsonl_examples(path, reparse=reparse))
