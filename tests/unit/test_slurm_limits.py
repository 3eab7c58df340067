"""Issue 24, items 2 and 3, the pure parts: arrays that fit MaxArraySize, the submit limit read from
sacctmgr's text, scancel's compact ids, the follow back-off, and the shared squeue answer's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.backends.base import backoff
from launcher.backends.slurm.backend import scancel_ids
from launcher.backends.slurm.limits import ArrayPart, parse_config, parse_submit_limit, plan_arrays
from launcher.backends.slurm.parse import parse_squeue
from launcher.backends.slurm.queue import SharedQueue, with_arrays


def test_1200_tasks_throttled_to_4_are_two_chained_arrays() -> None:
    assert plan_arrays(1200, 1001, 4) == [ArrayPart(0, 1001, 4, False), ArrayPart(1001, 1200, 4, True)]


def test_2500_tasks_are_three_arrays_and_unthrottled_ones_run_side_by_side() -> None:
    assert [(p.start, p.size, p.after_previous) for p in plan_arrays(2500, 1001, 8)] == [
        (0, 1001, False), (1001, 1001, True), (2002, 498, True)
    ]  # fmt: skip
    assert plan_arrays(2500, 1001, 5000) == [
        ArrayPart(0, 1001, 1001, False), ArrayPart(1001, 2002, 1001, False), ArrayPart(2002, 2500, 498, False)
    ]  # fmt: skip
    assert plan_arrays(4, 1001, 2) == [ArrayPart(0, 4, 2, False)]
    assert plan_arrays(0, 1001, 2) == []


def test_scontrol_config_lines() -> None:
    text = (
        "Configuration data as of 2026-12-06T09:00:00\nMaxArraySize            = 1001\nMaxJobCount = 10000\n"
    )
    assert parse_config(text) == {"MaxArraySize": "1001", "MaxJobCount": "10000"}


def test_submit_limit_is_the_least_of_association_and_qos() -> None:
    qos = "normal|40\nlong|\nshort|12\n"
    assert parse_submit_limit("||\n", qos, None) == (40, "QOS normal MaxSubmitJobsPerUser")
    assert parse_submit_limit("20||short\n", qos, None) == (12, "QOS short MaxSubmitJobsPerUser")
    assert parse_submit_limit("20|30|\n", qos, "long") == (20, "association MaxSubmitJobs")
    assert parse_submit_limit("|7|\n", "", None) == (7, "association GrpSubmitJobs")
    assert parse_submit_limit("", "normal|\n", None) == (None, "")


def test_scancel_ids_compact_each_array_latest_first() -> None:
    ids = ["433_0", "433_1", "433_2", "433_7", "434_0", "434_1", "99"]
    assert scancel_ids(ids) == ["434_[0-1]", "433_[0-2,7]", "99"]


def test_follow_backs_off_to_a_tenth_of_the_time_unchanged() -> None:
    assert [backoff(s, 2.0) for s in (0, 10, 60, 120, 3600)] == [2.0, 2.0, 6.0, 12.0, 30.0]


def test_a_shared_answer_serves_the_interval_and_a_new_id_asks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAUNCH_HOME", str(tmp_path))
    asked: list[str] = []

    def squeue() -> str:
        asked.append("squeue")
        return "5_0|PENDING|JobHeldUser|0||0|\n6|RUNNING|None|0|dev-n1|0|\n"

    def sacct(ids: list[str]) -> str:
        asked.append("sacct " + ",".join(ids))
        return ""

    queue = SharedQueue("dev", 60)
    assert queue.infos(["5_0", "6"], squeue, sacct)["6"].state == "RUNNING"
    assert SharedQueue("dev", 60).infos(["6"], squeue, sacct)["5_0"].state == "PENDING"
    assert asked == ["squeue"]  # the second process read the first one's answer
    SharedQueue("dev", 60).infos(["6", "7"], squeue, sacct)  # 7: not in the answer, so asked
    assert asked == ["squeue", "squeue", "sacct 7"]
    SharedQueue("dev", 60).infos(["7"], squeue, sacct)  # accounting was asked about 7 already
    SharedQueue("dev", 60).infos(["6"], squeue, sacct, fresh=True)
    SharedQueue("dev", 0).infos(["6"], squeue, sacct)
    assert asked == ["squeue", "squeue", "sacct 7", "squeue", "squeue"]


def test_tasks_of_an_array_cancelled_before_they_started_are_its_one_record() -> None:
    """squeue -r -t all after `scancel 546` of a held array: `546|CANCELLED|...`, no task ids."""
    infos = with_arrays(["546_0", "546_2", "547_0"], parse_squeue("546|CANCELLED|None|0||0|\n"))
    assert infos["546_0"].state == infos["546_2"].state == "CANCELLED" and "547_0" not in infos
