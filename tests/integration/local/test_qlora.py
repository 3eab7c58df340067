"""QLoRA end to end on CPU with a tiny Llama-4-architecture model: NF4 base (bitsandbytes' CPU
backend), LoRA on self_attn.q_proj/v_proj trained through `launch recipe`, then `launch reeval`
scores each adapter on the 4-bit base as it was trained, never merged into quantized weights.

The Scout itself trains through axolotl, which needs a GPU; this is the same job code (jobs.train
with engine hf, jobs.modeling's adapter loading, jobs.evaluate) on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Launch

TRAIN = ["--set", "data.max_train_samples=32", "--set", "train.save_steps=2"]

EVAL = ["--set", "eval.max_samples=4", "--set", "eval.max_new_tokens=16"]


@pytest.fixture(scope="module")
def trained(run: Launch, env: dict[str, str]) -> Path:
    proc = run("recipe", "tiny_llama4_qlora", "--cluster", "local", "--follow", *TRAIN, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Path(env["LAUNCH_RUNS"]) / proc.stdout.split()[0]


@pytest.mark.slow
def test_qlora_checkpoints_are_adapters_of_the_4bit_tiny_llama4(trained: Path) -> None:
    log = "".join(p.read_text() for p in (trained / "logs").glob("*"))
    assert "trainable params: 3,584" in log  # r 8 on q (64->64) and v (64->32) of 2 layers
    checkpoints = sorted((trained / "checkpoints").iterdir())
    assert len(checkpoints) >= 2
    for ckpt in checkpoints:
        adapter = json.loads((ckpt / "adapter_config.json").read_text())
        assert sorted(adapter["target_modules"]) == ["self_attn.q_proj", "self_attn.v_proj"]
        assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (8, 32, 0.05)
        assert not list(ckpt.glob("model*.safetensors"))  # the adapter only, never the base
    base = json.loads((Path(adapter["base_model_name_or_path"]) / "config.json").read_text())
    assert (base["architectures"], base["num_local_experts"]) == (["Llama4ForCausalLM"], 2)


@pytest.mark.slow
def test_reeval_scores_each_adapter_on_the_4bit_base(run: Launch, trained: Path) -> None:
    proc = run("reeval", trained.name, "--cluster", "local", "--follow", *EVAL, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    checkpoints = sorted((trained / "checkpoints").iterdir())
    assert f"{len(checkpoints)}/{len(checkpoints)} evaluation(s) completed" in proc.stderr
    eval_logs = "".join(p.read_text() for p in trained.parent.glob("tiny_llama4_qlora_eval-*/logs/*.out"))
    for ckpt in checkpoints:
        metrics = json.loads(next((trained / "results" / ckpt.name).glob("*/metrics.json")).read_text())
        assert metrics["dtype"] == "int4" and metrics["sentences"] == 4  # int4: never merged
        assert f"adapter {ckpt} on base " in eval_logs and "(int4 nf4 weights)" in eval_logs
