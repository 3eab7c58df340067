"""Trainer callbacks: complete-marker on checkpoints, throughput metrics, stop on SIGUSR2."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from jobs.sft import TokenStats
from launcher.checkpoints import checkpoint_name, mark_complete


class MarkComplete(TrainerCallback):
    """After the Trainer has written checkpoint-N (model, optimizer, RNG, state), mark it complete."""

    def __init__(self, checkpoints: Path) -> None:
        self.checkpoints = checkpoints

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            path = self.checkpoints / checkpoint_name(state.global_step)
            if path.is_dir():
                mark_complete(path, step=state.global_step, loss=_last_loss(state))


def _last_loss(state: Any) -> float | None:
    for entry in reversed(state.log_history):
        if "loss" in entry:
            return float(entry["loss"])
    return None


class Throughput(TrainerCallback):
    """Adds useful tokens/s, padding fraction, samples/s and peak GPU memory to every log.

    Must run before the W&B and printer callbacks (the Trainer appends its log_history entry
    before calling them, so that entry is updated here too).
    """

    def __init__(self, stats: TokenStats, world_size: int = 1) -> None:
        self.stats, self.world = stats, world_size
        self.t0 = time.perf_counter()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.stats.take()
        self.t0 = time.perf_counter()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs is None or "loss" not in logs:
            return
        real, padding, samples = self.stats.take()
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        self.t0 = time.perf_counter()
        extra = {
            "useful_tokens_per_s": round(real * self.world / elapsed, 1),
            "padding_fraction": round(padding / max(real + padding, 1), 4),
            "samples_per_s": round(samples * self.world / elapsed, 2),
        }
        if torch.cuda.is_available():
            extra["gpu_mem_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        logs.update(extra)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)


class StopOnSignal(TrainerCallback):
    """On SIGUSR2 (Slurm's warning before preemption or the time limit): save, then stop."""

    def __init__(self) -> None:
        self.received: int | None = None
        signal.signal(signal.SIGUSR2, self._handler)

    def _handler(self, signum: int, _frame: Any) -> None:
        self.received = signum

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True


class SaveAtEnd(TrainerCallback):
    """Save a checkpoint at the last step whatever save_steps says, so the final weights are one."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= state.max_steps:
            control.should_save = True
