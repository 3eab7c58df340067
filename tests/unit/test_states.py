"""The Slurm state table and the parsers of sacct, squeue and sinfo output (as 22.05 prints them)."""

from __future__ import annotations

from datetime import datetime

import pytest

from launcher.backends.slurm.failures import _events, history_text
from launcher.backends.slurm.parse import (
    SLURM_STATES,
    Attempt,
    expand_job_ids,
    map_state,
    parse_sacct,
    parse_sinfo,
    parse_squeue,
)
from launcher.backends.slurm.render import slurm_time
from launcher.runs.state import RunState

EXPECTED = {
    "PENDING": RunState.PENDING,
    "CONFIGURING": RunState.PENDING,
    "REQUEUED": RunState.PENDING,
    "REQUEUE_HOLD": RunState.PENDING,
    "REQUEUE_FED": RunState.PENDING,
    "SPECIAL_EXIT": RunState.PENDING,
    "RUNNING": RunState.RUNNING,
    "COMPLETING": RunState.RUNNING,
    "COMPLETED": RunState.COMPLETED,
    "FAILED": RunState.FAILED,
    "NODE_FAIL": RunState.FAILED,
    "OUT_OF_MEMORY": RunState.FAILED,
    "BOOT_FAIL": RunState.FAILED,
    "CANCELLED": RunState.CANCELLED,
    "TIMEOUT": RunState.TIMEOUT,
    "DEADLINE": RunState.TIMEOUT,
    "PREEMPTED": RunState.PREEMPTED,
    "SUSPENDED": RunState.PREEMPTED,
}


@pytest.mark.parametrize(("slurm", "state"), sorted(EXPECTED.items()))
def test_state_table(slurm: str, state: RunState) -> None:
    assert SLURM_STATES[slurm] is state
    assert map_state(slurm) is state


def test_every_state_maps_to_one_of_ours() -> None:
    assert set(SLURM_STATES.values()) <= set(RunState)
    scheduler_states = set(RunState) - {RunState.UNKNOWN, RunState.SUBMITTING}  # ours alone
    assert scheduler_states <= set(SLURM_STATES.values())


def test_requeue_states_are_not_terminal() -> None:
    for name in ("REQUEUED", "REQUEUE_HOLD", "PREEMPTED", "SUSPENDED", "COMPLETING", "CONFIGURING"):
        assert not map_state(name).is_terminal, name


def test_sacct_spellings() -> None:
    assert map_state("CANCELLED by 0") is RunState.CANCELLED
    assert map_state("cancelled by 1000") is RunState.CANCELLED
    assert map_state("") is RunState.UNKNOWN
    assert map_state("SOMETHING_NEW") is RunState.UNKNOWN


def test_expand_folded_array_ids() -> None:
    assert expand_job_ids("14_[1-2%1]") == ["14_1", "14_2"]
    assert expand_job_ids("7_[0,3-4]") == ["7_0", "7_3", "7_4"]
    assert expand_job_ids("7_5") == ["7_5"]
    assert expand_job_ids("16") == ["16"]


def test_sacct_requeued_job_counts_restarts_and_takes_the_latest_record() -> None:
    text = "16|REQUEUED|0:0|None|vm\n16|REQUEUED|0:0|None|vm\n16|RUNNING|0:0|BeginTime|vm\n"
    info = parse_sacct(text)["16"]
    assert info.state == "RUNNING" and info.restarts == 2 and info.nodes == "vm"
    assert info.job_state is RunState.RUNNING


def test_sacct_keeps_how_each_earlier_start_ended_where_and_when() -> None:
    text = (
        "16|REQUEUED|0:0|None|dev-n[1-2]|2026-12-06T08:40:00\n"
        "16|NODE_FAIL|0:0|None|dev-n[1-2]|2026-12-06T08:42:34\n"
        "16|COMPLETED|0:0|None|dev-n[1-2]|2026-12-06T08:50:00\n"
    )
    info = parse_sacct(text)["16"]
    assert info.restarts == 2 and info.end == "2026-12-06T08:50:00"
    assert info.earlier == [
        Attempt("REQUEUED", "dev-n[1-2]", "2026-12-06T08:40:00"),
        Attempt("NODE_FAIL", "dev-n[1-2]", "2026-12-06T08:42:34"),
    ]


