"""`launch compare` on real tiny training runs: the differing keys, the metrics, the loss/F1 picture."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess]

TRAIN = ["--set", "train.max_steps=6", "--set", "train.save_steps=6", "--set", "data.max_train_samples=24",
         "--set", "train.logging_steps=2"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(run: Run) -> list[str]:
    ids = []
    for lr in ("3.0e-3", "1.0e-3"):
        proc = run("recipe", "tiny_ner", "--cluster", "local", "--follow", *TRAIN, "--set", f"train.lr={lr}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        ids.append(proc.stdout.split()[0])
    done = run("reeval", ids[0], "--cluster", "local", "--follow", "--set", "eval.max_samples=4",
               "--set", "eval.max_new_tokens=16")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return ids


@pytest.mark.slow
def test_compare_shows_the_differing_keys_and_the_metrics(
    runs: list[str], run: Run, env: dict[str, str]
) -> None:
    proc = run("compare", *runs)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    keys = [line.split()[1] for line in lines if line.startswith("│ ") and "." in line.split()[1]]
    assert "train.lr" in keys and "train.max_steps" not in keys  # the same in both: not shown
    lr_row = next(line for line in lines if "train.lr" in line)
    assert "0.003" in lr_row and "0.001" in lr_row
    best = next(line for line in lines if "best strict F1" in line).split("│")
    first = json.loads(next(Path(env["LAUNCH_RUNS"], runs[0]).glob("results/*/*/metrics.json")).read_text())
    assert best[2].strip() == f"{first['strict']['f1']:.4f}" and best[3].strip() == "—"  # not evaluated
    assert "6" in next(line for line in lines if "at step" in line)
    summary = json.loads(Path(env["LAUNCH_RUNS"], runs[1], "results", "train.json").read_text())
    loss = next(line for line in lines if "final loss" in line).split("│")
    assert loss[3].strip() == f"{summary['history'][-1]['loss']:.4f}"
    for metric in ("tokens/s", "train time", "wall time"):
        cells = next(line for line in lines if metric in line).split("│")[2:4]
        assert all(c.strip() not in ("", "—") for c in cells), (metric, cells)


@pytest.mark.slow
def test_compare_png_has_loss_and_f1(runs: list[str], run: Run, tmp_path: Path) -> None:
    png = tmp_path / "out" / "compare.png"
    proc = run("compare", *runs, "--png", str(png))
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in proc.stderr


@pytest.mark.slow
def test_bad_run_ids_are_one_line_exit_2(runs: list[str], run: Run) -> None:
    for args, needle in (([runs[0], "nope-run"], "unknown run 'nope-run'"), ([runs[0]], "two or more runs")):
        proc = run("compare", *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
