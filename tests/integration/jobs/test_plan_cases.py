"""The planner's optimizer case in the job itself: jobs.train hands `train.optim` to the Trainer."""

from __future__ import annotations

from pathlib import Path

from launcher.config.recipe import load_recipe


def test_the_job_hands_train_optim_to_the_trainer(tmp_path: Path) -> None:
    """One key for both halves: what jobs/trainer.py gives TrainingArguments is what was planned."""
    import inspect

    import torch
    from transformers import TrainingArguments

    from jobs.trainer import training_arguments

    trainer_default = inspect.signature(TrainingArguments.__init__).parameters["optim"].default
    default = training_arguments(load_recipe("tiny_ner"), tmp_path, torch.float32, report_wandb=False)
    assert default.optim == trainer_default == load_recipe("tiny_ner").train.optim == "adamw_torch_fused"
    chosen = load_recipe("tiny_ner", ["train.optim=adamw_torch"])
    assert training_arguments(chosen, tmp_path, torch.float32, report_wandb=False).optim == "adamw_torch"
