"""The one place where NER prompts and answers are built, for training and evaluation alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from launcher.scoring.entities import ENTITY_TYPES, Entity, bio_to_entities, target_json

INSTRUCTION = (
    "Extract the named entities from the sentence. Types: per (person), org (organization), "
    "gpe (geopolitical entity), geo (geographical location), tim (time), art (artifact), "
    "eve (event), nat (natural phenomenon). Answer with JSON only: "
    '{"entities": [{"entity": <text as in the sentence>, "order": <which occurrence, from 0>, '
    '"label": <type>}]}.'
)
assert all(t in INSTRUCTION for t in ENTITY_TYPES)


@dataclass(frozen=True)
class Example:
    """A prompt (already in the tokenizer's chat format) and its answer (the JSON target)."""

    id: int
    prompt: str
    answer: str


def user_message(sentence: str) -> str:
    return f"{INSTRUCTION}\nSentence: {sentence}"


def render_prompt(tokenizer: Any, sentence: str) -> str:
    """The text the model sees before its answer: the chat template when the tokenizer has one."""
    message = user_message(sentence)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
        )
    return f"{message}\nAnswer: "


def ner_example(tokenizer: Any, sentence_id: int, tokens: Sequence[str], tags: Sequence[str]) -> Example:
    entities: list[Entity] = bio_to_entities(tokens, tags)
    return Example(sentence_id, render_prompt(tokenizer, " ".join(tokens)), target_json(entities))
