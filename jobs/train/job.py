"""Supervised fine-tuning for generative NER: fft | lora | qlora, DeepSpeed ZeRO, packing, resume.

    python -m jobs.train --run-dir DIR
    torchrun --nproc-per-node 8 -m jobs.train --run-dir DIR      (what the backends start)

Reads the resolved recipe from DIR/recipe.yaml and DIR/deepspeed.json when the recipe uses
DeepSpeed. Writes DIR/checkpoints/checkpoint-<step>/ (marked COMPLETE once fully written),
DIR/results/train.json, and logs to W&B. Starts from the latest complete checkpoint if there
is one. Exit codes: 0 done, 2 bad input, 3 stopped by SIGUSR2 after checkpointing (requeue me).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jobs.entry import BAD_INPUT, REQUEUE_EXIT, read_run
from launcher.config.recipe import Recipe


def train(recipe: Recipe, run_dir: Path) -> int:
    import torch
    from transformers import set_seed

    from jobs import wandb_run
    from jobs.callbacks import MarkComplete, SaveAtEnd, StopOnSignal, Throughput, compact_logging
    from jobs.data.ner import ner_examples
    from jobs.modeling import load_model, load_tokenizer, resolve_dtype
    from jobs.sft import (
        PackedCollator,
        PackedDataset,
        PadCollator,
        SampleDataset,
        TokenStats,
        pack,
        sft_trainer,
        tokenize,
    )
    from jobs.trainer import resume_and_train, training_arguments, write_summary
    from jobs.uploads import BackgroundUploader, upload_callback

    t = recipe.train
    set_seed(t.seed)
    compute = resolve_dtype(recipe.model.dtype)
    wandb = wandb_run.start(recipe, run_dir, "train")
    # TrainingArguments first: with ZeRO-3 the model must be partitioned while it loads
    args = training_arguments(recipe, run_dir, compute, report_wandb=wandb is not None)
    tokenizer = load_tokenizer(recipe)
    mixed = torch.cuda.is_available() or compute == torch.bfloat16  # fp32 weights under autocast
    load_dtype = torch.float32 if recipe.method == "fft" and mixed else compute
    model = load_model(recipe, dtype=load_dtype)
    model.config.use_cache = False
    if hasattr(model, "print_trainable_parameters"):
        model.print_trainable_parameters()

    train_examples, _ = ner_examples(recipe, tokenizer)
    samples, truncated = [], 0
    for example in train_examples:
        sample, cut = tokenize(tokenizer, example, t.max_length)
        samples.append(sample)
        truncated += cut
    stats = TokenStats()
    multiple = 8 if torch.cuda.is_available() else 1
    if t.packing:
        dataset: Any = PackedDataset(pack(samples, t.max_length))
        collator: Any = PackedCollator(tokenizer.pad_token_id, stats, multiple_of=multiple)
    else:
        dataset = SampleDataset(samples)
        collator = PadCollator(tokenizer.pad_token_id, stats, multiple_of=multiple)
    tokens = sum(len(s) for s in samples)
    print(
        f"data: {len(samples)} samples, {tokens} tokens, {truncated} cut at max_length {t.max_length}, "
        f"{len(dataset)} {'packed rows' if t.packing else 'rows'}",
        flush=True,
    )

    stop = StopOnSignal()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    uploader = BackgroundUploader(recipe, run_dir)  # checkpoints go to the store while training goes on
    trainer = sft_trainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=tokenizer,
        callbacks=[SaveAtEnd(), MarkComplete(run_dir / "checkpoints"), upload_callback(uploader), stop],
    )  # fmt: skip
    trainer.callback_handler.callbacks.insert(0, Throughput(stats, world))
    compact_logging(trainer, run_dir)
    result, seconds = resume_and_train(trainer, run_dir, uploader, save_step0=t.save_step0)
    if trainer.is_world_process_zero():
        write_summary(run_dir, trainer, result, seconds, len(samples), tokens, truncated)
    if wandb is not None:
        wandb.finish()
    uploader.finish(timeout=120 if stop.received is not None else None)  # a failure stays pending
    if stop.received is not None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # torchrun kills every rank once one exits: none may leave before rank 0 marked the save
            torch.distributed.barrier()
        print(f"stopped by signal {stop.received} at step {trainer.state.global_step}; requeue", flush=True)
        return REQUEUE_EXIT
    return 0


def main(argv: list[str] | None = None) -> int:
    loaded = read_run(argv, __doc__.splitlines()[0])
    if loaded is None:
        return BAD_INPUT
    recipe, run_dir = loaded
    if recipe.engine == "axolotl":
        from jobs.train.axolotl import run_axolotl

        return run_axolotl(recipe, run_dir)
    return train(recipe, run_dir)
