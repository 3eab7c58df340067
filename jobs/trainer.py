"""The HF Trainer around a recipe, shared by the train and token_classification jobs: its
TrainingArguments, resuming from the latest complete checkpoint (checkpoint-0 saved first when the
recipe asks), and results/train.json."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from launcher.config.recipe import Recipe
from launcher.runs.checkpoints import (
    checkpoint_dir,
    complete_checkpoints,
    is_complete,
    latest_complete,
    mark_complete,
    step_of,
)


def drop_incomplete_checkpoints(checkpoints: Path) -> None:
    """A checkpoint without its COMPLETE marker was cut short: it must never be resumed from."""
    if not checkpoints.is_dir():
        return
    for path in checkpoints.iterdir():
        if path.is_dir() and step_of(path) is not None and not is_complete(path):
            print(f"removing incomplete {path.name}", flush=True)
            shutil.rmtree(path, ignore_errors=True)


def training_arguments(recipe: Recipe, run_dir: Path, dtype: Any, report_wandb: bool) -> Any:
    import torch
    from transformers import TrainingArguments

    t = recipe.train
    on_gpu = torch.cuda.is_available()
    options = inspect.signature(TrainingArguments.__init__).parameters
    kwargs: dict[str, Any] = {
        "output_dir": str(run_dir / "checkpoints"),
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps or -1,
        "per_device_train_batch_size": t.micro_batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "learning_rate": t.lr,
        "weight_decay": t.weight_decay,
        "lr_scheduler_type": t.lr_scheduler,
        "logging_steps": t.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "bf16": dtype == torch.bfloat16,  # on CPU too: autocast, 2.3x fp32 tokens/s (SmolLM2-135M)
        "fp16": on_gpu and dtype == torch.float16,
        "gradient_checkpointing": bool(t.gradient_checkpointing),  # "offload" is refused for this engine
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if t.gradient_checkpointing else None,
        "optim": t.optim,  # the planner sizes the same key (launcher/plan/workload.py)
        "seed": t.seed,
        "data_seed": t.seed,
        "full_determinism": t.deterministic,
        "report_to": ["wandb"] if report_wandb else [],
        "run_name": run_dir.name,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "ddp_find_unused_parameters": False,
        "use_cpu": not on_gpu,
    }
    if "warmup_ratio" in options:
        kwargs["warmup_ratio"] = t.warmup_ratio
    else:
        kwargs["warmup_steps"] = t.warmup_ratio
    if not t.packing:
        if "train_sampling_strategy" in options:
            kwargs["train_sampling_strategy"] = "group_by_length"
        else:
            kwargs["group_by_length"] = True
    deepspeed = recipe.distributed.strategy == "deepspeed"
    if deepspeed:
        kwargs["deepspeed"] = str(run_dir / "deepspeed.json")
        if not on_gpu:
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
    args = TrainingArguments(**kwargs)
    if deepspeed and not on_gpu and torch.distributed.is_initialized():
        # use_cpu made a gloo group that DeepSpeed adopts only in the Trainer; ZeRO-3 partitions
        # while the model loads, before that, and would take the world for 1 (a batch-size mismatch)
        import deepspeed as ds  # type: ignore[import-untyped]

        ds.init_distributed(dist_backend="gloo")
    return args


def resume_and_train(
    trainer: Any, run_dir: Path, uploader: Any, save_step0: bool = False
) -> tuple[Any, float]:
    """Drop checkpoints cut short, re-send uploads still pending, save checkpoint-0 when asked and
    not there yet, then train from the latest complete checkpoint after step 0 (or from scratch:
    the same thing as from checkpoint-0, which holds no optimizer state). Returns the Trainer's
    result and the seconds training took."""
    drop_incomplete_checkpoints(run_dir / "checkpoints")
    uploader.submit_pending()
    if save_step0 and not is_complete(checkpoint_dir(run_dir, 0)):
        save_initial(trainer, checkpoint_dir(run_dir, 0), uploader)
    resume = latest_complete(run_dir)
    if resume is not None and step_of(resume) == 0:
        resume = None
    print(f"resuming from {resume.name}" if resume else "starting from scratch", flush=True)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return result, time.time() - started


def save_initial(trainer: Any, path: Path, uploader: Any) -> None:
    """checkpoint-0: the model and tokenizer before any step (as `Trainer.save_model` writes them,
    so every evaluator loads it like any other checkpoint) and the Trainer's state, marked COMPLETE
    and queued for upload like the checkpoints the Trainer saves."""
    trainer.save_model(str(path))
    if trainer.is_world_process_zero():
        trainer.state.save_to_json(str(path / "trainer_state.json"))
        mark_complete(path, step=0, loss=None)
        uploader.submit(f"checkpoints/{path.name}")
        print(f"saved {path.name} (the model before training)", flush=True)


def write_summary(
    run_dir: Path, trainer: Any, result: Any, seconds: float, samples: int, tokens: int, truncated: int
) -> None:
    history = [
        {k: v for k, v in e.items() if k in ("step", "loss", "learning_rate", "useful_tokens_per_s",
                                              "padding_fraction", "gpu_mem_peak_gib", "epoch")}
        for e in trainer.state.log_history if "loss" in e
    ]  # fmt: skip
    summary = {
        "global_step": trainer.state.global_step,
        "train_loss": getattr(result, "training_loss", None),
        "seconds": round(seconds, 1),
        "samples": samples,
        "tokens": tokens,
        "truncated_samples": truncated,
        "checkpoints": [p.name for p in complete_checkpoints(run_dir)],
        "history": history,
    }
    out = run_dir / "results"
    out.mkdir(exist_ok=True)
    (out / "train.json").write_text(json.dumps(summary, indent=2) + "\n")
