"""The `launch` command line: the typer app and one module per group of verbs.

Modules:

- `common`: What every `launch` verb module shares: the typer app, the common options, the console.
- `loop`: The research loop's verbs: score, reeval, bench, sweep, compare (registered on the one app).
- `verbs`: `launch`: one thin function per verb. Heavy modules are imported inside the verbs; the research
  loop's verbs live in `launcher/cli/loop.py`, the app and shared options in `launcher/cli/common.py`.
"""

from launcher.cli.verbs import main

__all__ = ["main"]
