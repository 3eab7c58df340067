"""The one way a key or a value goes into a shell script: names checked, values quoted."""

from __future__ import annotations

import re
import shlex

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_NAME_TEXT = "letters, digits and _, not starting with a digit ([A-Za-z_][A-Za-z0-9_]*)"


def check_env_name(name: str) -> str:
    """`name` if it is a valid environment variable name, else ValueError (schemas use this too)."""
    if not isinstance(name, str) or not ENV_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid environment variable name; valid: {ENV_NAME_TEXT}")
    return name


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters (C0, DEL, C1) and Unicode line separators: they end or garble a script line."""


def control_character(text: str, allowed: str = "") -> str | None:
    """The first control character of `text` that is not in `allowed`, or None."""
    for match in CONTROL.finditer(text):
        if match.group() not in allowed:
            return match.group()
    return None


def quote(value: object) -> str:
    """`value` as one shell word that expands to exactly itself."""
    return shlex.quote(str(value))


def export_line(key: str, value: object) -> str:
    """`export KEY='value'`; a key that is not an environment name is refused, whoever built it."""
    return f"export {check_env_name(key)}={quote(value)}"
