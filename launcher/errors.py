"""User-facing errors: one line, exit code 2, nothing created."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input. The CLI prints `str(err)` on one line and exits 2."""

    exit_code = 2


class SetupError(Exception):
    """Something wrong with this machine (a full disk, an unreadable registry, $LAUNCH_HOME that is
    not a directory), not with the input. The CLI prints `str(err)` on one line and exits 1."""

    exit_code = 1


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def choices_text(choices: Iterable[str]) -> str:
    """Render valid choices as `a, b, c`."""
    return ", ".join(str(c) for c in choices)
