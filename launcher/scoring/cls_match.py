"""Turning a classifier's raw answer into ranked candidate codes: the research's matcher and a strict one.

Both take the raw response text and the candidates (``Label``s, in the order given; the research
sorts them by code) and return a ``Match``: up to 5 ranked ``Pick``s and a parse status.

``seed`` is the research's parser (``data_pipeline/validator.py`` of its repository), reproduced:

1. JSON: the text from the first ``{`` to the last ``}``; its ``predictions`` list; per item the
   ``category`` (else ``label``) and ``confidence`` (else ``score``; divided by 100 when above 1).
   The category, stripped and lower-cased, is matched *leniently*: the first candidate (in the given
   order) whose lower-cased label equals it, is a prefix of it or is contained in it. So
   "Economics of land and energy" and "International economics" both map to "Economics". A code
   already picked is not picked again; unmatched categories are dropped; at most 5 picks. An item
   whose confidence is not a number stops the list there (the research's code raised and kept
   what it had).
2. Only if 1 picked nothing: every line that has no ``{``, ``}``, ``"category"``, ``"predictions"``,
   with ``: 80%``-style numbers and list markers removed, matched leniently; a ``NN%`` on the line
   is its confidence.
3. Only if 2 picked nothing: every candidate label found anywhere in the text, longest label first.

Where the research substituted a confidence (0.0 for a missing JSON number, 0.5 for steps 2-3
without a percentage) a ``Pick`` has ``confidence=None``: no number was written.

``strict``: only step 1's JSON; a category matches only the candidate whose label equals it after
case folding and whitespace collapsing. A category that matches nothing still takes its rank (a
wrong answer at that rank, ``code=None``); nothing is dropped or moved up. Status ``failed`` when
there is no JSON with a non-empty ``predictions`` list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from launcher.scoring.labels import Label

MAX_PICKS = 5
Matcher = Literal["seed", "strict"]
MATCHERS: tuple[Matcher, ...] = ("seed", "strict")
_JSON = re.compile(r"(\{.*\})", re.DOTALL)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_SCORE_SUFFIX = re.compile(r"[:\-]\s*\d+(?:\.\d+)?\s*%?")
_LIST_MARKER = re.compile(r"^[\d\.\-\*\)\s]+")


@dataclass(frozen=True)
class Pick:
    """One ranked answer: the candidate's code and label (None when it matched nothing, strict only),
    the category as the model wrote it, and the confidence it wrote (0-1) or None."""

    code: str | None
    label: str | None
    answer: str
    confidence: float | None


@dataclass(frozen=True)
class Match:
    picks: list[Pick] = field(default_factory=list)
    status: Literal["ok", "failed"] = "failed"
    source: Literal["json", "lines", "raw", "none"] = "none"

    @property
    def codes(self) -> list[str | None]:
        return [p.code for p in self.picks]

    def predictions(self, key: Literal["code", "label"] = "code") -> list[dict[str, object]]:
        """The picks as predictions.jsonl ``predictions`` (``label`` holds the code or the label;
        None for an answer that matched nothing); no log-probability confidence."""
        return [{"label": getattr(p, key), "answer": p.answer, "confidence_verbal": p.confidence,
                 "confidence_logprob": None} for p in self.picks]  # fmt: skip


def match(raw: str, candidates: Sequence[Label], matcher: Matcher = "seed") -> Match:
    """The ranked picks of `raw` among `candidates` with the named matcher."""
    if matcher == "seed":
        return match_seed(raw, candidates)
    if matcher == "strict":
        return match_strict(raw, candidates)
    raise ValueError(f"matcher '{matcher}' is not one of {', '.join(MATCHERS)}")


def _json_items(raw: str) -> list[object] | None:
    """The ``predictions`` list of the first-{-to-last-} JSON object, or None."""
    found = _JSON.search(raw or "")
    if not found:
        return None
    try:
        data = json.loads(found.group(1))
    except ValueError:
        return None
    predictions = data.get("predictions") if isinstance(data, dict) else None
    return predictions if isinstance(predictions, list) else None


def _confidence(value: object) -> float | None:
    """A written confidence on 0-1 (percentages divided by 100); None if not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) / 100.0 if value > 1.0 else float(value)


def _lenient(text: str, table: dict[str, Label]) -> Label | None:
    if not text:
        return None
    for label_lower, lab in table.items():
        if text == label_lower or text.startswith(label_lower) or label_lower in text:
            return lab
    return None


def match_seed(raw: str, candidates: Sequence[Label]) -> Match:
    """The research's lenient matcher (module docstring, steps 1-3)."""
    table: dict[str, Label] = {}
    for lab in candidates:
        # The research's dict: a later duplicate label replaces the code but keeps the first place.
        table[lab.label.lower().strip()] = lab
    picks: list[Pick] = []
    seen: set[str] = set()

    def add(lab: Label | None, answer: str, conf: float | None) -> None:
        if lab is not None and lab.code not in seen:
            seen.add(lab.code)
            picks.append(Pick(lab.code, lab.label, answer, conf))

    for item in _json_items(raw) or []:
        if not isinstance(item, dict):
            continue
        answer = item.get("category", "") or item.get("label", "")
        value = item.get("confidence", 0.0) or item.get("score", 0.0)
        if not isinstance(value, int | float):
            break  # the research's `conf > 1.0` raised a TypeError here, which ended the JSON step
        conf = _confidence(value) if ("confidence" in item or "score" in item) else None
        if answer:
            add(_lenient(str(answer).strip().lower(), table), str(answer), conf)
        if len(picks) >= MAX_PICKS:
            break
    if picks:
        return Match(picks, "ok", "json")

    for line in (raw or "").strip().split("\n"):
        line = line.strip()
        if not line or any(x in line for x in ("{", "}", '"category"', '"predictions"')):
            continue
        percent = _PERCENT.search(line)
        conf = float(percent.group(1)) / 100.0 if percent else None
        cleaned = _SCORE_SUFFIX.sub("", line).strip().lower()
        cleaned = _LIST_MARKER.sub("", cleaned).strip()
        add(_lenient(cleaned, table), line, conf)
        if len(picks) >= MAX_PICKS:
            break
    if picks:
        return Match(picks, "ok", "lines")

    text = (raw or "").lower()
    for lab in sorted(candidates, key=lambda c: len(c.label), reverse=True):
        if lab.label.lower().strip() in text:
            add(lab, lab.label, None)
        if len(picks) >= MAX_PICKS:
            break
    return Match(picks, "ok", "raw") if picks else Match()


def normalise(text: str) -> str:
    """Case-folded, whitespace collapsed: the only leniency the strict matcher allows."""
    return " ".join(str(text).split()).casefold()


def match_strict(raw: str, candidates: Sequence[Label]) -> Match:
    """Exact (normalised) label matches from the JSON answer only; ranks kept as the model wrote them."""
    table: dict[str, Label] = {}
    for candidate in candidates:
        table.setdefault(normalise(candidate.label), candidate)
    items = _json_items(raw)
    if not items:
        return Match()
    picks: list[Pick] = []
    for item in items[:MAX_PICKS]:
        if not isinstance(item, dict):
            picks.append(Pick(None, None, json.dumps(item), None))
            continue
        answer = item.get("category", item.get("label", ""))
        lab = table.get(normalise(answer)) if isinstance(answer, str) else None
        conf = _confidence(item.get("confidence"))
        picks.append(Pick(lab.code if lab else None, lab.label if lab else None, str(answer), conf))
    return Match(picks, "ok", "json")