def test_node_events_name_each_bad_node_once_and_restarts_read_in_order() -> None:
    out = (
        "dev-n2|2026-12-06T08:40:00|DOWN|an earlier test\n"
        "dev-n2|2026-12-06T08:42:34|DOWN*|test: lost\n"
        "dev-n1|2026-12-06T08:42:30|IDLE|\n"
        "dev-n3|2026-12-06T08:43:00|DRAIN|\n"
    )
    near = datetime(2026, 12, 6, 8, 42, 34)
    assert _events(out, near) == "dev-n2 DOWN*: test: lost; dev-n3 DRAIN"
    assert _events(out) == "dev-n2 DOWN*: test: lost; dev-n3 DRAIN"  # no time given: the last
    assert _events("dev-n1|2026-12-06T08:42:30|IDLE|\n") is None
    earlier = [Attempt("REQUEUED", "vm", ""), Attempt("PREEMPTED", "vm", "")]
    assert history_text(earlier) == "after requeued (USR2 or scontrol requeue), preempted"
    assert history_text([]) == ""


def test_sacct_reused_job_id_is_not_a_restart() -> None:
    text = "16|COMPLETED|0:0|None|vm\n16|PREEMPTED|0:0|None|vm\n16|PENDING|0:0|BeginTime|\n"
    info = parse_sacct(text)["16"]
    assert info.state == "PENDING" and info.restarts == 1


def test_sacct_array_with_folded_pending_tasks() -> None:
    text = (
        "22_0|COMPLETED|0:0|None|vm\n"
        "22_[1-2%1]|PENDING|0:0|JobArrayTaskLimit|None assigned\n"
        "23|CANCELLED by 0|0:0|None|vm\n"
        "24|FAILED|1:0|None|vm\n"
    )
    infos = parse_sacct(text)
    assert {k: v.job_state for k, v in infos.items()} == {
        "22_0": RunState.COMPLETED, "22_1": RunState.PENDING, "22_2": RunState.PENDING,
        "23": RunState.CANCELLED, "24": RunState.FAILED,
    }  # fmt: skip
    assert infos["22_2"].reason == "JobArrayTaskLimit" and infos["22_1"].restarts == 0
    assert infos["24"].exit_code == "1:0"


def test_sacct_task_record_replaces_its_folded_one() -> None:
    text = "22_[1-2%1]|PENDING|0:0|JobArrayTaskLimit|\n22_1|RUNNING|0:0|None|vm\n"
    infos = parse_sacct(text)
    assert infos["22_1"].state == "RUNNING" and infos["22_1"].restarts == 0
    assert infos["22_2"].state == "PENDING"


def test_squeue_output() -> None:
    text = (
        "22_2|PENDING|JobArrayTaskLimit|0||0|\n22_1|RUNNING|None|0|vm|0|\n16|PENDING|BeginTime|1||0|\n"
        "67|CANCELLED|None|0|vm|36608|\n"
    )
    infos = parse_squeue(text)
    assert infos["22_2"].job_state is RunState.PENDING and infos["22_1"].nodes == "vm"
    assert infos["16"].restarts == 1 and infos["16"].reason == "BeginTime"
    assert infos["67"].job_state is RunState.CANCELLED and infos["67"].exit_code == "143:0"
    assert parse_squeue("7_[1-3%1]|PENDING|JobArrayTaskLimit|0\n").keys() == {"7_1", "7_2", "7_3"}


def test_sinfo_partitions() -> None:
    text = (
        "gpu|gpu:a800:8|3|infinite\ngpu|gpu:a800:8(S:0-1)|2|infinite\n"
        "2080ti|gpu:8|1|2-00:00:00\ncpu|(null)|4|30\n"
    )
    parts = parse_sinfo(text)
    assert parts["gpu"].gpu_types == {"a800"} and parts["gpu"].gpus_per_node == 8
    assert parts["gpu"].nodes == 5 and parts["gpu"].max_seconds is None
    assert parts["2080ti"].gpu_types == set() and parts["2080ti"].max_seconds == 48 * 3600
    assert parts["cpu"].gpus_per_node == 0 and parts["cpu"].max_seconds == 30 * 60


def test_slurm_time() -> None:
    assert slurm_time(72 * 3600) == "72:00:00"
    assert slurm_time(600) == "00:10:00"
    assert slurm_time(2) == "00:00:02"
