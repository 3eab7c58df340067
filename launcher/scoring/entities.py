"""Conversion between GMB IOB2 tags and the JSON entity target.

This module is the single place that defines the target format the models are trained on and
scored against::

    {"entities": [{"entity": "Philip Alston", "order": 0, "label": "per"}, ...]}

* ``entity`` is the entity's tokens joined with single spaces.
* ``label`` is the lowercase entity type (per, org, gpe, geo, tim, art, eve, nat).
* ``order`` is the occurrence index of the entity's token sequence in the sentence: the number of
  earlier start positions where the same tokens appear (overlapping matches count). Counting every
  match, not only earlier *entities*, is what makes ``entities_to_bio(bio_to_entities(...))``
  reproduce the tags exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ENTITY_TYPES: tuple[str, ...] = ("per", "org", "gpe", "geo", "tim", "art", "eve", "nat")
"""The GMB entity types, lowercase, in the order the research lists them."""


@dataclass(frozen=True)
class Entity:
    """One entity mention: its text, its lowercase type and its occurrence index."""

    entity: str
    label: str
    order: int = 0

    @property
    def words(self) -> list[str]:
        """The entity text split on whitespace (how it is matched against sentence tokens)."""
        return self.entity.split()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the research's order: entity, order, label."""
        return {"entity": self.entity, "order": self.order, "label": self.label}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Entity:
        """Build from a dict with ``entity``, ``label`` and optional ``order`` (default 0).

        Raises ``ValueError`` when a field is missing or has the wrong type; no coercion happens
        here (lenient parsing of model output lives in ``launcher.scoring.parse``).
        """
        text, label, order = obj.get("entity"), obj.get("label"), obj.get("order", 0)
        if not isinstance(text, str) or not isinstance(label, str):
            raise ValueError(f"entity and label must be strings: {dict(obj)!r}")
        if not isinstance(order, int) or isinstance(order, bool) or order < 0:
            raise ValueError(f"order must be a non-negative int: {dict(obj)!r}")
        return cls(entity=text, label=label, order=order)


@dataclass
class PlacementStats:
    """What happened to each entity given to ``entities_to_bio``.

    ``placed + len(hallucinated) + len(unplaceable)`` equals the number of entities given.
    ``moved`` counts placed entities that did not land on their ``order``-th occurrence.
    """

    placed: int = 0
    moved: int = 0
    hallucinated: list[Entity] = field(default_factory=list)
    """Entities whose text does not occur in the sentence at all (or is empty)."""
    unplaceable: list[Entity] = field(default_factory=list)
    """Entities whose text occurs, but every occurrence overlaps tokens already used."""

    @property
    def not_placed(self) -> int:
        """Entities that produced no tags: hallucinated plus unplaceable."""
        return len(self.hallucinated) + len(self.unplaceable)


def occurrences(tokens: Sequence[str], words: Sequence[str]) -> list[int]:
    """Every start index ``i`` with ``tokens[i:i+len(words)] == words`` (overlaps included)."""
    n = len(words)
    if n == 0:
        return []
    first = words[0]
    return [
        i for i in range(len(tokens) - n + 1) if tokens[i] == first and list(tokens[i : i + n]) == list(words)
    ]


def bio_to_entities(tokens: Sequence[str], tags: Sequence[str]) -> list[Entity]:
    """Entities of a valid IOB2 tag sequence, in sentence order.

    Labels are the tag types lowercased. Raises ``ValueError`` when the lengths differ or the tags
    are not valid IOB2 (an ``I-X`` that does not continue a ``B-X``/``I-X``, or a tag that is
    neither ``O`` nor ``B-``/``I-`` prefixed).
    """
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    spans: list[tuple[int, int, str]] = []
    start, kind = -1, ""
    for i, tag in enumerate(tags):
        if tag == "O":
            if start >= 0:
                spans.append((start, i, kind))
            start = -1
        elif tag.startswith("B-") and len(tag) > 2:
            if start >= 0:
                spans.append((start, i, kind))
            start, kind = i, tag[2:]
        elif tag.startswith("I-") and len(tag) > 2:
            if start < 0 or tag[2:] != kind:
                raise ValueError(f"invalid IOB2: {tag!r} at position {i} does not continue B-{kind}")
        else:
            raise ValueError(f"invalid IOB2 tag {tag!r} at position {i}")
    if start >= 0:
        spans.append((start, len(tags), kind))

    entities = []
    for begin, end, typ in spans:
        words = list(tokens[begin:end])
        order = sum(1 for i in occurrences(tokens, words) if i < begin)
        entities.append(Entity(entity=" ".join(words), label=typ.lower(), order=order))
    return entities


def entities_to_bio(tokens: Sequence[str], entities: Sequence[Entity]) -> tuple[list[str], PlacementStats]:
    """IOB2 tags for ``entities`` placed on ``tokens``, plus what could not be placed.

    Entities are placed one by one, in the given order. An entity's text is split on whitespace
    and compared to the tokens exactly (case and punctuation included). It goes to its
    ``order``-th occurrence when that exists and none of its tokens is taken yet; otherwise to
    the first free occurrence after that one, then to the first free one before it. An entity
    whose text does not occur is *hallucinated*; one whose occurrences all overlap tokens already
    taken is *unplaceable*. Both are reported in the stats, never silently dropped.
    """
    tags = ["O"] * len(tokens)
    used = [False] * len(tokens)
    stats = PlacementStats()
    for ent in entities:
        words = ent.words
        starts = occurrences(tokens, words)
        if not starts:
            stats.hallucinated.append(ent)
            continue
        k = ent.order if 0 <= ent.order < len(starts) else len(starts)
        preferred = starts[k:] + starts[:k]
        n = len(words)
        chosen = next((s for s in preferred if not any(used[s : s + n])), None)
        if chosen is None:
            stats.unplaceable.append(ent)
            continue
        for j in range(chosen, chosen + n):
            used[j] = True
            tags[j] = ("B-" if j == chosen else "I-") + ent.label
        stats.placed += 1
        if k >= len(starts) or chosen != starts[k]:
            stats.moved += 1
    return tags, stats


def target_json(entities: Sequence[Entity]) -> str:
    """The training target: ``{"entities": [{"entity": ..., "order": ..., "label": ...}, ...]}``.

    One line, ``json.dumps`` default separators (as in the research's files), non-ASCII kept as
    is so the target spells entities exactly as the sentence does.
    """
    return json.dumps({"entities": [e.to_dict() for e in entities]}, ensure_ascii=False)
