"""Reading a classifier's answer: the ranked labels it wrote, and the log-probability confidence
of its first label from the generated tokens' `top_logprobs`, and the checks an endpoint's reply
passes before it is scored or cached. Pure functions, no I/O.

The answer asked for is `{"predictions": [{"category": "...", "confidence": 0.9}, ...]}`, often
inside Markdown fences or after some text; a JSON object is looked for first, then the
`"category": "..."` pairs themselves (an answer cut off by the token limit keeps what it finished).

A chat completion body is read by `read_completion`: UTF-8 JSON with a non-empty `choices` list whose
first message has non-empty text content; token logprobs, when present, are numbers of at most 0
(-Infinity becomes LOGPROB_FLOOR). Anything else raises `Malformed`, and the job records a failed
item and caches nothing. Every text of the body is redacted of the secrets the caller names
(launcher.tracking.wandb_mode) before anything of it is read, quoted or cut short: the tokens as
their joined text is, so they still spell the (redacted) answer. An answer is stored (cache and
predictions.jsonl) up to MAX_ANSWER_BYTES of UTF-8, cut at a character boundary and followed by
TRUNCATED; its tokens are kept up to the same point, so a rerun from the cache scores exactly what
the first run scored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from launcher.tracking.wandb_mode import redact_data, redact_pieces, redact_text

MAX_ANSWER_BYTES = 64 * 1024  # the most of an answer that is stored (cache, predictions.jsonl)
TRUNCATED = "\n[... truncated: the answer was {size} bytes; the first {cap} are kept]"
_TRUNCATED = re.compile(r"\n\[\.\.\. truncated: the answer was \d+ bytes; the first \d+ are kept\]\Z")
LOGPROB_FLOOR = -1e4  # -Infinity (probability 0) as a finite log-probability: exp() of it is 0.0
LOGPROB_SLACK = 1e-3  # a logprob above 0 by rounding is 0; one above this is no log-probability

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
    if not math.isfinite(x) or x < 0:
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


def token_span(tokens: Sequence[TokenLogprob], text: str, span: tuple[int, int]) -> tuple[int, int] | None:
    """`span` of the answer `text` as a span of the tokens' joined text: the same where the tokens
    write `text`, shifted where the server returns less than it generated (llama.cpp's jinja chat
    mode drops the ```json fence its grammar allows around a schema's JSON); None where the tokens
    do not hold `text`."""
    joined = "".join(t.token for t in tokens)
    at = 0 if joined == text else joined.find(text)
    return None if at < 0 else (span[0] + at, span[1] + at)


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


class Malformed(ValueError):
    """An endpoint's 200 that holds no answer that can be scored; the message says what is wrong."""


@dataclass
class Completion:
    """What a well-formed chat completion says: the answer text (capped), its tokens (None when
    the endpoint gave no logprobs) and the token counts of its usage."""

    text: str
    tokens: list[TokenLogprob] | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def cap_answer(text: str, tokens: list[TokenLogprob] | None = None) -> tuple[str, list[TokenLogprob] | None]:
    """`text` cut to MAX_ANSWER_BYTES of UTF-8 plus the TRUNCATED marker, and the tokens that start
    before the cut; both unchanged when the text fits or was cut already (a cached answer)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_ANSWER_BYTES:
        return text, tokens
    marker = _TRUNCATED.search(text)
    if marker and len(text[: marker.start()].encode("utf-8", "replace")) <= MAX_ANSWER_BYTES:
        return text, tokens
    kept = data[:MAX_ANSWER_BYTES].decode("utf-8", "ignore")
    if tokens is not None:
        out, pos = [], 0
        for t in tokens:
            if pos >= len(kept):
                break
            out.append(t)
            pos += len(t.token)
        tokens = out
    return kept + TRUNCATED.format(size=len(data), cap=MAX_ANSWER_BYTES), tokens


def logprob(value: Any, where: str) -> float:
    """A token log-probability: a number of at most 0 (LOGPROB_SLACK of rounding allowed), -Infinity
    as LOGPROB_FLOOR; else Malformed naming `where`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"{where} is {_show(value)}, not a number")
    x = float(value)
    if math.isnan(x) or x > LOGPROB_SLACK:
        raise Malformed(f"{where} is {_show(value)}, not a log-probability (a number of at most 0)")
    return max(min(x, 0.0), LOGPROB_FLOOR)


def read_tokens(content: Any) -> list[TokenLogprob]:
    """`choices[0].logprobs.content` as TokenLogprobs; Malformed when any part is off."""
    if not isinstance(content, list):
        raise Malformed(f"logprobs.content is {_show(content)}, not a list")
    out = []
    for i, t in enumerate(content):
        where = f"logprobs.content[{i}]"
        if not isinstance(t, dict) or not isinstance(t.get("token"), str):
            raise Malformed(f"{where} has no token text")
        own = logprob(t.get("logprob"), f"{where}.logprob")
        top = t.get("top_logprobs") or []
        if not isinstance(top, list) or not all(isinstance(a, dict) and isinstance(a.get("token"), str)
                                                for a in top):  # fmt: skip
            raise Malformed(f"{where}.top_logprobs is not a list of tokens")
        alts = tuple((_text(a["token"]), logprob(a.get("logprob"), f"{where}.top_logprobs[{j}].logprob"))
                     for j, a in enumerate(top))  # fmt: skip
        out.append(TokenLogprob(_text(t["token"]), own, alts))
    return out


def redact_tokens(tokens: list[TokenLogprob], secrets: Sequence[str]) -> list[TokenLogprob]:
    """`tokens` with every secret redacted as in their joined text (a secret cut into several
    tokens too); an alternative equal to its token changes with it, any other is redacted alone."""
    texts = redact_pieces([t.token for t in tokens], secrets=secrets)
    out = []
    for t, new in zip(tokens, texts, strict=True):
        top = tuple((new if alt == t.token else redact_text(alt, secrets=secrets), lp) for alt, lp in t.top)
        out.append(t if new == t.token and top == t.top else TokenLogprob(new, t.logprob, top))
    return out


def read_completion(body: bytes, secrets: Sequence[str] = ()) -> Completion:
    """The answer in a chat completion `body` (module docstring), every text in it redacted of
    `secrets`; Malformed says what is wrong."""
    try:
        body_text = redact_pieces([body.decode("utf-8")], secrets=secrets)[0]
    except UnicodeDecodeError as err:
        raise Malformed(f"the body is not UTF-8 (byte {err.start} of {len(body)})") from None
    try:
        data = redact_data(json.loads(body_text), secrets=secrets)  # an escaped secret reads back whole
    except (ValueError, RecursionError):
        start = body_text[:60].strip()
        raise Malformed(f"the body is not JSON ({len(body)} bytes starting {start!r})") from None
    if not isinstance(data, dict):
        raise Malformed(f"the body is {_show(data)}, not a JSON object")
    if "choices" not in data and isinstance(data.get("error"), dict | str):
        error = data["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise Malformed(f"the body is an error: {str(message).splitlines()[0][:300] if message else error}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Malformed(f"choices is {_show(choices)}, not a non-empty list")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise Malformed("choices[0] has no message")
    text = message.get("content")
    if text is None or (isinstance(text, str) and not text.strip()):
        raise Malformed(f"empty answer (content {_show(text)})")
    if not isinstance(text, str):
        raise Malformed(f"message.content is {_show(text)}, not text")
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    tokens = redact_tokens(read_tokens(content), secrets) if content else None
    usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
    text, tokens = cap_answer(_text(text), tokens)
    counts = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    return Completion(text, tokens, *counts)


def _text(value: str) -> str:
    """`value` as text that encodes to UTF-8: a lone surrogate (JSON allows "\\ud800") becomes U+FFFD."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _count(value: Any) -> int:
    """A token count from `usage`: a non-negative int, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _show(value: Any) -> str:
    """`value` for a message: its JSON, at most 40 characters."""
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
