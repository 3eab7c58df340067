"""Uploads from inside a job: one background thread sends the run's units to its artifact store.

Training never waits for the store while it trains: a checkpoint is queued once its COMPLETE
marker is written and sent while the next steps run. A failed upload never fails the job or
touches the local copy: it is recorded as pending in `uploads.json` (launcher.artifacts.uploads) and
printed as one line; `launch sync RUN` sends it later. After a failure the store is left alone
for `LAUNCH_S3_COOLDOWN` seconds (default 300): units queued meanwhile are recorded as pending
without waiting out more timeouts. Only rank 0 uploads.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from launcher.artifacts.uploads import Ledger, Unit, run_id_of, store_for, units, upload_state, upload_unit
from launcher.config.recipe import Recipe
from launcher.runs.checkpoints import checkpoint_name, is_complete


class BackgroundUploader:
    """Send units to the run's store on a daemon thread, in the order they are submitted."""

    def __init__(self, recipe: Recipe, run_dir: Path, log: Callable[[str], None] | None = None) -> None:
        self.recipe, self.run_dir = recipe, run_dir
        self.log = log or (lambda line: print(line, flush=True))
        rank0 = int(os.environ.get("RANK", "0")) == 0
        self.store = store_for(recipe, run_dir) if rank0 else None
        self.cooldown_s = float(os.environ.get("LAUNCH_S3_COOLDOWN", "300"))
        self._queue: queue.Queue[Unit | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._broken_until = 0.0
        self._last_error = ""

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def submit(self, rel: str) -> None:
        """Queue the unit at `rel` (relative to the run directory); returns at once."""
        if self.store is None:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="uploads", daemon=True)
            self._thread.start()
        self._queue.put(Unit(rel, (self.run_dir / rel).is_dir()))

    def submit_pending(self) -> None:
        """Queue the run files and every unit not uploaded yet (e.g. from before a requeue)."""
        if self.store is None:
            return
        pending = set(upload_state(self.run_dir, self.recipe).pending)
        for unit in units(self.run_dir, self.recipe):
            if unit.is_meta or unit.rel in pending:
                self.submit(unit.rel)

    def finish(self, timeout: float | None = None) -> list[str]:
        """Queue what is still pending, wait (at most `timeout` s) and say what did not make it."""
        if self.store is None:
            return []
        self.submit_pending()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        state = upload_state(self.run_dir, self.recipe)
        if state.pending:
            self.log(f"upload: {state.summary(run_id_of(self.run_dir))}")
        else:
            self.log(f"upload: everything is in {state.uri}")
        return state.pending

    def _run(self) -> None:
        assert self.store is not None
        while (unit := self._queue.get()) is not None:
            if time.monotonic() < self._broken_until:
                Ledger(self.run_dir).record(
                    unit.rel, self.store.child(run_id_of(self.run_dir)), state="failed",
                    error=f"not tried after an earlier failure: {self._last_error}",
                )  # fmt: skip
                continue
            started = time.monotonic()
            try:
                outcome = upload_unit(self.run_dir, unit, self.store)
            except Exception as err:  # never let the store take training down
                self.log(f"upload: {unit.rel}: unexpected {type(err).__name__}; recorded as pending")
                Ledger(self.run_dir).record(unit.rel, state="failed", error=type(err).__name__)
                continue
            if outcome.ok:
                if outcome.sent:
                    self.log(
                        f"upload: {unit.rel} -> {self.store.child(run_id_of(self.run_dir), unit.rel)} "
                        f"({outcome.files} file(s), {outcome.bytes / 2**20:.1f} MiB, "
                        f"{time.monotonic() - started:.1f}s)"
                    )
                continue
            self._last_error = outcome.error or "?"
            self._broken_until = time.monotonic() + self.cooldown_s
            self.log(
                f"upload: {unit.rel} failed: {outcome.error}; the local copy is intact and the unit is "
                f"recorded as pending upload (launch sync {run_id_of(self.run_dir)})"
            )


def upload_callback(uploader: BackgroundUploader) -> Any:
    """A TrainerCallback that queues each checkpoint once MarkComplete has marked it (put it after
    MarkComplete in the Trainer's callbacks)."""
    from transformers import TrainerCallback

    class UploadCheckpoints(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            rel = f"checkpoints/{checkpoint_name(state.global_step)}"
            if is_complete(uploader.run_dir / rel):
                uploader.submit(rel)

    return UploadCheckpoints()
