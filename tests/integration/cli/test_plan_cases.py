"""The planner's cases through `launch plan` / `--dry-run` in a subprocess: the seed-style 1.5B
with the fused AdamW the job uses, and offloaded checkpointing and CCE only for axolotl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.config.recipe import load_recipe
from launcher.errors import UserError
from launcher.plan import GIB
from tests.support.cli import Launch
from tests.support.paths import FIXTURES

MEASURED = {c["case"]: c for c in json.loads((FIXTURES / "h200_memory.json").read_text())["cases"]}

H200_YAML = "name: h200\nbackend: local\ngpu: {type: h200, memory_gb: 139, per_node: 1, bf16: true}\n"

SEED_STYLE = [
    "resources.nodes=1", "resources.gpus_per_node=1", "distributed.strategy=none",
    "distributed.zero_stage=0", "model.dtype=bf16", "train.micro_batch_size=2",
    "train.max_length=512", "train.grad_accum=1", "train.gradient_checkpointing=false",
]  # fmt: skip


def sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def test_seed_style_1_5b_plans_the_fused_adamw_the_job_uses(launch: Launch, tmp_path: Path) -> None:
    """Measured 27.92 GiB allocated with torch's fused AdamW (the Trainer's default, which
    jobs/trainer.py passes on as train.optim); foreach's fp32 temporaries would add 6.6 GiB."""
    (tmp_path / "h200.yaml").write_text(H200_YAML)
    measured = MEASURED["1.5b_fft_2x512_seed_style"]
    assert measured["optimizer"] == "torch AdamW fused"

    def planned(*extra: str) -> dict:
        args = ["plan", "ds1.5b_fft", "--cluster", str(tmp_path / "h200.yaml"), "--json"]
        proc = launch(*args, *sets([*SEED_STYLE, *extra]), check=True)
        return json.loads(proc.stdout)

    default = planned()
    assert default["peak_allocated_gib"] == pytest.approx(measured["peak_gib"], rel=0.03)
    assert any(a.startswith("train.optim adamw_torch_fused") for a in default["assumptions"])
    foreach = planned("train.optim=adamw_torch")
    extra = foreach["peak_allocated_gib"] - default["peak_allocated_gib"]
    assert extra == pytest.approx(4 * 1_777_088_000 / GIB, rel=0.2)  # one fp32 temporary per weight


def test_offloaded_checkpointing_and_cce_are_axolotl_only(launch: Launch) -> None:
    for key in ("train.gradient_checkpointing=offload", "train.cut_cross_entropy=true"):
        with pytest.raises(UserError, match="axolotl"):
            load_recipe("ds1.5b_fft", [key])
        assert load_recipe("llama4_scout_qlora", [key])
    proc = launch("recipe", "ds1.5b_fft", "-c", "a800", "--set", "train.optim=sgd", "--dry-run")
    assert proc.returncode == 2 and "train.optim" in proc.stderr and "adamw_torch_fused" in proc.stderr
    proc = launch("plan", "ds1.5b_fft", "-c", "a800", "--set", "train.gradient_checkpointing=offload")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "axolotl" in proc.stderr
