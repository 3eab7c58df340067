"""W&B offline runs and a loopback W&B server for `wandb sync` (tests.support.wandb_server)."""
