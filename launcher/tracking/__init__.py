"""W&B: the mode a run logs in, secret redaction, and bringing offline runs up to date on W&B.

Modules:

- `wandb_mode`: W&B mode resolution and secret redaction (the one redaction function of the project).
- `wandb_reach`: whether W&B answers: a short probe of WANDB_BASE_URL before waiting on it.
- `wandb_offline`: offline W&B runs read back from their files; one history from a run's segments.
- `wandb_push`: send W&B what it lacks of one run, through wandb's own client (resume, new steps only).
- `wandb_sync`: `launch sync --wandb [--follow]`: which runs, when to push, what each pass did.
"""

STATE_FILE = "wandb-sync.json"
"""What the last W&B sync pass did for a run (`wandb_sync`), named here so that `launch status` can
look for it without importing the sync."""
