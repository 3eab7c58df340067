"""One W&B history from a run's offline segments, a transaction log still being written, a node's mode."""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from launcher.tracking.wandb_mode import node_mode
from launcher.tracking.wandb_offline import Segment, _payloads, history, step_of


def _seg(*rows: Mapping[str, object]) -> Segment:
    return Segment(Path("x"), rows=[dict(r) for r in rows])


def test_a_requeued_run_is_every_step_once_the_first_row_of_a_step_winning() -> None:
    # the first start logged steps 1-5 (an eval at 5), was checkpointed at 3, and resumed: 4-7 again
    first = _seg(*({"loss": 10 - s, "train/global_step": s, "_step": s - 1} for s in range(1, 6)),
                 {"eval/loss": 0.5, "train/global_step": 5, "_step": 5})  # fmt: skip
    second = _seg(*({"loss": 20 - s, "train/global_step": s, "_step": s - 4} for s in range(4, 8)))
    rows = history([first, second])
    assert [step for step, _ in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[4] == (5, {"loss": 5, "train/global_step": 5, "eval/loss": 0.5})  # the first start's
    assert rows[5] == (6, {"loss": 14, "train/global_step": 6})  # the resumed start's


def test_rows_without_a_training_step_follow_each_other() -> None:
    rows = history([_seg({"acc": 0.5}, {"acc": 0.7}), _seg({"acc": 0.9})])
    assert rows == [(0, {"acc": 0.5}), (1, {"acc": 0.7}), (2, {"acc": 0.9})]


def test_the_step_is_the_trainers_global_step_when_it_is_a_whole_number() -> None:
    assert step_of({"train/global_step": 12.0}) == 12
    assert step_of({"train/global_step": 1.5}) is None and step_of({"loss": 1}) is None
    assert step_of({"global_step": True}) is None


def _record(kind: int, data: bytes) -> bytes:
    return struct.pack("<IHB", 0, len(data), kind) + data


def test_a_log_cut_inside_a_record_ends_before_it() -> None:
    header = b":W&B" + b"\x00\x00\x00"
    whole = header + _record(1, b"one") + _record(2, b"tw") + _record(4, b"o") + _record(1, b"three")
    assert _payloads(whole) == [b"one", b"two", b"three"]
    assert _payloads(whole[:-2]) == [b"one", b"two"]  # the last record is still being written
    assert _payloads(header + _record(2, b"tw")) == []  # a record split across blocks, half there
    assert _payloads(b"") == [] and _payloads(header + b"\x00" * 20) == []


def test_a_node_logs_online_offline_or_tries_once_as_its_profile_says() -> None:
    asked: list[int] = []

    def unreachable(why: str | None) -> Callable[[], str | None]:
        return lambda: asked.append(1) or why  # type: ignore[func-returns-value]

    key = {"WANDB_API_KEY": "k" * 40}
    never = unreachable("must not be asked")
    assert node_mode("offline", "online", never, key) == ("offline", None)  # the recipe's own mode wins
    assert node_mode("auto", "auto", never, {**key, "WANDB_MODE": "online"}) == ("online", None)
    assert node_mode("auto", "online", never, {}) == ("offline", None)  # no key: offline
    assert node_mode("auto", "offline", never, key) == ("offline", None)
    assert node_mode("auto", "online", never, key) == ("online", None) and not asked
    assert node_mode("auto", "auto", unreachable(None), key) == ("online", None) and asked == [1]
    mode, line = node_mode("auto", "auto", unreachable("W&B at http://h cannot be reached (timed out)"), key)
    assert mode == "offline" and line == (
        "W&B: W&B at http://h cannot be reached (timed out); logging offline "
        "(launch sync --wandb sends it from the login node)"
    )


def test_a_failed_push_is_one_redacted_line_with_its_http_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from launcher.tracking.wandb_sync import _one_line

    key = "k" * 40
    monkeypatch.setenv("WANDB_API_KEY", key)
    line = _one_line(RuntimeError(f"error 403: permission denied for key {key}\nmore"))
    assert line.startswith("HTTP 403: error 403: permission denied for key ") and key not in line
