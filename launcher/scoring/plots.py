"""The pictures `launch bench` and `launch compare` draw: F1 by checkpoint step, loss by step.

F1 is drawn on a fixed 0..1 axis from step 0, so one more true positive on 60 sentences does not
look like learning; each curve's legend entry gives its evaluation's sample size. A step-0 point
is drawn when a checkpoint-0 result exists (the untrained model's score). matplotlib (Agg) only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from launcher.runs.history import History


Curve = Sequence[tuple[int, float, int | None]]
"""(step, F1, sample size) points of one curve."""


def _headless() -> None:
    """Select matplotlib's Agg backend; pyplot is imported late, after this."""
    import matplotlib

    matplotlib.use("Agg")


def sample_label(sizes: Sequence[int | None]) -> str:
    """`n=60`; `n=16-60` when the points differ; `n=?` when no point says."""
    known = sorted({s for s in sizes if s is not None})
    if not known:
        return "n=?"
    return f"n={known[0]}" if len(known) == 1 else f"n={known[0]}-{known[-1]}"


def draw_f1(ax: Axes, curves: Mapping[str, Curve]) -> None:
    """One line per curve, F1 axis 0..1, steps from 0, legend `<name> (n=...)`."""
    for name, points in curves.items():
        points = sorted(points)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", clip_on=False,  # F1 0 shows
                label=f"{name} ({sample_label([p[2] for p in points])})")  # fmt: skip
    ax.set_ylim(0.0, 1.0)
    _finish(ax, ("checkpoint step", "strict entity F1", "F1 by checkpoint step"), bool(curves),
            "no evaluated checkpoints")  # fmt: skip


def draw_loss(ax: Axes, histories: Mapping[str, History]) -> None:
    """Training loss by step, one line per run (runs without a logged loss are left out)."""
    drawn = {name: h for name, h in histories.items() if h.points}
    for name, h in drawn.items():
        ax.plot([p.step for p in h.points], [p.loss for p in h.points], label=name)
    ax.set_ylim(bottom=0)
    _finish(ax, ("training step", "training loss", "training loss by step"), bool(drawn),
            "no training loss logged")  # fmt: skip


def _finish(ax: Axes, labels: tuple[str, str, str], drawn: bool, empty: str) -> None:
    """x from step 0, the (x label, y label, title), a grid, and the legend or what is missing."""
    ax.set_xlim(left=0)
    xlabel, ylabel, title = labels
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)


def f1_figure(curves: Mapping[str, Curve]) -> Figure:
    _headless()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    draw_f1(ax, curves)
    fig.tight_layout()
    return fig


def loss_figure(histories: Mapping[str, History]) -> Figure:
    _headless()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    draw_loss(ax, histories)
    fig.tight_layout()
    return fig


def both_figure(curves: Mapping[str, Curve], histories: Mapping[str, History]) -> Figure:
    """Loss (left) and F1 (right) side by side: `launch compare --png`."""
    _headless()
    import matplotlib.pyplot as plt

    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(13, 4.5), dpi=100)
    draw_loss(loss_ax, histories)
    draw_f1(f1_ax, curves)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: Path) -> Path:
    _headless()
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)
    return path
