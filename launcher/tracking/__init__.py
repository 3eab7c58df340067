"""W&B: the mode a run logs in, secret redaction, and syncing offline runs.

Modules:

- `wandb_mode`: W&B mode resolution and secret redaction (the one redaction function of the project).
- `wandb_reach`: whether W&B answers: a short probe of WANDB_BASE_URL before waiting on it.
- `wandb_sync`: `launch sync --wandb`: upload the offline W&B runs of runs, a sweep, or everything.
"""
