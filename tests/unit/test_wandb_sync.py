"""`launch sync --wandb` runs wandb's own sync."""

from __future__ import annotations

import sys
from pathlib import Path

from launcher.tracking import wandb_sync


def test_the_invocation_is_wandbs_own_sync() -> None:
    dirs = [Path("/r/a/wandb/offline-run-1-x"), Path("/r/b/wandb/offline-run-2-y")]
    assert wandb_sync.command(dirs) == [sys.executable, "-m", "wandb", "sync", *map(str, dirs)]
