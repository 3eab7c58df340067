"""The planner on the cases its issues name: the optimizer the job really uses (seed-style 1.5B,
measured 27.92 GiB with fused AdamW), ZeRO-3 offload traffic in the time, encoder token
classification and spaCy, and Llama-4-Scout QLoRA against axolotl's published single-H100 run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import get_args

import pytest

from launcher.config.cluster import ClusterProfile, load_cluster
from launcher.config.recipe import load_recipe
from launcher.config.sections import Optim
from launcher.kinds.table import KINDS
from launcher.plan import GIB, plan, resolve_arch
from launcher.plan.calibration import CPU_ADAM_BYTES_PER_PARAM, HOST_MEMORY_GB_S, PCIE_GB_S
from launcher.plan.tables import LINEARIZED_SCOUT
from launcher.plan.workload import OPTIMIZERS

H100 = ClusterProfile.model_validate({
    "name": "h100", "backend": "local",
    "gpu": {"type": "h100", "memory_gb": 79.6, "per_node": 1, "bf16": True},
})  # fmt: skip

SEED_STYLE = [
    "resources.nodes=1", "resources.gpus_per_node=1", "distributed.strategy=none",
    "distributed.zero_stage=0", "model.dtype=bf16", "train.micro_batch_size=2",
    "train.max_length=512", "train.grad_accum=1", "train.gradient_checkpointing=false",
]  # fmt: skip


def test_every_train_optim_has_a_size_and_8_or_4_bit_states_shrink() -> None:
    assert set(OPTIMIZERS) == set(get_args(Optim))
    a800 = load_cluster("a800")

    def optimizer_gib(optim: str) -> float:
        recipe = load_recipe("ds1.5b_fft", [*SEED_STYLE, f"train.optim={optim}"])
        return plan(recipe, a800).breakdown["optimizer"]

    fused = optimizer_gib("adamw_torch_fused")
    assert fused == pytest.approx(8 * 1_777_088_000 / GIB, rel=1e-6)
    assert optimizer_gib("adamw_8bit") == pytest.approx(fused / 4, rel=0.01)
    assert optimizer_gib("adamw_torch_4bit") == pytest.approx(fused / 8, rel=0.07)


def test_zero3_offload_time_adds_its_pcie_traffic_and_the_cpu_optimizer_step() -> None:
    a800 = load_cluster("a800")
    offloaded = plan(load_recipe("ds7b_fft"), a800)  # ZeRO-3, optimizer and parameters on the CPU
    on_gpu = plan(
        load_recipe("ds7b_fft", ["distributed.offload_optimizer=none", "distributed.offload_params=none"]),
        a800,
    )
    assert offloaded.time_per_epoch_s is not None and on_gpu.time_per_epoch_s is not None
    # by hand: 8 A800s on PCIe gen 4; each micro-step moves the 16-bit parameter partition in for
    # forward, recompute and backward plus the 16-bit gradient partition out; each optimizer step
    # (grad_accum 8) runs AdamW over all 7.6B parameters on the node's CPUs
    p, gpus, steps = 7_615_616_512, 8, 1125
    per_micro = (3 * 2 * p / gpus + 2 * p / gpus) / (PCIE_GB_S[4] * 1e9)
    cpu_adam = p * CPU_ADAM_BYTES_PER_PARAM / (HOST_MEMORY_GB_S * 1e9)
    expected = steps * per_micro + math.ceil(steps / 8) * cpu_adam
    assert offloaded.time_per_epoch_s - on_gpu.time_per_epoch_s == pytest.approx(expected, rel=1e-6)
    assert any("host transfers" in a and "PCIe gen 4" in a for a in offloaded.assumptions)
    assert not any("host transfers" in a for a in on_gpu.assumptions)


@pytest.mark.parametrize(
    ("name", "family", "hidden", "layers", "params"),
    [
        ("google/electra-base-discriminator", "electra", 768, 12, 108.9e6),
        ("numind/NuNER-v2.0", "roberta", 768, 12, 124.1e6),
        ("sentence-transformers/all-MiniLM-L6-v2", "bert", 384, 6, 22.6e6),
    ],
)
def test_encoders_are_planned_as_token_classification_training(
    name: str, family: str, hidden: int, layers: int, params: float
) -> None:
    recipe = load_recipe("electra_base", [f"model.name_or_path={name}"])
    arch = resolve_arch(recipe)
    assert (arch.encoder, arch.family, arch.hidden, arch.layers) == (True, family, hidden, layers)
    assert arch.total_params == pytest.approx(params, rel=0.02)  # published sizes, with a 17-tag head
    result = plan(recipe, load_cluster("2080ti"))
    assert result.planner == "training" and result.fits
    assert result.trainable_params == arch.total_params and result.breakdown["optimizer"] > 0
    assert result.time_per_epoch_s is not None


def test_token_classification_eval_only_is_one_scoring_pass() -> None:
    result = plan(load_recipe("electra_base", ["eval.only=true"]), load_cluster("2080ti"))
    assert result.planner == "generation" and result.trainable_params == 0
    assert result.breakdown["optimizer"] == 0 and result.time_per_epoch_s is not None


def test_tiny_encoder_resolves_from_its_built_config_then_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    recipe = load_recipe("electra_base", ["model.name_or_path=tiny://electra-gmb"])
    table = resolve_arch(recipe)
    assert table.source == "built-in table" and table.encoder and table.hidden == 64
    built = tmp_path / "recipe-launcher" / "tiny" / "electra-gmb-v1"
    built.mkdir(parents=True)
    config = {"model_type": "electra", "vocab_size": 1999, "hidden_size": 32, "embedding_size": 32,
              "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}  # fmt: skip
    (built / "config.json").write_text(json.dumps(config))
    arch = resolve_arch(recipe)
    assert arch.source == str(built / "config.json") and (arch.vocab, arch.hidden) == (1999, 32)
    assert plan(recipe, load_cluster("2080ti")).per_gpu_gib < 2


def test_deberta_config_json_is_an_encoder(tmp_path: Path) -> None:
    config = {"model_type": "deberta-v2", "vocab_size": 128100, "hidden_size": 768,
              "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    recipe = load_recipe(
        "nuner", [f"model.config={tmp_path}", "model.name_or_path=microsoft/deberta-v3-base"]
    )
    arch = resolve_arch(recipe)
    assert arch.encoder and arch.total_params == pytest.approx(184e6, rel=0.05)


@pytest.mark.parametrize("name", ["spacy_sm", "spacy_md"])
def test_spacy_is_planned_as_a_cpu_job(name: str) -> None:
    assert KINDS["spacy"].planner == "cpu"
    # a spacy recipe may not ask for a GPU at all (refused by the job kind), so it is planned as it is
    result = plan(load_recipe(name), load_cluster("a800"))
    assert result.planner == "cpu" and result.fits and result.gpus == 0 and result.per_gpu_gib == 0
    assert "planned as a CPU job" in result.assumptions[0]


SCOUT_LORA = "[self_attn.q_proj,self_attn.k_proj,self_attn.v_proj,self_attn.o_proj,shared_expert.gate_proj,shared_expert.up_proj,shared_expert.down_proj]"  # noqa: E501


# axolotl's examples/llama-4/scout-qlora-single-h100-flex.yaml, as recipe keys; its README: "uses
# only 64.5GB VRAM for post-training with 4k context length @ 519 tokens/second" on one H100
AXOLOTL_EXAMPLE = [
    f"model.name_or_path={LINEARIZED_SCOUT}", "resources.gpu_memory_gb=null",
    "lora.r=32", "lora.alpha=64", "lora.dropout=0.0", f"lora.target_modules={SCOUT_LORA}",
    "train.max_length=4096", "train.packing=true", "train.micro_batch_size=1", "train.grad_accum=1",
    "train.optim=adamw_torch_4bit", "train.gradient_checkpointing=offload",
    "model.attn_implementation=flex_attention", "train.cut_cross_entropy=true",
]  # fmt: skip

AXOLOTL_GB, AXOLOTL_TOKENS_S = 64.5, 519


# recipes/llama4_scout_qlora.yaml's own settings today, stated explicitly (the recipe is being
# rewritten elsewhere): the research's LoRA (r 8, alpha 32, dropout 0.05, q and v) with Llama-4's
# module names, micro-batch 2 x 8, sequence 512 packed, checkpointing on, the default optimizer
RECIPE_OWN = [
    "lora.r=8", "lora.alpha=32", "lora.dropout=0.05",
    "lora.target_modules=[self_attn.q_proj,self_attn.v_proj]", "train.micro_batch_size=2",
    "train.grad_accum=8", "train.max_length=512", "train.packing=true",
    "train.gradient_checkpointing=true", "train.optim=adamw_torch_fused", "resources.gpus_per_node=1",
]  # fmt: skip


def test_scout_architecture_is_its_published_config() -> None:
    arch = resolve_arch(load_recipe("llama4_scout_qlora", [f"model.name_or_path={LINEARIZED_SCOUT}"]))
    assert (arch.hidden, arch.layers, arch.heads, arch.kv_heads, arch.head_dim, arch.vocab) == (
        5120, 48, 40, 8, 128, 202048)  # fmt: skip
    assert (arch.experts, arch.top_k, arch.moe_layers, arch.dense_layers) == (16, 1, 48, 0)
    assert (arch.expert_intermediate, arch.shared_intermediate) == (8192, 8192)
    assert arch.total_params == pytest.approx(109e9, rel=0.01)
    assert arch.active_params == pytest.approx(17.2e9, rel=0.02)
    assert arch.dense_moe and arch.experts_linear


def test_scout_lora_targets_are_matched_like_peft() -> None:
    arch = resolve_arch(load_recipe("llama4_scout_qlora", [f"model.name_or_path={LINEARIZED_SCOUT}"]))
    qv, missing = arch.lora_targets(["self_attn.q_proj", "v_proj"])
    assert qv == {"q_proj", "v_proj"} and missing == []
    r = 32
    targets, _ = arch.lora_targets(SCOUT_LORA.strip("[]").split(","))
    per_layer = r * ((5120 + 5120) * 2 + (5120 + 1024) * 2) + r * 3 * (5120 + 8192)
    assert arch.lora_params(targets, r) == 48 * per_layer  # attention + the shared expert only
    experts, _ = arch.lora_targets([r"experts.gate_projs.[0-9]+$"])
    assert experts == {"expert_gate_proj"}
    assert arch.lora_targets(["gate_proj"])[0] == {"shared_gate_proj"}  # routed experts are gate_projs.N


def test_scout_with_axolotls_example_settings_lands_within_20_percent_of_its_published_run() -> None:
    result = plan(load_recipe("llama4_scout_qlora", AXOLOTL_EXAMPLE), H100)
    assert result.fits and result.gpus == 1
    gb = result.per_gpu_gib * GIB / 1e9
    assert gb == pytest.approx(AXOLOTL_GB, rel=0.2)
    assert result.peak_allocated_gib == pytest.approx(AXOLOTL_GB, rel=0.2)  # if it reported GiB
    assert result.trainable_params == pytest.approx(111.7e6, rel=0.01)
    assert result.breakdown["logits"] == 0 and result.cpu_gib > 0  # CCE; checkpoints on the CPU
    text = " ".join(result.assumptions)
    assert "flex_attention" in text and "adamw_torch_4bit" in text and "offloaded" in text
    # time: one 4096-token micro-step per optimizer step, every expert computing every token
    assert result.time_per_epoch_s is not None
    tokens_s = 4096 / (result.time_per_epoch_s / math.ceil(47959 * 0.7 * 0.98 * 140 / 4096))
    assert tokens_s == pytest.approx(AXOLOTL_TOKENS_S, rel=0.3)


def test_scout_with_the_recipes_own_settings_fits_one_a800() -> None:
    a800 = load_cluster("a800")
    result = plan(
        load_recipe("llama4_scout_qlora", [f"model.name_or_path={LINEARIZED_SCOUT}", *RECIPE_OWN]), a800
    )
    assert result.fits and result.gpus == 1 and result.gpu_gib == 80
    assert 55 < result.per_gpu_gib < 75 and result.margin_gib is not None and result.margin_gib > 5
    assert result.trainable_params == 48 * 8 * ((5120 + 5120) + (5120 + 1024))


def test_scout_hub_checkpoint_keeps_3d_experts_in_bf16_and_the_fix_is_the_linearized_base() -> None:
    hub = ["model.name_or_path=meta-llama/Llama-4-Scout-17B-16E", "model.linearized_experts=false"]
    result = plan(load_recipe("llama4_scout_qlora", [*RECIPE_OWN, *hub]), load_cluster("a800"))
    assert not result.fits and result.breakdown["weights"] > 200  # 101B expert weights in bf16
    assert any("3-D parameters" in a for a in result.assumptions)
    assert result.suggestions[0] == f"--set model.name_or_path={LINEARIZED_SCOUT}"
    assert result.fixes[0].per_gpu_gib < 80


def test_scout_at_4096_tokens_without_cce_needs_a_fix_and_every_fix_fits() -> None:
    a800 = load_cluster("a800")
    base = [f"model.name_or_path={LINEARIZED_SCOUT}", *RECIPE_OWN, "train.max_length=4096"]
    result = plan(load_recipe("llama4_scout_qlora", base), a800)
    assert not result.fits
    assert "--set train.cut_cross_entropy=true" in result.suggestions
    for fix in result.fixes:
        assert plan(load_recipe("llama4_scout_qlora", [*base, *fix.overrides]), a800).fits, fix.text
