"""Trainer callbacks: complete-marker on checkpoints, throughput metrics, progress file and one
compact log line per logging step, stop on SIGUSR2."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from jobs.sft import TokenStats
from launcher.runs.checkpoints import checkpoint_name, mark_complete
from launcher.runs.progress import (
    Progress,
    eta_seconds,
    format_duration,
    now_iso,
    progress_line,
    write_progress,
)


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
        if self._anyone_received(args):
            control.should_save = True
            control.should_training_stop = True

    def _anyone_received(self, args: Any) -> bool:
        """Whether any rank got the signal: srun delivers it to each node at its own moment, and ranks
        that stopped at different steps would wait on each other's collectives forever. One small
        all-reduce (MAX) per step makes them stop, and save, at the same step."""
        import torch

        mine = self.received is not None
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return mine
        if torch.distributed.get_world_size() == 1:
            return mine
        flag = torch.tensor([int(mine)], device=args.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() and self.received is None:
            self.received = int(signal.SIGUSR2)
        return bool(flag.item())


class SaveAtEnd(TrainerCallback):
    """Save a checkpoint at the last step whatever save_steps says, so the final weights are one."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= state.max_steps:
            control.should_save = True


class ProgressFile(TrainerCallback):
    """Every logging step: `<run_dir>/progress.json` (launcher/runs/progress.py) and one compact line
    (`step 120/318  loss 1.234  lr 1.9e-05  412 tok/s  ETA 1m12s`) instead of the Trainer's dicts.

    tokens/s is Throughput's `useful_tokens_per_s` when it ran before this callback, else it is
    derived from the Trainer's `num_input_tokens_seen` (include_num_input_tokens_seen)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.t0, self.first_step = time.perf_counter(), 0
        self.last_t, self.last_tokens = self.t0, 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.t0 = self.last_t = time.perf_counter()
        self.first_step, self.last_tokens = state.global_step, state.num_input_tokens_seen or 0

    def _tokens_per_s(self, state: Any, logs: dict) -> float | None:
        if "useful_tokens_per_s" in logs:
            return float(logs["useful_tokens_per_s"])
        seen, now = state.num_input_tokens_seen or 0, time.perf_counter()
        rate = (seen - self.last_tokens) / max(now - self.last_t, 1e-9) if seen else None
        self.last_t, self.last_tokens = now, seen
        return None if rate is None else round(rate, 1)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs is None or not state.is_world_process_zero:
            return
        elapsed = time.perf_counter() - self.t0
        if "loss" not in logs:
            if "train_loss" in logs:  # the Trainer's end-of-training summary
                print(
                    f"trained to step {state.global_step}/{state.max_steps} in {format_duration(elapsed)}, "
                    f"mean loss {float(logs['train_loss']):.3f}",
                    flush=True,
                )
            else:
                print(_pairs(logs))
            return
        total = state.max_steps or None
        progress = Progress(
            step=state.global_step,
            total_steps=total,
            epoch=None if state.epoch is None else round(float(state.epoch), 4),
            loss=float(logs["loss"]),
            lr=float(logs["learning_rate"]) if "learning_rate" in logs else None,
            tokens_per_s=self._tokens_per_s(state, logs),
            eta_s=None if total is None else _round(
                eta_seconds(elapsed, state.global_step - self.first_step, total - state.global_step)
            ),
            updated_at=now_iso(),
        )  # fmt: skip
        write_progress(self.run_dir, progress)
        print(progress_line(progress), flush=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        from launcher.runs.progress import read_progress

        last = read_progress(self.run_dir)
        if last is not None and last.step != state.global_step:
            last.step, last.eta_s, last.updated_at = state.global_step, 0.0, now_iso()
            write_progress(self.run_dir, last)


def _pairs(logs: dict) -> str:
    """Any other log (an evaluation's): `key value` pairs on one line."""
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def compact_logging(trainer: Any, run_dir: Path) -> None:
    """Replace the Trainer's printer of raw log dicts with ProgressFile (W&B logging is untouched)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ProgressFile(run_dir))
