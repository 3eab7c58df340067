"""The GMB split of a recipe as NER training examples (prompt + JSON answer), for every trainer."""

from __future__ import annotations

from typing import Any

from jobs.data.gmb import recipe_split
from jobs.prompts import Example, ner_example
from launcher.config.recipe import Recipe


def ner_examples(recipe: Recipe, tokenizer: Any) -> tuple[list[Example], list[Example]]:
    """Train and validation examples of the recipe's GMB split, capped by data.max_*_samples."""
    d = recipe.data
    split = recipe_split(d)
    train = split.train[: d.max_train_samples] if d.max_train_samples else split.train
    val = split.validation[: d.max_eval_samples] if d.max_eval_samples else split.validation
    make = lambda s: ner_example(tokenizer, s.id, s.tokens, s.tags)  # noqa: E731
    return [make(s) for s in train], [make(s) for s in val]
