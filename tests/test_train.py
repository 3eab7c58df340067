"""The NER fine-tuning job: answer-only loss, packing isolation, rendered configs, the tiny run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from jobs.data.gmb import load_gmb
from jobs.prompts import ner_example
from jobs.sft import IGNORE, PackedCollator, PackedDataset, PadCollator, TokenStats, pack, tokenize
from launcher.config.recipe import load_recipe
from launcher.kinds.deepspeed import deepspeed_config
from tests.conftest import Launch, wait_for
from tests.wandb_offline import read_run


@pytest.fixture(scope="module")
def tokenizer():
    from jobs.modeling import load_tokenizer

    return load_tokenizer(load_recipe("tiny_ner"))


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    from jobs.tiny.models import resolve

    m = AutoModelForCausalLM.from_pretrained(resolve("tiny://qwen2-gmb"), attn_implementation="sdpa")
    m.config.use_cache = False
    return m.eval()


@pytest.fixture(scope="module")
def examples(tokenizer):
    return [ner_example(tokenizer, s.id, s.tokens, s.tags) for s in load_gmb()[:40]]


def test_loss_only_on_the_answer(tokenizer, examples) -> None:
    for ex in examples:
        sample, cut = tokenize(tokenizer, ex, 1024)
        assert not cut
        prompt_len = len(tokenizer(ex.prompt, add_special_tokens=False)["input_ids"])
        assert sample.labels[:prompt_len] == [IGNORE] * prompt_len
        learned = sample.labels[prompt_len:]
        assert IGNORE not in learned
        assert learned == sample.input_ids[prompt_len:]
        assert learned[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(learned[:-1]) == ex.answer
        assert ex.answer.startswith('{"entities": [')


def test_chat_template_is_used(tokenizer, examples) -> None:
    assert examples[0].prompt.startswith("<|im_start|>user\n")
    assert examples[0].prompt.endswith("<|im_start|>assistant\n")


def test_padding_is_masked(tokenizer, examples) -> None:
    samples = [tokenize(tokenizer, ex, 1024)[0] for ex in examples[:4]]
    stats = TokenStats()
    batch = PadCollator(tokenizer.pad_token_id, stats)(
        [{"input_ids": s.input_ids, "labels": s.labels} for s in samples]
    )
    mask = batch["attention_mask"].bool()
    assert (batch["labels"][~mask] == IGNORE).all()
    assert stats.real == sum(len(s) for s in samples)
    assert stats.real + stats.padding == batch["input_ids"].numel()


def test_first_fit_packing() -> None:
    from jobs.sft import Sample

    sizes = [300, 200, 120, 90, 60, 500, 12, 250]
    samples = [Sample([1] * n, [1] * n) for n in sizes]
    bins = pack(samples, 512)
    assert sorted(len(s) for b in bins for s in b) == sorted(sizes)
    assert all(sum(len(s) for s in b) <= 512 for b in bins)
    assert [[len(s) for s in b] for b in bins] == [[500, 12], [300, 200], [250, 120, 90], [60]]
    assert [[len(s) for s in b] for b in bins] == [[len(s) for s in b] for b in pack(samples, 512)]


def test_packed_samples_do_not_attend_to_each_other(model, tokenizer, examples) -> None:
    samples = [tokenize(tokenizer, ex, 1024)[0] for ex in examples[:8]]
    bins = pack(samples, 700)
    assert any(len(b) > 1 for b in bins) and len({sum(len(s) for s in b) for b in bins}) > 1
    stats = TokenStats()
    batch = PackedCollator(tokenizer.pad_token_id, stats)([PackedDataset(bins)[i] for i in range(len(bins))])
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == len(bins)
    assert stats.real == sum(len(s) for s in samples)
    assert stats.real + stats.padding == batch["input_ids"].numel()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        for row, b in enumerate(bins):
            start = 0
            for s in b:
                alone = model(input_ids=torch.tensor([s.input_ids])).logits[0]
                torch.testing.assert_close(packed[row, start : start + len(s)], alone, atol=1e-4, rtol=1e-4)
                start += len(s)
    pads = batch["labels"][batch["input_ids"] == tokenizer.pad_token_id]
    assert (pads == IGNORE).all()


def test_deepspeed_configs() -> None:
    z3 = deepspeed_config(load_recipe("ds7b_fft"))["zero_optimization"]
    assert z3["stage"] == 3
    assert z3["offload_optimizer"]["device"] == z3["offload_param"]["device"] == "cpu"
    assert z3["stage3_gather_16bit_weights_on_model_save"] is True
    z1 = deepspeed_config(load_recipe("ds1.5b_fft"))
    assert z1["zero_optimization"]["stage"] == 1 and "offload_param" not in z1["zero_optimization"]
    assert z1["train_micro_batch_size_per_gpu"] == "auto" and z1["fp16"]["enabled"] == "auto"


def _python_job(run_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.train", "--run-dir", str(run_dir)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


TINY = ["--set", "data.max_train_samples=160", "--set", "train.logging_steps=5"]


@pytest.mark.slow
def test_tiny_ner_trains_checkpoints_and_logs_to_wandb(launch: Launch, tmp_path: Path) -> None:
    proc = launch(
        "recipe", "tiny_ner", "--cluster", "local", "--follow", *TINY,
        "--set", "train.max_steps=30", "--set", "train.save_steps=10", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_id = proc.stdout.splitlines()[0]
    run_dir = tmp_path / "runs" / run_id
    steps = sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert steps == [10, 20, 30]
    for step in steps:
        ckpt = run_dir / "checkpoints" / f"checkpoint-{step}"
        assert (ckpt / "COMPLETE").exists() and (ckpt / "model.safetensors").exists()
        assert (ckpt / "tokenizer.json").exists()
    summary = json.loads((run_dir / "results" / "train.json").read_text())
    losses = [h["loss"] for h in summary["history"]]
    assert summary["global_step"] == 30 and losses[-1] < losses[0]
    assert all("useful_tokens_per_s" in h and h["padding_fraction"] < 0.1 for h in summary["history"][1:])
    info = json.loads((run_dir / "launch.json").read_text())
    wandb = info["wandb"]["train"]
    assert wandb["mode"] == "offline"
    offline = Path(wandb["offline_dir"])
    assert offline.is_dir() and list(offline.glob("*.wandb")), "no offline W&B run file"
    logged = read_run(offline)
    assert (logged.group, logged.job_type, logged.run_id) == ("tiny_ner", "train", wandb["id"])
    assert logged.config["name"] == "tiny_ner" and logged.config["train"]["max_steps"] == 30
    keys = set().union(*logged.history)
    assert {"train/loss", "train/learning_rate", "train/useful_tokens_per_s"} <= keys
    assert "train/padding_fraction" in keys
    assert f"wandb sync {offline}" in launch("status", run_id, check=True).stdout


@pytest.mark.slow
def test_signal_checkpoints_then_resume_finishes_the_steps(launch: Launch, launch_env: dict[str, str],
                                                         tmp_path: Path) -> None:  # fmt: skip
    proc = launch(
        "recipe", "tiny_ner", "-c", "local", *TINY, "--set", "train.max_steps=40",
        "--set", "train.save_steps=10", "--set", "tracking.wandb.mode=disabled", check=True,
    )  # fmt: skip
    run_dir = tmp_path / "runs" / proc.stdout.splitlines()[0]
    wait_for(lambda: (run_dir / "checkpoints" / "checkpoint-10" / "COMPLETE").exists(), timeout=300)
    pids = subprocess.run(["pgrep", "-f", "--", f"jobs.train --run-dir {run_dir}"], capture_output=True,
                          text=True).stdout.split()  # fmt: skip
    assert pids
    os.kill(int(pids[0]), signal.SIGUSR2)
    state = run_dir / ".local_state.json"
    wait_for(lambda: json.loads(state.read_text()).get("exit_code") is not None, timeout=120)
    assert json.loads(state.read_text())["exit_code"] == 3
    saved = sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert saved[-1] >= 10 and all((run_dir / "checkpoints" / f"checkpoint-{s}" / "COMPLETE").exists()
                                   for s in saved)  # fmt: skip
    partial = run_dir / "checkpoints" / "checkpoint-39"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    job = _python_job(run_dir, launch_env)
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out[-3000:]
    assert f"resuming from checkpoint-{saved[-1]}" in out
    assert "removing incomplete checkpoint-39" in out and not partial.exists()
    assert json.loads((run_dir / "results" / "train.json").read_text())["global_step"] == 40


def test_bad_inputs_stop_before_training(launch: Launch, tmp_path: Path) -> None:
    cases = [
        (["data.path=/nope/ner.csv"], "data.path: '/nope/ner.csv' is not a file"),
        (["model.name_or_path=./no-such-model"], "model.name_or_path: './no-such-model' does not exist"),
        (["data.dataset=conll"], "data.dataset: 'conll' is not valid; valid: gmb, ag_news"),
        (["data.dataset=ag_news"], "data.dataset: 'ag_news' does not suit task ner; valid: gmb"),
        (["quantization=int4"], "quantization: int4 weights cannot be fully fine-tuned"),
        (["lora.r=8"], "lora: settings given but method is fft"),
    ]
    for overrides, message in cases:
        args = [a for o in overrides for a in ("--set", o)]
        proc = launch("recipe", "tiny_ner", "-c", "local", *args)
        assert proc.returncode == 2 and message in proc.stderr, (overrides, proc.stderr)
    assert not (tmp_path / "runs").exists()


def test_job_refuses_a_missing_data_file_without_importing_torch(tmp_path: Path) -> None:
    recipe = load_recipe("tiny_ner")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    data = recipe.model_dump(mode="json")
    data["data"]["path"] = str(tmp_path / "gone.csv")
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(data))
    probe = (
        "import sys, runpy; sys.argv=['jobs.train','--run-dir',sys.argv[1]];"
        "from jobs.train.job import main; code=main(); print('torch' in sys.modules); sys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", probe, str(run_dir)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "data.path" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout.strip() == "False"
