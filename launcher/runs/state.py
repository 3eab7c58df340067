"""The states of a run (kept in the registry) and of a run's `--then` chain (chain/state.json)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class RunState(StrEnum):
    """Where a run (and each of its scheduler jobs) stands; the value is what the registry stores.

    Display order (counts, `--state` choices) is the order of the members below: submitting,
    pending, running, preempted, completed, failed, cancelled, timeout, unknown.

    ==========  ========  =======  ===============================================================
    state       terminal  style    meaning
    ==========  ========  =======  ===============================================================
    submitting  no        yellow   registered before its submit; no job id yet (or the launcher
                                   died submitting it)
    pending     no        yellow   the scheduler holds it (queued, requeued, held)
    running     no        cyan     it runs (or is completing)
    preempted   no        yellow   stopped by the scheduler, to be requeued (suspended)
    completed   yes       green    it ended well
    failed      yes       red      it ended badly (exit code, node failure, out of memory)
    cancelled   yes       magenta  cancelled, by `launch cancel` or the scheduler's own cancel
    timeout     yes       red      it hit its time limit
    unknown     no        dim      the scheduler does not say (forgot the job, did not answer)
    ==========  ========  =======  ===============================================================

    Legal transitions (staying in a state is always legal):

    - submitting -> pending: the submit answered with job ids (a failed submit removes the row);
    - pending, running, preempted, unknown -> any state but submitting: each refresh takes what the
      scheduler says, and a run may pass several states between two refreshes (pending ->
      completed), be requeued (running -> pending) or be forgotten and found again (unknown);
    - completed, failed, cancelled, timeout -> nothing: terminal, never asked of a scheduler again.
    """

    SUBMITTING = "submitting"
    PENDING = "pending"
    RUNNING = "running"
    PREEMPTED = "preempted"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """It ended: nothing changes it any more."""
        return self in _TERMINAL

    @property
    def order(self) -> int:
        """Its place in the display order (0 first)."""
        return _ORDER[self]

    @property
    def style(self) -> str:
        """Its rich style (a colour) in tables."""
        return _STYLE[self]

    def can_become(self, other: RunState) -> bool:
        """Whether `self -> other` is a legal transition (see the class docstring)."""
        if other is self:
            return True
        if self is RunState.SUBMITTING:
            return other is RunState.PENDING
        return not self.is_terminal and other is not RunState.SUBMITTING

    @classmethod
    def of(cls, text: str) -> RunState | None:
        """The state a stored string names; None for a string that names none."""
        try:
            return cls(text)
        except ValueError:
            return None

    @classmethod
    def order_of(cls, text: str) -> int:
        """The display order of a stored string; a string that names no state goes last."""
        state = cls.of(text)
        return state.order if state is not None else len(_ORDER)

    @classmethod
    def style_of(cls, text: str) -> str:
        """The style of a stored string; none for a string that names no state."""
        return _STYLE_OF.get(text, "")

    @classmethod
    def ended(cls, text: str) -> bool:
        """A stored string names a terminal state."""
        return text in _ENDED


_TERMINAL = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.TIMEOUT})
_ORDER = {state: i for i, state in enumerate(RunState)}
_STYLE = {
    RunState.SUBMITTING: "yellow", RunState.PENDING: "yellow", RunState.RUNNING: "cyan",
    RunState.PREEMPTED: "yellow", RunState.COMPLETED: "green", RunState.FAILED: "red",
    RunState.CANCELLED: "magenta", RunState.TIMEOUT: "red", RunState.UNKNOWN: "dim",
}  # fmt: skip
_STYLE_OF = {state.value: style for state, style in _STYLE.items()}
_ENDED = frozenset(state.value for state in _TERMINAL)
"""By stored string: a lookup, not an enum call (`launch status --all` asks for every row)."""


class ChainState(StrEnum):
    """Where a run's `--then` chain stands (chain/state.json `state`; not a registry state).

    waiting (for training to end) -> evaluating -> bench -> completed; from any of the first three
    -> failed or cancelled; waiting -> not started (training did not complete, or the chain's job
    could not be started). Completed, failed, cancelled and not started are ended.
    """

    WAITING = "waiting"
    EVALUATING = "evaluating"
    BENCH = "bench"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NOT_STARTED = "not started"

    @property
    def is_ended(self) -> bool:
        """Nothing more happens in the chain."""
        return self in (ChainState.COMPLETED, ChainState.FAILED, ChainState.CANCELLED, ChainState.NOT_STARTED)


def counts_text(counts: Mapping[str, int]) -> str:
    """`2 running, 2 completed`: how many runs are in each state, in the display order."""
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: RunState.order_of(kv[0])))
