"""W&B mode resolution and secret redaction."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal, TypeGuard

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


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of the secret variables in the environment (at least 4 characters long)."""
    env = os.environ if env is None else env
    return [v for k, v in env.items() if is_secret(k) and len(v) >= 4]


def redact_text(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every secret value from the environment replaced."""
    for value in sorted(secret_values(env), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


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
