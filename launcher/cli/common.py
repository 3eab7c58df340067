"""What every `launch` verb module shares: the typer app, the common options, the consoles."""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Annotated, Optional, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="launch",
    help="Launch LLM fine-tuning and evaluation recipes on Slurm, Ray or this machine.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ClusterOpt = Annotated[str, typer.Option("--cluster", "-c", help="cluster profile: name or YAML path")]
ThenOpt = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
    typer.Option(
        "--then", metavar="STEP", help="after training completed: reeval[=EVAL_RECIPE][@CLUSTER], then bench"
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="submit even if the planner says no fit or it is over the profile's limits.max_gpu_hours",
    ),
]
LiveCodeOpt = Annotated[
    bool,
    typer.Option(
        "--live-code",
        help="run the launcher and jobs packages where they are, not a snapshot (debugging: a queued "
        "or requeued job runs whatever is there when it starts)",
    ),
]
SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
    typer.Option(
        "--set", metavar="KEY=VALUE", help="override a recipe key, value read as YAML: --set train.lr=1e-5"
    ),
]


def _version(value: bool) -> None:
    if value:
        from launcher.views.logs import version

        print(f"launch (recipe-launcher) {version()}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Launch LLM fine-tuning and evaluation recipes on Slurm, Ray or this machine."""


def console(stderr: bool = False) -> Console:
    """Rich console that prints text as it is: a `[` in a path or a run id is never markup."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, markup=False)


def wide_console() -> Console:
    """The stdout console for wide tables: a file or pipe gets them unwrapped (at least 160 columns)."""
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 160)
    return out


def terminal(stream: TextIO) -> bool:
    """Whether rich's Console would treat `stream` as a terminal (TTY_COMPATIBLE, FORCE_COLOR, else
    isatty), without importing rich."""
    forced = os.environ.get("TTY_COMPATIBLE", "")
    if forced in ("0", "1"):
        return forced == "1"
    if os.environ.get("FORCE_COLOR") is not None:
        return os.environ["FORCE_COLOR"] != ""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def plain_width() -> int | None:
    """The width `console()` has when stdout is no terminal (its lines are then printed as plain
    text: no styles, as rich would print them); None on a terminal."""
    if terminal(sys.stdout):
        return None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except (AttributeError, ValueError, OSError):
            continue
    return 80


def spinner(text: str) -> AbstractContextManager[object]:
    """rich's status spinner on stderr while `text` is done; nothing when stderr is no terminal
    (where rich shows none either)."""
    if not terminal(sys.stderr):
        return nullcontext()
    return console(stderr=True).status(text)
