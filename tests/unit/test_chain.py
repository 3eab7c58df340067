"""The chain's pure parts: `--then` steps parsed, and the status lines read from a chain's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.errors import UserError
from launcher.loop.chain import Step, chain_lines, parse_step, write_state


def test_steps_parse() -> None:
    assert parse_step("reeval") == Step("reeval", "reeval")
    assert parse_step("reeval=ds1.5b_eval") == Step("reeval=ds1.5b_eval", "reeval", "ds1.5b_eval")
    assert parse_step("reeval@2080ti") == Step("reeval@2080ti", "reeval", None, "2080ti")
    assert parse_step("reeval=e@c") == Step("reeval=e@c", "reeval", "e", "c")
    assert parse_step("bench") == Step("bench", "bench")
    for bad in ("bench=x", "reeval@", "eval", "reeval=@c", ""):
        with pytest.raises(UserError, match="not a step"):
            parse_step(bad)


def test_status_lines_from_the_files(tmp_path: Path) -> None:
    assert chain_lines(tmp_path) == []  # no launch.json: no chain
    (tmp_path / "launch.json").write_text(json.dumps({"run_id": "r", "then": ["reeval", "bench"]}))
    (tmp_path / "chain").mkdir()
    write_state(tmp_path, "waiting", reason="for training to end")
    assert chain_lines(tmp_path, "running") == [
        "chain: waiting (for training to end)",
        "chain steps: reeval, bench",
    ]
    assert chain_lines(tmp_path, "failed")[0] == "chain: not started (training failed)"
    assert chain_lines(tmp_path, "cancelled")[0] == "chain: not started (training cancelled)"
    write_state(tmp_path, "completed", reason="2 evaluation(s) completed", evals=["e1", "e2"], bench="b.md")
    assert chain_lines(tmp_path, "completed") == [
        "chain: completed (2 evaluation(s) completed)", "chain steps: reeval, bench",
        "chain evals: e1, e2", "chain bench: b.md",
    ]  # fmt: skip
