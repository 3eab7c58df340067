"""Reading a classifier's answer: the ranked labels it wrote, and the log-probability confidence
of its first label from the generated tokens' `top_logprobs`. Pure functions, no I/O.

The answer asked for is `{"predictions": [{"category": "...", "confidence": 0.9}, ...]}`, often
inside Markdown fences or after some text; a JSON object is looked for first, then the
`"category": "..."` pairs themselves (an answer cut off by the token limit keeps what it finished).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_CATEGORY = re.compile(r'"category"\s*:\s*"((?:[^"\\]|\\.)*)"(?:\s*,\s*"confidence"\s*:\s*(-?[\d.]+))?')


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its log-probability and the top alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class Answer:
    """What an answer says: `(category text, verbal confidence or None)` in its order, the character
    span of the first category value in the raw text, and `ok` (False: nothing readable)."""

    items: list[tuple[str, float | None]] = field(default_factory=list)
    first_span: tuple[int, int] | None = None
    ok: bool = False


def verbal(value: Any) -> float | None:
    """The model's stated confidence as a probability: divided by 100 when above 1, clipped."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(x) or x < 0:
        return None
    return min(x / 100 if x > 1 else x, 1.0)


def parse_answer(raw: str) -> Answer:
    """The ranked categories of `raw` (module docstring)."""
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", raw)):
        try:
            obj, _ = decoder.raw_decode(raw, start)
        except ValueError:
            continue
        preds = obj.get("predictions") if isinstance(obj, dict) else None
        if isinstance(preds, list):
            items = [
                (str(p["category"]).strip(), verbal(p.get("confidence")))
                for p in preds
                if isinstance(p, dict) and isinstance(p.get("category"), str | int | float)
            ]
            if items:
                m = _CATEGORY.search(raw, start)
                return Answer(items, m.span(1) if m else None, True)
    found = list(_CATEGORY.finditer(raw))
    if not found:
        return Answer()
    items = [(m.group(1).strip(), verbal(m.group(2))) for m in found]
    return Answer(items, found[0].span(1), True)


def rank(
    items: Sequence[tuple[str, float | None]], candidates: Sequence[str], match: Callable[[str], str | None]
) -> list[tuple[str, float | None]]:
    """`(candidate code, verbal confidence)` for the answer's items that `match` maps to a candidate,
    first mention wins, in the answer's order."""
    out: dict[str, float | None] = {}
    for text, conf in items:
        code = match(text)
        if code is not None and code in candidates and code not in out:
            out[code] = conf
    return list(out.items())


def label_distribution(
    tokens: Sequence[TokenLogprob], span: tuple[int, int], labels: dict[str, str]
) -> dict[str, float]:
    """P(candidate) from the generated tokens of the first label, renormalised over the candidates
    found; `labels` maps code -> label text. Empty when the tokens do not cover `span`.

    Walk the tokens that write the label at `span`: the path so far has probability P. At each
    position, an alternative token that continues the label text so far into a prefix of other
    candidates gives them P * p(alternative), shared equally among them; the generated label gets
    the probability of its whole path. A candidate no alternative reaches is not in the result.
    """
    starts, pos = [], 0
    for t in tokens:
        starts.append(pos)
        pos += len(t.token)
    text = "".join(t.token for t in tokens)
    s, e = span
    if e > len(text) or s >= e:
        return {}
    generated = text[s:e]
    first = next((i for i, st in enumerate(starts) if st + len(tokens[i].token) > s), None)
    if first is None:
        return {}
    mass: dict[str, float] = {}
    path = 0.0  # log P of the generated tokens so far
    for i in range(first, len(tokens)):
        tok, st = tokens[i], starts[i]
        if st >= e:
            break
        lead = text[st:s] if st < s else ""  # what the first token writes before the label
        written = text[s:st] if st > s else ""  # label text written by earlier tokens
        for alt, lp in tok.top:
            if alt == tok.token or not alt.startswith(lead):
                continue
            piece = alt[len(lead) :]
            so_far = written + piece
            reached = [
                c for c, lab in labels.items() if lab != generated and so_far and _continues(so_far, lab)
            ]
            for c in reached:
                mass[c] = mass.get(c, 0.0) + math.exp(path + lp) / len(reached)
        path += tok.logprob
    exact = [c for c, lab in labels.items() if lab == generated]
    for c in exact:
        mass[c] = mass.get(c, 0.0) + math.exp(path)
    total = sum(mass.values())
    return {c: m / total for c, m in mass.items()} if total > 0 else {}


def _continues(so_far: str, label: str) -> bool:
    """`so_far` (label text written so far, maybe with the closing quote) leads to `label`."""
    return label.startswith(so_far) or so_far.startswith(label + '"')
