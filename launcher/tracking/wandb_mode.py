"""W&B mode resolution and secret redaction.

Redaction is one function for the whole project, `redact_pieces` (`redact_text` for one string,
`redact_data` for JSON-like values): every stretch of text that a secret covers (the values of the
environment's secret-looking variables, plus any `also` a caller knows, such as an API key read from
a variable of any name) becomes REDACTED. Overlapping secrets are merged into one stretch, so no part
of either survives; a text cut into parts (an answer's tokens) is redacted as the joined text is.
Redact before cutting a text short: a cut can leave a part of a secret no redaction recognises.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeGuard

WandbMode = Literal["online", "offline", "disabled"]
"""What W&B runs in, resolved."""
WandbRequest = Literal["auto", "online", "offline", "disabled"]
"""What a recipe (tracking.mode) asks for; `auto` is resolved by `wandb_mode`."""
MODES: tuple[WandbMode, ...] = ("online", "offline", "disabled")
SECRET_NAMES = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL|SESSION)", re.IGNORECASE)
REDACTED = "***"


def is_secret(name: str) -> bool:
    return bool(SECRET_NAMES.search(name))


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` with the values of secret-looking variables replaced."""
    return {k: (REDACTED if is_secret(k) else v) for k, v in env.items()}


def secret_values(env: Mapping[str, str] | None = None, also: Iterable[str] = ()) -> list[str]:
    """Values of the secret variables in the environment and `also`, each at least 4 characters
    long (shorter ones would redact ordinary text), longest first, without repeats."""
    env = os.environ if env is None else env
    found = {v for k, v in env.items() if is_secret(k)} | set(also)
    return sorted((v for v in found if len(v) >= 4), key=lambda v: (-len(v), v))


def _covered(text: str, secrets: Sequence[str]) -> list[tuple[int, int]]:
    """The stretches [start, end) of `text` that any secret covers, overlapping ones merged, in order."""
    spans = []
    for secret in secrets:
        at = text.find(secret)
        while at >= 0:
            spans.append((at, at + len(secret)))
            at = text.find(secret, at + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def redact_pieces(
    pieces: Sequence[str], env: Mapping[str, str] | None = None, *, secrets: Sequence[str] | None = None
) -> list[str]:
    """`pieces` (one text in parts, such as an answer's tokens) with every secret replaced: each
    stretch a secret covers in the joined text becomes REDACTED in the piece where it starts and is
    cut from the pieces it runs on into, so `"".join(result) == redact_text("".join(pieces))`.
    The secrets are `secrets` (from secret_values) when given, else the environment's."""
    secrets = secret_values(env) if secrets is None else secrets
    text = "".join(pieces)
    if not any(s in text for s in secrets):
        return list(pieces)
    spans, out, pos, k = _covered(text, secrets), [], 0, 0
    for piece in pieces:
        start, end = pos, pos + len(piece)
        kept, cur = [], start
        while cur < end:
            while k < len(spans) and spans[k][1] <= cur:
                k += 1
            if k == len(spans) or spans[k][0] >= end:
                kept.append(text[cur:end])
                break
            first, last = spans[k]
            if first > cur:
                kept.append(text[cur:first])
                cur = first
                continue
            if first == cur:  # the stretch starts in this piece
                kept.append(REDACTED)
            cur = min(last, end)
        out.append("".join(kept))
        pos = end
    return out


def redact_text(
    text: str, env: Mapping[str, str] | None = None, *, secrets: Sequence[str] | None = None
) -> str:
    """`text` with every secret value replaced (the secrets as `redact_pieces` takes them)."""
    return redact_pieces([text], env, secrets=secrets)[0]


def redact_data(
    value: Any, env: Mapping[str, str] | None = None, *, secrets: Sequence[str] | None = None
) -> Any:
    """`value` (dicts, lists, strings and other JSON values) with every string in it redacted, keys too."""
    secrets = secret_values(env) if secrets is None else secrets
    if isinstance(value, str):
        return redact_text(value, secrets=secrets)
    if isinstance(value, dict):
        return {redact_data(k, secrets=secrets): redact_data(v, secrets=secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v, secrets=secrets) for v in value]
    return value


def _is_mode(value: str | None) -> TypeGuard[WandbMode]:
    return value in MODES


def wandb_mode(requested: WandbRequest, env: Mapping[str, str] | None = None) -> WandbMode:
    """online when a key is present, offline otherwise, disabled when asked; `requested` wins."""
    env = os.environ if env is None else env
    if requested != "auto":
        return requested
    from_env = env.get("WANDB_MODE")
    if _is_mode(from_env):
        return from_env
    return "online" if env.get("WANDB_API_KEY") else "offline"


ProfileMode = Literal["online", "offline", "auto"]
"""What a cluster profile says of its compute nodes (tracking.wandb.mode)."""


def node_mode(
    requested: WandbRequest,
    profile: ProfileMode,
    unreachable: Callable[[], str | None],
    env: Mapping[str, str] | None = None,
) -> tuple[WandbMode, str | None]:
    """The mode a job logs in on its node, and the one line to print when it fell back to offline.
    A recipe's own mode or WANDB_MODE wins (`wandb_mode`); without a key it is offline; else the
    profile's online or offline; for its `auto`, `unreachable()` (one short try: why W&B did not
    answer, None when it did) decides."""
    env = os.environ if env is None else env
    if requested != "auto" or _is_mode(env.get("WANDB_MODE")) or not env.get("WANDB_API_KEY"):
        return wandb_mode(requested, env), None
    if profile != "auto":
        return profile, None
    why = unreachable()
    if why is None:
        return "online", None
    return "offline", f"W&B: {why}; logging offline (launch sync --wandb sends it from the login node)"
