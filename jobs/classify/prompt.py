"""Prompts of the classify job: a template file (string.Template: $categories, $examples, $n,
$text, $level) filled with one level's candidates, the support examples and the item's text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from string import Template

from launcher.errors import UserError
from launcher.scoring.labels import Label

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "files" / "prompts" / "classify.txt"
FIELDS = ("categories", "examples", "n", "text")


def load_template(path: str | None, source: str) -> Template:
    """The recipe's template (classify.prompt) or the shipped one; it must use every field."""
    file = Path(path).expanduser() if path else DEFAULT_TEMPLATE
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{source}: classify.prompt: cannot read {file} ({err})") from None
    template = Template(text)
    names = set(template.get_identifiers())
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise UserError(
            f"{source}: classify.prompt: {file} lacks ${', $'.join(missing)}; valid fields: "
            f"${', $'.join((*FIELDS, 'level'))}"
        )
    return template


def categories_block(candidates: Sequence[Label]) -> str:
    """One entry per candidate: `- name` and, when the tree has one, its definition indented."""
    return "\n\n".join(
        f"- {lab.label}:\n  {lab.definition}" if lab.definition else f"- {lab.label}" for lab in candidates
    )


def example_answer(gold: Label, candidates: Sequence[Label], n: int) -> str:
    """The answer an example shows: its gold label first, then the other candidates in code order."""
    ranked = [gold] + [c for c in candidates if c.code != gold.code]
    confidences = [0.9] + [0.05] * (len(ranked) - 1)
    preds = [
        {"category": lab.label, "confidence": conf}
        for lab, conf in zip(ranked[:n], confidences, strict=False)
    ]
    return json.dumps({"predictions": preds})


def examples_block(examples: Sequence[tuple[str, Label]], candidates: Sequence[Label], n: int) -> str:
    if not examples:
        return ""
    parts = [f"Example {i}:\n{text}\nAnswer: {example_answer(gold, candidates, n)}"
             for i, (text, gold) in enumerate(examples, 1)]  # fmt: skip
    return "\nExamples:\n\n" + "\n\n".join(parts) + "\n"


def render(
    template: Template,
    candidates: Sequence[Label],
    examples: Sequence[tuple[str, Label]],
    text: str,
    n: int,
    level: int,
) -> str:
    return template.substitute(
        categories=categories_block(candidates), examples=examples_block(examples, candidates, n),
        n=min(n, len(candidates)), text=text, level=level,
    )  # fmt: skip
