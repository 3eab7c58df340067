"""The Scout's rendered axolotl config: equal to its golden file, and holding what Llama-4 needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from launcher.config.recipe import load_recipe
from launcher.kinds.axolotl import axolotl_config, axolotl_config_text
from tests.support.paths import GOLDEN

SCOUT_GOLDEN = GOLDEN / "llama4_scout_qlora-axolotl.yaml"

RUN_DIR = Path("/runs/llama4_scout_qlora-20260101-0000-0000")


def test_scout_config_matches_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    text = axolotl_config_text(load_recipe("llama4_scout_qlora"), RUN_DIR)
    if os.environ.get("UPDATE_GOLDEN"):
        SCOUT_GOLDEN.write_text(text)
    assert SCOUT_GOLDEN.exists(), f"no golden file {SCOUT_GOLDEN}; create it with UPDATE_GOLDEN=1"
    assert text == SCOUT_GOLDEN.read_text(), (
        f"{SCOUT_GOLDEN.name} differs from the rendered config; UPDATE_GOLDEN=1 rewrites it"
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
