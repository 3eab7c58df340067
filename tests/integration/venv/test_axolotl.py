"""axolotl 0.19.0 itself (in its own cached virtualenv) validates every axolotl recipe's rendered config."""


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
from tests.support.venvs import cached_venv
from tests.support.paths import ROOT




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
            path.parent.resolve() == (ROOT / "recipes").resolve()
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
        [str(python), str(ROOT / "tests" / "support" / "axolotl_validate.py"), json.dumps(A800), *map(str, configs)],
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
