"""RunState: one display order, the terminal states, a style each, the legal transitions."""

from __future__ import annotations

import pytest

from launcher.runs.state import ChainState, RunState, counts_text

ORDER = ["submitting", "pending", "running", "preempted", "completed", "failed", "cancelled", "timeout",
         "unknown"]  # fmt: skip


def test_the_values_stored_and_their_display_order() -> None:
    assert [s.value for s in RunState] == ORDER
    assert [s.order for s in RunState] == list(range(len(ORDER)))
    assert RunState.order_of("running") == 2 and RunState.order_of("no such state") == len(ORDER)
    assert str(RunState.TIMEOUT) == "timeout" and f"{RunState.PREEMPTED}" == "preempted"
    assert RunState("cancelled") is RunState.CANCELLED and RunState.of("done") is None


def test_counts_are_written_in_the_display_order() -> None:
    counts = {"timeout": 1, "completed": 2, "weird": 1, "preempted": 1, "cancelled": 3, "running": 2}
    assert counts_text(counts) == "2 running, 1 preempted, 2 completed, 3 cancelled, 1 timeout, 1 weird"
    assert counts_text({}) == ""


def test_terminal_states() -> None:
    assert {s for s in RunState if s.is_terminal} == {
        RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.TIMEOUT
    }  # fmt: skip
    assert RunState.ended("failed") and not RunState.ended("preempted") and not RunState.ended("weird")


def test_every_state_has_a_style() -> None:
    styles = {s.value: s.style for s in RunState}
    assert styles == {
        "submitting": "yellow", "pending": "yellow", "running": "cyan", "preempted": "yellow",
        "completed": "green", "failed": "red", "cancelled": "magenta", "timeout": "red", "unknown": "dim",
    }  # fmt: skip
    assert RunState.style_of("weird") == ""


@pytest.mark.parametrize("state", list(RunState))
def test_staying_is_always_legal(state: RunState) -> None:
    assert state.can_become(state)


def test_a_submitting_run_only_becomes_pending() -> None:
    assert [s for s in RunState if s.can_become(s) and s is not RunState.SUBMITTING and
            RunState.SUBMITTING.can_become(s)] == [RunState.PENDING]  # fmt: skip


@pytest.mark.parametrize("state", [s for s in RunState if s.is_terminal])
def test_a_terminal_state_is_final(state: RunState) -> None:
    assert [s for s in RunState if state.can_become(s)] == [state]


@pytest.mark.parametrize("state", [RunState.PENDING, RunState.RUNNING, RunState.PREEMPTED, RunState.UNKNOWN])
def test_an_unfinished_run_can_become_anything_but_submitting(state: RunState) -> None:
    assert [s for s in RunState if not state.can_become(s)] == [RunState.SUBMITTING]
    assert RunState.RUNNING.can_become(RunState.PENDING)  # requeued


def test_chain_states() -> None:
    assert {s.value for s in ChainState if s.is_ended} == {"completed", "failed", "cancelled", "not started"}
    assert ChainState("not started") is ChainState.NOT_STARTED and str(ChainState.BENCH) == "bench"
