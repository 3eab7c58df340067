"""The axolotl configs the recipes render: axolotl 0.19 itself validates each one (in its own venv,
on CPU, as `axolotl train` would on the cluster's GPU), and the Scout's is fixed by a golden file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launcher import paths
from launcher.config.recipe import load_recipe
from launcher.kinds.axolotl import axolotl_config, axolotl_config_text
from tests.venvs import cached_venv

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "llama4_scout_qlora-axolotl.yaml"
RUN_DIR = Path("/runs/llama4_scout_qlora-20260101-0000-0000")

# What `axolotl.utils.config` (validate_config, normalize_config) imports, pinned as axolotl 0.19.0
# pins them; axolotl itself without its dependencies. The rest of its requirements (bitsandbytes,
# triton, xformers, liger-kernel, torchao, datasets, trl, flash-linear-attention, ...) are for
# training on a GPU and are not needed to validate a config.
AXOLOTL_STEPS = [
    ["--no-deps", "axolotl==0.19.0"],
    ["transformers==5.16.1", "tokenizers==0.23.1", "huggingface_hub==1.17.0", "accelerate==1.13.0",
     "peft==0.20.0", "pydantic==2.12.5", "PyYAML==6.0.3", "packaging==26.0", "pillow==13.0.0",
     "addict==2.4.0"],
]  # fmt: skip
# an A800 as axolotl's gpu_capabilities() reports it (sm_80, bf16, tf32, no fp8)
A800 = {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 1, "compute_capability": "sm_80"}


def axolotl_recipes() -> list[str]:
    names = []
    for name, path in sorted(paths.catalog("recipes").items()):
        if (
            path.parent == paths.PROJECT_ROOT / "recipes"
            and yaml.safe_load(path.read_text()).get("engine") == "axolotl"
        ):
            names.append(name)
    return names


@pytest.fixture(scope="session")
def axolotl_python() -> Path:
    python, seconds = cached_venv("axolotl", AXOLOTL_STEPS)
    if seconds is not None:
        print(f"\nbuilt the axolotl venv in {seconds:.0f}s", file=sys.stderr)
    return python


def validate(python: Path, configs: list[Path]) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", AXOLOTL_DO_NOT_TRACK="1", DO_NOT_TRACK="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [str(python), str(HERE / "axolotl_validate.py"), json.dumps(A800), *map(str, configs)],
        capture_output=True, text=True, timeout=600, env=env, cwd=configs[0].parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.timeout(2400)  # the first run on a machine builds the venv (minutes)
def test_axolotl_accepts_every_axolotl_recipe(axolotl_python: Path, tmp_path: Path) -> None:
    names = axolotl_recipes()
    assert "llama4_scout_qlora" in names
    configs = []
    for name in names:
        recipe = load_recipe(name)
        path = tmp_path / f"{name}.yaml"
        path.write_text(axolotl_config_text(recipe, tmp_path / name))
        configs.append(path)
    broken = tmp_path / "qlora-without-4bit.yaml"
    cfg = axolotl_config(load_recipe("llama4_scout_qlora"), tmp_path)
    del cfg["load_in_4bit"]
    broken.write_text(yaml.safe_dump(cfg))
    *results, rejected = validate(axolotl_python, [*configs, broken])
    for result in results:
        assert result["ok"], f"axolotl rejects {result['path']}: {result['error']}\n{result.get('where')}"
    assert not rejected["ok"] and "load_in_4bit" in rejected["error"]  # the validator is not a no-op
    scout = results[names.index("llama4_scout_qlora")]["config"]
    assert (
        scout["model_config_type"] == "llama4" and scout["type_of_model"] == "Llama4ForConditionalGeneration"
    )
    assert scout["llama4_linearized_experts"] is True and scout["load_in_4bit"] is True
    assert scout["lora_target_modules"] == ["self_attn.q_proj", "self_attn.v_proj"]
    assert scout["attn_implementation"] == "flex_attention" and scout["activation_offloading"] is True


def test_scout_config_matches_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    text = axolotl_config_text(load_recipe("llama4_scout_qlora"), RUN_DIR)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"no golden file {GOLDEN}; create it with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(), (
        f"{GOLDEN.name} differs from the rendered config; UPDATE_GOLDEN=1 rewrites it"
    )


def test_scout_config_has_what_llama4_needs(tmp_path: Path) -> None:
    cfg = axolotl_config(load_recipe("llama4_scout_qlora"), tmp_path)
    assert cfg["base_model"] == "axolotl-quants/Llama-4-Scout-17B-16E-Linearized-bnb-nf4-bf16"
    assert (cfg["model_type"], cfg["llama4_linearized_experts"]) == ("Llama4ForConditionalGeneration", True)
    assert (cfg["adapter"], cfg["load_in_4bit"], cfg["lora_r"], cfg["lora_alpha"], cfg["lora_dropout"]) == (
        "qlora", True, 8, 32, 0.05,
    )  # fmt: skip
    assert cfg["chat_template"] == "llama4"
    assert cfg["special_tokens"] == {"pad_token": "<|finetune_right_pad|>", "eos_token": "<|eot|>"}
    assert (cfg["gradient_checkpointing"], cfg["activation_offloading"]) == (True, True)
    assert cfg["train_on_inputs"] is False and cfg["datasets"][0]["type"] == "input_output"
