"""Every recipe and cluster profile in the project validates and documents itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config.cluster import load_cluster
from launcher.config.recipe import load_recipe
from tests.support.paths import ROOT

RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))
CLUSTERS = sorted(p for p in (ROOT / "cluster").rglob("*.yaml"))


def _header(path: Path) -> list[str]:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    return lines


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates_and_says_how_to_launch_it(path: Path) -> None:
    recipe = load_recipe(str(path))
    assert recipe.name == path.stem
    header = _header(path)
    assert header, f"{path} has no header comment"
    assert any(line.startswith("launch ") for line in header), f"{path}: header lacks the launch command"


@pytest.mark.parametrize("path", CLUSTERS, ids=lambda p: p.stem)
def test_cluster_validates_and_documents_itself(path: Path) -> None:
    profile = load_cluster(str(path))
    assert profile.name == path.stem
    assert _header(path), f"{path} has no header comment"


def test_every_research_system_has_a_recipe() -> None:
    names = {p.stem for p in RECIPES}
    wanted = {
        "ds1.5b_fft", "ds7b_fft", "ds1.5b_eval", "ds7b_eval_int8", "llama4_scout_qlora", "spacy_sm",
        "spacy_md", "spacy_lg", "electra_base", "nuner", "agnews_zero_shot", "agnews_one_shot",
        "agnews_few_shot",
    }  # fmt: skip
    assert wanted <= names
    assert any(n.startswith("tiny_") for n in names)
    assert {"a800", "2080ti", "local", "ray", "dev-slurm"} <= {p.stem for p in CLUSTERS}


def test_research_recipes_say_what_the_research_did() -> None:
    r = load_recipe("ds1.5b_fft")
    assert (r.resources.gpus_per_node, r.distributed.zero_stage) == (4, 1)
    assert (r.train.epochs, r.train.lr, r.train.micro_batch_size, r.train.grad_accum) == (20, 2e-5, 2, 8)
    assert (r.train.seed, r.train.deterministic) == (42, True)
    r = load_recipe("ds7b_fft")
    d = r.distributed
    assert (d.zero_stage, d.offload_optimizer, d.offload_params) == (3, "cpu", "cpu")
    r = load_recipe("llama4_scout_qlora")
    q, lora = r.quantization, r.lora
    assert r.engine == "axolotl" and r.method == "qlora"
    assert (q.mode, q.quant_type, q.double_quant) == ("int4", "nf4", True)
    assert lora is not None
    assert (lora.r, lora.alpha, lora.dropout) == (8, 32, 0.05)
    assert lora.target_modules == ["self_attn.q_proj", "self_attn.v_proj"]  # Llama-4's module names
    assert load_recipe("ds1.5b_eval").model.dtype == "fp16"
    assert load_recipe("ds7b_eval_int8").quantization.mode == "int8"
    assert [load_recipe(f"agnews_{k}_shot").eval.shots for k in ("zero", "one", "few")] == [0, 1, 5]
