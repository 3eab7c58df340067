"""Send what W&B does not have yet of one run, through wandb's own client.

The run is resumed online (`wandb.init(id=..., resume="allow")`): wandb asks the server where the
run stands (RunResumeStatus: its history length and last step), and `run.starting_step` is the
first step the server does not hold. Only the history rows from that step on are logged, each
with its step, so the server places them after what it has: a second push sends nothing twice,
a push cut short is completed by the next, and N segments of a requeued run become one run.
The local files wandb writes while pushing go to a temporary directory (the offline segments are
the record; the server is the state). The summary gets the job's summary and the scheduler's
story (`launcher/...` keys, a `launcher:<state>` tag).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

from launcher.tracking.wandb_offline import Segment, history, summary
from launcher.tracking.wandb_reach import base_url

INIT_TIMEOUT_S = 30.0
"""How long wandb may take to resume the run on the server before the push fails."""
ENDED_BADLY = ("failed", "timeout", "cancelled")
"""Launcher states W&B shows as failed (exit code 1); any other leaves the run finished (0)."""
FINISH_TIMEOUT_S = 120.0
"""How long the rows may take to upload before the push fails (the next push sends what is missing)."""


@dataclass(frozen=True)
class Pushed:
    wandb_id: str
    sent: int
    """History rows sent by this push."""
    first: int | None
    """The first step sent (None: nothing was new)."""
    last: int | None
    """The last step W&B holds after this push."""


def push(segments: list[Segment], story: dict[str, Any], final: bool) -> Pushed:
    """Push the rows of `segments` (one W&B run, oldest first) that W&B lacks, and the summary with
    `story`. Unless `final` (the launcher run ended) or the newest segment finished, the rows of the
    newest step wait for the next push (the job may log more values at that step). Raises what
    wandb raises when the server refuses or does not answer within INIT_TIMEOUT_S (FINISH_TIMEOUT_S
    for the upload)."""
    # quiet: wandb's own lines (credentials loaded, telemetry refused) are not this verb's output
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    os.environ.pop("WANDB_SERVICE", None)  # this process's own wandb service, not a parent's
    import wandb

    first_seg, last_seg = segments[0], segments[-1]
    rows = history(segments)
    if not final and not last_seg.finished and rows:  # a finished segment's rows are all there
        newest = rows[-1][0]
        rows = [(step, row) for step, row in rows if step < newest]
    state = str(story.get("launcher/state") or "")
    tags = [t for t in last_seg.tags if not t.startswith("launcher:")]
    tags += [f"launcher:{state}"] if state else []
    settings = wandb.Settings(
        base_url=base_url(), init_timeout=INIT_TIMEOUT_S, console="off", x_disable_stats=True,
        x_disable_machine_info=True, save_code=False, disable_git=True, silent=True,
        x_file_stream_transmit_interval=1.0, finish_timeout=FINISH_TIMEOUT_S, finish_timeout_raises=True,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="launch-wandb-") as scratch:
        try:
            run = wandb.init(
                id=first_seg.wandb_id, project=first_seg.project or None, entity=first_seg.entity or None,
                group=first_seg.group or None, job_type=first_seg.job_type or None,
                name=first_seg.name or None, tags=tags, config=last_seg.config, resume="allow",
                mode="online", dir=scratch, settings=settings, reinit="create_new",
            )  # fmt: skip
        except BaseException:
            wandb.teardown()  # a run that failed to start keeps its id taken in the service: a new one
            raise
        try:
            start = int(run.starting_step)
            new = [(step, row) for step, row in rows if step >= start]
            for step, row in new:
                run.log(row, step=step)
            run.summary.update({**summary(segments), **story})
        finally:
            run.finish(exit_code=1 if state in ENDED_BADLY else 0)
    last = new[-1][0] if new else (start - 1 if start > 0 else None)
    return Pushed(first_seg.wandb_id, len(new), new[0][0] if new else None, last)
