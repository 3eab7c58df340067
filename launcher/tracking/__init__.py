"""W&B: the mode a run logs in, secret redaction, and syncing offline runs.

Modules:

- `wandb_mode`: W&B mode resolution and secret redaction.
- `wandb_sync`: `launch sync --wandb`: upload the offline W&B runs of runs, a sweep, or everything.
"""
