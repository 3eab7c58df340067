"""Training steps/s of the train job's Trainer (the loss from the answer's logits only, jobs.sft.
sft_trainer) against transformers' plain Trainer (logits and log-softmax at every position), in one
run, alternating, on the recipe's own model and packed data.

    python benchmarks/train_step.py                              # smollm2_ner on this CPU
    python benchmarks/train_step.py --recipe ds1.5b_fft --steps 20 --rounds 1    # on a GPU

Each round trains a fresh copy of the model for --steps steps with each Trainer (same seed, same
batches); the first step's loss of both is printed (the same loss, to rounding) with the seconds
the steps took after the first (warm-up). The last line is `ratio X.XX` (answer-only / plain).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def trainer_for(recipe: Any, answer_only: bool, out: Path) -> Any:
    import torch
    from transformers import Trainer, TrainerCallback, set_seed

    from jobs.data.ner import ner_examples
    from jobs.modeling import load_model, load_tokenizer, resolve_dtype
    from jobs.sft import PackedCollator, PackedDataset, TokenStats, pack, sft_trainer, tokenize
    from jobs.trainer import training_arguments

    set_seed(recipe.train.seed)
    compute = resolve_dtype(recipe.model.dtype)
    args = training_arguments(recipe, out, compute, report_wandb=False)
    tokenizer = load_tokenizer(recipe)
    mixed = torch.cuda.is_available() or compute == torch.bfloat16
    model = load_model(recipe, dtype=torch.float32 if mixed else compute)
    model.config.use_cache = False
    train, _ = ner_examples(recipe, tokenizer)
    samples = [tokenize(tokenizer, e, recipe.train.max_length)[0] for e in train]
    data = PackedDataset(pack(samples, recipe.train.max_length))
    collator = PackedCollator(tokenizer.pad_token_id, TokenStats())

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.losses: list[float] = []

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            self.times.append(time.perf_counter())

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    clock = Clock()
    make = sft_trainer if answer_only else Trainer
    trainer = make(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[clock])
    return trainer, clock


def main() -> None:
    from launcher.config.recipe import load_recipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="smollm2_ner")
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    overrides = [f"train.max_steps={args.steps}", "train.save_steps=100000", "train.logging_steps=1"]
    recipe = load_recipe(args.recipe, overrides)
    rates: dict[str, list[float]] = {"plain": [], "answer-only": []}
    for round_ in range(args.rounds):
        for name in ("plain", "answer-only") if round_ % 2 == 0 else ("answer-only", "plain"):
            with tempfile.TemporaryDirectory() as out:
                trainer, clock = trainer_for(recipe, name == "answer-only", Path(out))
                trainer.train()
            steps_per_s = (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])
            rates[name].append(steps_per_s)
            print(f"round {round_ + 1} {name}: {steps_per_s:.3f} steps/s, first loss {clock.losses[0]:.4f}")
    plain, answer = statistics.median(rates["plain"]), statistics.median(rates["answer-only"])
    print(f"median steps/s: plain {plain:.3f}, answer-only {answer:.3f}")
    print(f"ratio {answer / plain:.2f}")


if __name__ == "__main__":
    main()
