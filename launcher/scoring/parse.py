"""Lenient extraction of the ``{"entities": [...]}`` answer from a raw model generation.

A raw generation may hold, around the answer: padding and other special tokens (``<|vision_pad|>``
runs, ``<｜end▁of▁sentence｜>``, and the same tokens with their UTF-8 mangled into ``?`` runs,
``<???end???of???sentence???>``), the echoed prompt (which may itself contain a JSON example),
``<think>`` reasoning (closed, or unclosed when generation stopped inside it), markdown code
fences, and text after the JSON. The JSON itself may be cut off by the token limit, or be
almost-JSON (trailing commas, Python quoting).

Statuses:

* ``ok``: a complete object that ``json.loads`` accepts as is, every entity item well-formed.
* ``repaired``: a complete answer that needed a fix: trailing commas, Python-literal quoting, a
  missing final ``}`` after a closed entity list, an ``order`` given as a digit string or left
  out (0), a label not lowercase, entity items that were not well-formed (dropped, counted in
  ``error``), or an answer found only inside an unclosed ``<think>``.
* ``truncated``: the entity list was cut off; ``entities`` holds the complete entity objects
  before the cut (possibly none).
* ``failed``: no answer could be recovered; ``entities`` is ``None`` and ``error`` says why.

Extraction never changes a status: stripping debris, the prompt echo, reasoning, fences or
trailing text still yields ``ok``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from launcher.scoring.entities import Entity

Status = Literal["ok", "repaired", "truncated", "failed"]
STATUSES: tuple[Status, ...] = ("ok", "repaired", "truncated", "failed")


@dataclass(frozen=True)
class ParseResult:
    """Outcome of ``parse_output``: ``entities`` is ``None`` exactly when status is ``failed``."""

    entities: list[Entity] | None
    status: Status
    error: str | None = None


# Special tokens: <|...|>, <｜...｜> (DeepSeek's full-width bars), the same with their bytes
# mangled into '?' runs (<???end???of???sentence???>), and <s>, </s>, <pad>, <unk>, <eos>, <bos>.
_SPECIAL_TOKEN = re.compile(
    r"<\|[^<>\s|]{1,64}\|>"
    r"|<｜[^<>\s｜]{1,64}｜>"
    r"|<\?+[^<>\s]{0,64}?\?+>"
    r"|</?s>|<(?:pad|unk|eos|bos)>"
)
_FENCE = re.compile(r"```[A-Za-z]*")
_CANDIDATE = re.compile(r"\{\s*[\"']entities[\"']\s*:")
_BARE_LIST = re.compile(r"\[\s*\{\s*[\"']entity[\"']\s*:")
_LIST_OPEN = re.compile(r"\s*\[")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_WS = re.compile(r"\s+")


def strip_special_tokens(text: str) -> str:
    """``text`` with every special token (intact or ``?``-mangled) replaced by a newline."""
    return _SPECIAL_TOKEN.sub("\n", text)


def _after_prompt_echo(text: str, prompt: str) -> str:
    """The part of ``text`` after the last echo of ``prompt``, compared ignoring whitespace.

    Falls back to the prompt's last non-empty line (e.g. ``Sentence: ...``) unless that line
    holds a ``{`` (it could then equal the answer); returns ``text`` unchanged when neither occurs.
    """
    squeezed_chars: list[str] = []
    positions: list[int] = []
    for i, ch in enumerate(text):
        if not ch.isspace():
            squeezed_chars.append(ch)
            positions.append(i)
    squeezed = "".join(squeezed_chars)
    clean_prompt = strip_special_tokens(prompt)
    lines = [ln for ln in clean_prompt.splitlines() if ln.strip()]
    needles = [clean_prompt]
    if lines and "{" not in lines[-1]:
        needles.append(lines[-1])
    for needle in needles:
        key = _WS.sub("", needle)
        if not key:
            continue
        at = squeezed.rfind(key)
        if at >= 0:
            return text[positions[at + len(key) - 1] + 1 :]
    return text


def _scan(text: str, start: int) -> int | None:
    """Index just past the bracket group opening at ``text[start]``, or ``None`` if unclosed.

    Understands double- and single-quoted strings with backslash escapes.
    """
    depth = 0
    quote = ""
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _loads(chunk: str) -> tuple[Any, bool]:
    """Parse ``chunk`` as JSON, else with the repairs; returns (value, repaired).

    Raises ``ValueError`` when nothing works.
    """
    try:
        return json.loads(chunk), False
    except (ValueError, RecursionError):  # nested deeper than Python's stack: not an answer
        pass
    fixed = _TRAILING_COMMA.sub(r"\1", chunk)
    try:
        return json.loads(fixed), True
    except (ValueError, RecursionError):
        pass
    literal = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", fixed))
    literal = re.sub(r"\bnull\b", "None", literal)
    try:
        return ast.literal_eval(literal), True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    raise ValueError(f"not JSON: {chunk[:80]!r}")


def _entity(item: Any) -> tuple[Entity | None, bool]:
    """Validate one entity item; returns (entity or None if unusable, coerced?)."""
    if not isinstance(item, dict):
        return None, False
    text, label, order = item.get("entity"), item.get("label"), item.get("order", None)
    if not isinstance(text, str) or not text.strip() or not isinstance(label, str):
        return None, False
    coerced = False
    if isinstance(order, bool) or order is None:
        order, coerced = 0, True
    elif isinstance(order, str) and order.strip().isdigit():
        order, coerced = int(order.strip()), True
    elif isinstance(order, float) and order.is_integer() and order >= 0:
        order, coerced = int(order), True
    elif not isinstance(order, int) or order < 0:
        return None, False
    norm_label = label.strip().lower()
    if norm_label != label:
        coerced = True
    return Entity(entity=text, label=norm_label, order=order), coerced


def _entities(items: list[Any]) -> tuple[list[Entity], bool, int]:
    """Validate items; returns (entities, any coerced, number dropped)."""
    out: list[Entity] = []
    coerced_any = False
    dropped = 0
    for item in items:
        ent, coerced = _entity(item)
        if ent is None:
            dropped += 1
        else:
            out.append(ent)
            coerced_any |= coerced
    return out, coerced_any, dropped


def _complete(
    text: str, start: int, end: int, *, as_list: bool = False
) -> tuple[list[Entity], bool, int] | None:
    """Decode a closed group ``text[start:end]``; ``None`` if it is not an entity answer."""
    try:
        value, repaired = _loads(text[start:end])
    except ValueError:
        return None
    if as_list:
        items, repaired = value, True
    elif isinstance(value, dict) and isinstance(value.get("entities"), list):
        items = value["entities"]
    else:
        return None
    if not isinstance(items, list):
        return None
    ents, coerced, dropped = _entities(items)
    return ents, repaired or coerced or dropped > 0, dropped


def _items_until_cut(text: str, pos: int) -> tuple[list[Any], bool]:
    """Complete ``{...}`` items of a list whose contents start at ``pos``.

    Returns (items, list_closed). Stops at the first item that is cut off or unparseable.
    """
    items: list[Any] = []
    n = len(text)
    while True:
        while pos < n and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        if pos >= n:
            return items, False
        if text[pos] == "]":
            return items, True
        if text[pos] != "{":
            return items, False
        end = _scan(text, pos)
        if end is None:
            return items, False
        try:
            items.append(_loads(text[pos:end])[0])
        except ValueError:
            return items, False
        pos = end


def _truncated(text: str, start: int, as_list: bool) -> tuple[list[Entity], bool, int]:
    """Recover from an unclosed candidate at ``start``; returns (entities, list_closed, dropped)."""
    if as_list:
        pos = start + 1
    else:
        head = _CANDIDATE.match(text, start)
        opening = _LIST_OPEN.match(text, head.end()) if head else None
        if opening is None:
            return [], False, 0
        pos = opening.end()
    items, closed = _items_until_cut(text, pos)
    ents, _, dropped = _entities(items)
    return ents, closed, dropped


def _dropped_note(dropped: int) -> str:
    return f"; dropped {dropped} malformed entity item(s)" if dropped else ""


def parse_output(raw: str, prompt: str | None = None) -> ParseResult:
    """Extract the predicted entities from one raw generation.

    ``prompt`` is the text the model was given; when the generation echoes it, only what follows
    its last echo is searched (matched ignoring whitespace and special tokens), so a JSON example
    inside the prompt is never taken for the answer. Without ``prompt`` a generation that echoes a
    prompt holding a complete example, and then a cut-off answer, yields the example: pass the
    prompt whenever the generation may contain it.

    In the searched region, text up to the last ``</think>`` is dropped; if a ``<think>`` is left
    unclosed, the answer is searched inside it (status at best ``repaired``). Among
    ``{"entities": ...}`` objects the last complete one wins; if none is complete, the last one is
    recovered as ``truncated``. A bare ``[{"entity": ...}, ...]`` list counts as ``repaired``.
    Never raises on any string input.
    """
    text = strip_special_tokens(raw)
    if prompt:
        text = _after_prompt_echo(text, prompt)
    notes: list[str] = []
    if "</think>" in text:
        text = text[text.rindex("</think>") + len("</think>") :]
    elif "<think>" in text:
        text = text[text.rindex("<think>") + len("<think>") :]
        notes.append("answer inside an unclosed <think>")
    text = _FENCE.sub(" ", text)

    if not text.strip():
        return ParseResult(None, "failed", "empty output" + "".join("; " + n for n in notes))

    as_list = _CANDIDATE.search(text) is None
    pattern = _BARE_LIST if as_list else _CANDIDATE
    last_cut: int | None = None
    complete: tuple[list[Entity], bool, int] | None = None
    for start in reversed([m.start() for m in pattern.finditer(text)]):
        end = _scan(text, start)
        if end is None:
            if last_cut is None:
                last_cut = start
            continue
        complete = _complete(text, start, end, as_list=as_list)
        if complete is not None:
            break

    if complete is not None:
        ents, repaired, dropped = complete
        if repaired or notes:
            detail = "; ".join([*notes, "answer needed repair"] if repaired else notes)
            return ParseResult(ents, "repaired", detail + _dropped_note(dropped))
        return ParseResult(ents, "ok", None)
    if last_cut is not None:
        ents, closed, dropped = _truncated(text, last_cut, as_list)
        if closed:
            detail = "; ".join([*notes, "missing closing bracket after the entity list"])
            return ParseResult(ents, "repaired", detail + _dropped_note(dropped))
        detail = "; ".join([*notes, f"output cut off; kept {len(ents)} complete entities"])
        return ParseResult(ents, "truncated", detail + _dropped_note(dropped))
    if _ends_in_cut_opening(text):
        detail = "; ".join([*notes, "output cut off in the opening of the answer"])
        return ParseResult([], "truncated", detail)
    return ParseResult(None, "failed", "no entities JSON found" + "".join("; " + n for n in notes))


def _ends_in_cut_opening(text: str) -> bool:
    """True when ``text`` ends in a prefix of ``{"entities": [`` (the answer was cut at once)."""
    tail = text.rstrip()
    brace = tail.rfind("{")
    if brace < 0:
        return False
    rest = _WS.sub("", tail[brace:]).replace("'", '"')
    return '{"entities":['.startswith(rest)
