"""Slurm-style durations (`resources.time`, a profile's `limits.max_time`): a module of their own so
that a cluster profile is read without importing every recipe section."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def duration_seconds(text: str) -> int:
    """Seconds in a Slurm-style duration: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM[:SS]`."""
    m = _DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"'{text}' is not a duration; use HH:MM:SS or D-HH:MM:SS")
    days, a, b, c = m.groups()
    if days is not None:
        hours, minutes, seconds = int(a), int(b or 0), int(c or 0)
    elif c is not None:
        hours, minutes, seconds = int(a), int(b), int(c)
    elif b is not None:
        hours, minutes, seconds = 0, int(a), int(b)
    else:
        hours, minutes, seconds = 0, int(a), 0
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def _check_duration(value: str | int) -> str:
    if duration_seconds(str(value)) == 0:  # Slurm reads --time=0 as UNLIMITED
        raise ValueError(f"'{value}' is zero, which Slurm reads as unlimited; use a positive HH:MM:SS")
    return str(value)


Duration = Annotated[str, BeforeValidator(_check_duration)]
