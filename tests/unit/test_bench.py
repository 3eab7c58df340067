"""The bench table and pictures tell the truth: ran-here vs published rows, F1 on 0..1 from step 0
with each curve's sample size, and the training loss read from the run's files (fast: no model)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt

from launcher.runs.checkpoints import mark_complete
from launcher.runs.history import training_history
from launcher.scoring import bench, plots


def _row(step: int, f1: float, n: int, eval_name: str = "tiny_ner_eval", run: str = "r1") -> bench.Row:
    return bench.Row("tiny://qwen2-gmb", "", f1, f1, f1, "entity", "", run=run,
                     checkpoint=f"checkpoint-{step}", step=step, eval=eval_name, n=n)  # fmt: skip


def test_f1_axis_is_0_to_1_from_step_0_and_the_legend_gives_the_sample_size() -> None:
    rows = [_row(0, 0.02, 60), _row(10, 0.05, 60), _row(20, 0.06, 60), _row(10, 0.04, 16, "other"),
            *bench.PUBLISHED]  # fmt: skip
    curves = bench.f1_curves(rows)
    assert set(curves) == {"r1 tiny_ner_eval", "r1 other"}  # one curve per (run, eval recipe)
    fig = plots.f1_figure(curves)
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 1.0) and ax.get_xlim()[0] == 0
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["r1 tiny_ner_eval (n=60)"].get_xdata()) == [0, 10, 20]  # the step-0 point is drawn
    assert list(lines["r1 tiny_ner_eval (n=60)"].get_ydata()) == [0.02, 0.05, 0.06]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
        "r1 other (n=16)", "r1 tiny_ner_eval (n=60)"]  # fmt: skip
    plt.close(fig)
    assert plots.sample_label([16, 60, None]) == "n=16-60" and plots.sample_label([None]) == "n=?"


def test_table_marks_rows_ran_here_and_published(tmp_path: Path) -> None:
    rows = [_row(10, 0.5, 60), *bench.PUBLISHED]
    md = bench.markdown(rows)
    assert md.startswith("| model | size | precision | recall | F1 | level | n | source | notes |")
    assert md.count("| 60 | ran here |") == 1 and md.count("| published |") == len(bench.PUBLISHED)
    assert md.rstrip().endswith(bench.LEGEND)
    assert "| 1000 | published |" in md  # the research's seed metric on its 1,000 outputs


def _run(tmp_path: Path, name: str) -> Path:
    run_dir = tmp_path / name
    (run_dir / "results").mkdir(parents=True)
    return run_dir


def test_loss_history_sources_in_order(tmp_path: Path) -> None:
    summary = _run(tmp_path, "summary")
    (summary / "results" / "train.json").write_text(json.dumps({"seconds": 12.5, "history": [
        {"step": 2, "loss": 3.0, "useful_tokens_per_s": 100.0},
        {"step": 4, "loss": 2.0, "useful_tokens_per_s": 300.0},
        {"step": 4, "eval_loss": 9.0}]}))  # fmt: skip
    h = training_history(summary)
    assert [(p.step, p.loss) for p in h.points] == [(2, 3.0), (4, 2.0)] and h.source == "results/train.json"
    assert h.final_loss == 2.0 and h.tokens_per_s == 200.0 and h.summary["seconds"] == 12.5

    running = _run(tmp_path, "running")  # no train.json yet: the latest checkpoint's trainer state
    for step, losses in ((2, [4.0]), (4, [4.0, 3.5])):
        ckpt = running / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        history = [{"step": 2 * (i + 1), "loss": v} for i, v in enumerate(losses)]
        (ckpt / "trainer_state.json").write_text(json.dumps({"log_history": history}))
        mark_complete(ckpt, step=step)
    h = training_history(running)
    assert [p.loss for p in h.points] == [
        4.0,
        3.5,
    ] and h.source == "checkpoints/checkpoint-4/trainer_state.json"

    fresh = _run(tmp_path, "fresh")
    (fresh / "progress.json").write_text(json.dumps({"step": 3, "loss": 5.0, "tokens_per_s": 50.0}))
    h = training_history(fresh)
    assert [(p.step, p.loss, p.tokens_per_s) for p in h.points] == [(3, 5.0, 50.0)]
    assert training_history(_run(tmp_path, "empty")).points == []

    spacy = _run(tmp_path, "spacy")  # spaCy's summary: one entry per epoch, the epoch is the step
    (spacy / "results" / "train.json").write_text(json.dumps({"history": [{"epoch": 1, "loss": 80.0}]}))
    assert [(p.step, p.loss) for p in training_history(spacy).points] == [(1, 80.0)]

    fig = plots.loss_figure({d.name: training_history(d) for d in (summary, running, fresh)})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["summary", "running", "fresh"]
    assert ax.get_xlim()[0] == 0 and ax.get_ylabel() == "training loss"
    plt.close(fig)


def test_write_makes_both_pictures(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "r1")
    (run_dir / "results" / "train.json").write_text(json.dumps({"history": [{"step": 1, "loss": 1.0}]}))
    files = bench.write([_row(10, 0.5, 60), *bench.PUBLISHED], tmp_path / "out", [run_dir])
    for key in ("png", "loss_png"):
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files["loss_png"].name == "loss_by_step.png"
