"""User-facing errors: one line, exit code 2, nothing created."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


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


def require_file(path: Path, label: str | None = None) -> None:
    """A UserError unless `path` is a file: "no such file", or "is a directory" for a directory.
    `label` (an option or the text the user typed) is named instead of the path when given."""
    if path.is_file():
        return
    where = label if label is not None else str(path)
    if path.is_dir():
        raise UserError(f"{where}: is a directory, not a file; give the file's path")
    raise UserError(f"{where}: no such file")


def require_positive(option: str, value: int) -> int:
    """`value` when it is 1 or more, else a UserError naming the option (0 never means a default)."""
    if value < 1:
        raise UserError(f"{option}: {value} is not a positive number; valid: 1 or more")
    return value


def require_nonempty(what: str, ref: str) -> str:
    """`ref` when it holds more than white space, else a UserError naming the argument: an empty
    run id is never a prefix of every run, nor the current directory."""
    if not ref.strip():
        raise UserError(f"{what}: the argument is empty; give a run id, a unique prefix or a run directory")
    return ref
