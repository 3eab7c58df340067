"""The `launch` command line: the typer app, one module per group of verbs, and `main`.

Modules (the verb modules are imported in the order `launch --help` lists their verbs):

- `common`: what every verb module shares: the typer app, the common options, the consoles.
- `project`: `launch init`: make a directory a project with a recipe and a profile of this machine.
- `submit`: verbs that check and submit recipes: recipe, plan, recipes, clusters, show.
- `observe`: verbs that look at runs or stop them: status, logs, cancel.
- `sync`: `launch sync`: upload a run to its artifact store, or sync offline W&B runs.
- `loop`: the research loop's verbs: score, reeval, bench, sweep, compare.
- `snapshots`: `launch snapshots`: the code snapshots beside the runs; `--prune` removes unused ones.
- `doctor`: `launch doctor`: the registry's file, filesystem and journal; `--rebuild-registry`.
- `follow`: the `--follow` loops shared by `recipe` and `reeval`.

Heavy modules (torch, W&B, the backends) are imported inside the verbs: `launch --help` stays fast.
"""

from __future__ import annotations

import signal
import sys

from launcher.cli.common import app, console
from launcher.errors import SetupError, UserError

# importing a verb module registers its verbs; this order is the order of `launch --help`
# isort: off
from launcher.cli import project  # noqa: F401
from launcher.cli import submit  # noqa: F401
from launcher.cli import observe
from launcher.cli import sync  # noqa: F401
from launcher.cli import loop  # noqa: F401
from launcher.cli import snapshots  # noqa: F401
from launcher.cli import doctor  # noqa: F401

# isort: on

__all__ = ["main"]


def _fail(message: object, code: int) -> None:
    sys.stderr.write("".join(f"error: {line}\n" for line in str(message).splitlines() or [""]))
    sys.exit(code)


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM or SIGHUP: leave the way an error does (SystemExit runs every clean-up path, so a
    submit that was stopped half-way leaves no `submitting` row), then exit 128 + signum."""
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: user mistakes become one line on stderr (one per error) and exit code 2;
    a problem of this machine (disk, permissions, a damaged registry) one line and exit code 1."""
    import sqlite3

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminated)

    try:
        if not observe.fast_status(sys.argv[1:]):
            app()
    except UserError as err:
        plan = getattr(err, "plan", None)
        if plan is not None:
            from launcher.plan import render_plan

            console(stderr=True).print(render_plan(plan))
        _fail(err, err.exit_code)
    except SetupError as err:
        _fail(err, err.exit_code)
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err}", 1)
    except sqlite3.DatabaseError as err:
        _fail(f"the run registry ($LAUNCH_HOME/registry.db) cannot be used: {err}", 1)
    except KeyboardInterrupt:
        sys.exit(130)
