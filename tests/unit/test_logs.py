"""`launch logs`' pure parts, with hand-checked values: the noise filter on a real log, tidying,
time stamps, merging by time, the merged backlog, the interrupted message."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.views.logs import Line, NoiseFilter, merge, merged_backlog, stamp, tasks_text, tidy
from tests.support.paths import FIXTURES

# A stretch of real task0.err files (tiny_ner on the local backend with W&B offline, a Ray eval,
# two lines of the job's own) and, hand-checked line by line, what `launch logs` shows of it.
LOGS = FIXTURES / "logs"


def _shown(text: str) -> list[str]:
    noise = NoiseFilter()
    return [tidy(line) for line in text.rstrip("\n").split("\n") if not noise.is_noise(line)]


def test_noise_filter_on_a_real_log() -> None:
    text = (LOGS / "tiny_ner.err").read_bytes().decode()
    assert _shown(text) == (LOGS / "tiny_ner.shown").read_text().splitlines()


def test_noise_filter_keeps_a_line_after_a_warning_that_is_not_its_source() -> None:
    text = "/x/site-packages/torch/a.py:3: DeprecationWarning: old\nstep 1/4\n"
    assert _shown(text) == ["step 1/4"]


def test_tidy_keeps_what_a_terminal_shows() -> None:
    assert tidy("\rLoading:   0%|\rLoading: 100%|") == "Loading: 100%|"
    assert tidy("plain") == "plain"
    assert tidy("done\r") == "done"


def test_stamp_takes_the_first_sample_that_reached_the_line_end() -> None:
    # lines of 4, 4 and 6 bytes (with newlines): ends at 4, 8, 14
    samples = [(10.0, 4), (10.2, 4), (10.4, 8), (10.6, 12)]
    assert stamp([4, 8, 14], samples, after=11.5) == [10.0, 10.4, 11.5]
    assert stamp([4], [], after=3.0) == [3.0]


def test_merge_orders_by_time_each_stream_in_its_order_stdout_first_on_ties() -> None:
    out = [Line("out", "o1", 1.0), Line("out", "o2", 2.0), Line("out", "o3", 2.0)]
    err = [Line("err", "e1", 0.5), Line("err", "e2", 2.0), Line("err", "e3", 1.5)]
    # e3 is earlier than e2 but stays after it: one stream's order is never changed
    assert [x.text for x in merge(out, err)] == ["e1", "o1", "o2", "o3", "e2", "e3"]


def test_merged_backlog_from_files_and_index(tmp_path: Path) -> None:
    out, err = tmp_path / "task0.out", tmp_path / "task0.err"
    out.write_text("a\nbb\n")  # ends 2, 5
    err.write_text("E1\nE2\npartial")  # ends 3, 6; the last line is still being written
    (tmp_path / "task0.times").write_text("100.0 2 0\n100.2 2 3\n100.4 5 3\n100.6 5 6\ntorn 1")
    lines = [(out, "a"), (out, "bb"), (err, "E1"), (err, "E2"), (err, "partial")]
    merged, read = merged_backlog(lines)
    assert [(x.stream, x.text) for x in merged] == [("out", "a"), ("err", "E1"), ("out", "bb"), ("err", "E2")]
    assert read == {out: 2, err: 2}


def test_interrupted_names_every_run_with_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from launcher.views.logs import interrupted

    assert interrupted(["ev-1", "ev-2"], "evaluation") == 130
    assert capsys.readouterr().err.splitlines() == [
        "",
        "interrupted: stopped following; the 2 evaluations go on (Ctrl-C does not cancel)",
        "  follow again: launch logs ev-1 -f",
        "  cancel:       launch cancel ev-1",
        "  follow again: launch logs ev-2 -f",
        "  cancel:       launch cancel ev-2",
    ]


def test_the_tasks_a_run_has_for_a_task_message() -> None:
    assert tasks_text([0]) == "has 1 task; valid: 0"
    assert tasks_text([1, 0]) == "has 2 tasks; valid: 0, 1"
    assert tasks_text([0, 1, 2, 3]) == "has 4 tasks; valid: 0-3"
    assert tasks_text([0, 2, 5]) == "has 3 tasks; valid: 0, 2, 5"
    assert tasks_text([]) == "has no task yet (it was not submitted)"
