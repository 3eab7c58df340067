"""The planner: accuracy against measured peaks, DeepSpeed's ZeRO estimators, the research's
verdicts, suggestions that are checked, architectures from config.json, and no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from launcher.config.cluster import ClusterProfile, load_cluster
from launcher.config.recipe import Recipe, load_recipe
from launcher.errors import UserError
from launcher.plan import GIB, Plan, plan, render_plan, resolve_arch, zero_model_states
from tests.support.paths import FIXTURES, ROOT

CALIBRATION = json.loads((FIXTURES / "h200_memory.json").read_text())
H200 = ClusterProfile.model_validate({
    "name": "h200", "backend": "local",
    "gpu": {"type": "h200", "memory_gb": 139, "per_node": 1, "bf16": True},
})  # fmt: skip
ONE_GPU = ["resources.nodes=1", "resources.gpus_per_node=1"]
NO_ZERO = [
    "distributed.strategy=none",
    "distributed.zero_stage=0",
    "distributed.offload_optimizer=none",
    "distributed.offload_params=none",
]
ALL_LINEAR = "[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]"
LINEARIZED_SCOUT = "axolotl-quants/Llama-4-Scout-17B-16E-Linearized-bnb-nf4-bf16"


def calibration_recipe(case: dict[str, Any]) -> Recipe:
    """The recipe that reproduces one measured case of h200_memory.json (read its `setup`)."""
    small = case["params"] < 3e9
    if case["mode"] == "infer":  # bf16 weights, prompt 90 + 64 new tokens
        return load_recipe("ds1.5b_eval" if small else "ds7b_eval_int8", [
            *ONE_GPU, "model.dtype=bf16", "quantization.mode=none",
            "quantization.compute_dtype=auto", f"eval.batch_size={case['batch']}",
            "eval.max_new_tokens=64", f"train.max_length={case['seqlen']}",
        ])  # fmt: skip
    overrides = [
        *ONE_GPU,
        *NO_ZERO,
        "model.dtype=bf16",
        f"train.micro_batch_size={case['batch']}",
        f"train.max_length={case['seqlen']}",
        "train.grad_accum=1",
        f"train.gradient_checkpointing={str(case['grad_ckpt']).lower()}",
        # the measured torch AdamW as the Trainer names it: fused, or torch's default foreach
        "train.optim=" + ("adamw_torch_fused" if "fused" in case["optimizer"] else "adamw_torch"),
    ]
    if case["mode"] == "lora":  # r 16, alpha 32 on all seven projections, peft's default dropout 0
        overrides += [
            "method=lora",
            "lora.r=16",
            "lora.alpha=32",
            "lora.dropout=0.0",
            f"lora.target_modules={ALL_LINEAR}",
        ]
    return load_recipe("ds1.5b_fft" if small else "ds7b_fft", overrides)


def calibration_plan(case: dict[str, Any]) -> Plan:
    return plan(calibration_recipe(case), H200)


MEASURED = [c for c in CALIBRATION["cases"] if "peak_gib" in c]


@pytest.mark.parametrize("case", MEASURED, ids=[c["case"] for c in MEASURED])
def test_within_15_percent_of_measured_peak(case: dict[str, Any]) -> None:
    # max_memory_allocated does not count the CUDA context or fragmentation: compare like with like
    predicted = calibration_plan(case)
    assert predicted.peak_allocated_gib == pytest.approx(case["peak_gib"], rel=0.15)
    assert predicted.per_gpu_gib >= predicted.peak_allocated_gib
    if case.get("trainable"):
        assert predicted.trainable_params == case["trainable"]


def test_7b_full_fine_tune_that_ooms_is_predicted_not_to_fit_one_h200() -> None:
    (case,) = [c for c in CALIBRATION["cases"] if c.get("oom")]
    predicted = calibration_plan(case)
    assert not predicted.fits
    assert predicted.peak_allocated_gib > 139


@pytest.mark.parametrize("size", ["1.5b", "7b"])
def test_builtin_architectures_match_the_calibration_models(size: str) -> None:
    arch_keys = CALIBRATION["setup"]["architectures"][size]
    recipe = load_recipe("ds1.5b_fft" if size == "1.5b" else "ds7b_fft")
    arch = resolve_arch(recipe)
    assert arch.total_params == arch_keys["params"]
    assert (arch.vocab, arch.hidden, arch.intermediate, arch.layers, arch.heads, arch.kv_heads) == (
        arch_keys["vocab_size"], arch_keys["hidden_size"], arch_keys["intermediate_size"],
        arch_keys["num_hidden_layers"], arch_keys["num_attention_heads"],
        arch_keys["num_key_value_heads"])  # fmt: skip


# ----------------------------------------------------------------------------- DeepSpeed


def ds_zero2(
    total_params: int,
    num_gpus_per_node: int = 1,
    num_nodes: int = 1,
    cpu_offload: bool = True,
    additional_buffer_factor: float = 1.5,
) -> tuple[int, int]:
    """DeepSpeed's `deepspeed.runtime.zero.stage_1_and_2.estimate_zero2_model_states_mem_needs`
    (v0.19), reproduced so this test runs where deepspeed is not installed: (cpu, gpu) bytes."""
    total_gpus = num_nodes * num_gpus_per_node
    if cpu_offload:
        gpu_mem = 2 * total_params
        cpu_mem = total_params * max(4 * total_gpus, 16) * additional_buffer_factor
    else:
        gpu_mem = 2 * total_params + int(18 * total_params / total_gpus)
        cpu_mem = total_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem)


def ds_zero3(
    total_params: int,
    largest_layer_params: int,
    num_gpus_per_node: int = 1,
    num_nodes: int = 1,
    cpu_offload: bool = True,
    cpu_offload_params: bool = True,
    zero_init: bool = True,
    additional_buffer_factor: float = 1.5,
) -> tuple[int, int, int]:
    """DeepSpeed's `deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs` (v0.19),
    reproduced (zero_init=True branch, as a HF Trainer run uses it): (cpu, gpu, largest) bytes."""
    assert zero_init
    total_gpus = num_nodes * num_gpus_per_node
    gpus_factor = 1 / num_nodes
    largest_layer_memory = 4 * largest_layer_params
    if cpu_offload and cpu_offload_params:
        gpu_mem = largest_layer_memory
        cpu_mem = total_params * 18 * gpus_factor * additional_buffer_factor
    elif cpu_offload:
        gpu_mem = largest_layer_memory + int(2 * total_params / total_gpus)
        cpu_mem = total_params * 16 * gpus_factor * additional_buffer_factor
    else:
        gpu_mem = largest_layer_memory + int(18 * total_params / total_gpus)
        cpu_mem = largest_layer_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem), largest_layer_memory


ZERO_CASES = [
    # (params, largest layer, gpus per node, nodes, offload optimizer, offload params)
    (p, largest, g, n, oo, op)
    for p, largest in (
        (1_777_088_000, 233_373_696),
        (7_615_616_512, 544_997_376),
        (108_640_000_000, 2_139_000_000),
    )
    for g, n in ((1, 1), (4, 1), (8, 1), (8, 2))
    for oo, op in ((False, False), (True, False), (True, True))
]


def ours(stage: int, p: int, largest: int, g: int, n: int, oo: bool, op: bool) -> tuple[float, float]:
    states, cpu = zero_model_states(p, largest, stage, g, n, oo, op)
    return cpu, sum(states.values())


@pytest.mark.parametrize(("p", "largest", "g", "n", "oo", "op"), ZERO_CASES)
def test_model_states_agree_with_deepspeed_formulas(
    p: int, largest: int, g: int, n: int, oo: bool, op: bool
) -> None:
    if not op:
        assert ours(2, p, largest, g, n, oo, op) == pytest.approx(ds_zero2(p, g, n, oo), rel=1e-12)
    cpu, gpu, _ = ds_zero3(p, largest, g, n, oo, op)
    assert ours(3, p, largest, g, n, oo, op) == pytest.approx((cpu, gpu), rel=1e-12)


def test_model_states_agree_with_deepspeed_itself() -> None:
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    for p, largest, g, n, oo, op in ZERO_CASES:
        if not op:
            expected = estimate_zero2_model_states_mem_needs(p, g, n, cpu_offload=oo)
            assert ours(2, p, largest, g, n, oo, op) == pytest.approx(expected, rel=1e-12)
            assert ds_zero2(p, g, n, oo) == expected
        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
            p, largest, g, n, cpu_offload=oo, cpu_offload_params=op, zero_init=True
        )
        assert ours(3, p, largest, g, n, oo, op) == pytest.approx((cpu, gpu), rel=1e-12)


@pytest.mark.parametrize(("stage", "offload"), [(2, "none"), (2, "cpu"), (3, "none"), (3, "cpu")])
def test_planned_model_states_are_deepspeeds(stage: int, offload: str) -> None:
    recipe = load_recipe(
        "ds7b_fft",
        [
            f"distributed.zero_stage={stage}",
            f"distributed.offload_optimizer={offload}",
            f"distributed.offload_params={offload if stage == 3 else 'none'}",
        ],
    )
    arch = resolve_arch(recipe)
    result = plan(recipe, load_cluster("a800"))
    p, on = arch.total_params, offload == "cpu"
    if stage == 2:
        cpu, gpu = ds_zero2(p, 8, 1, on)
    else:
        cpu, gpu, _ = ds_zero3(p, arch.largest_layer_params, 8, 1, on, on)
    states = sum(result.breakdown[k] for k in ("weights", "gradients", "optimizer"))
    assert states == pytest.approx(gpu / GIB, rel=1e-9)
    assert result.cpu_gib == pytest.approx(cpu / GIB, rel=1e-9)


# ----------------------------------------------------------------------------- verdicts


def test_ds7b_fft_fits_8_a800_with_zero3_and_offload() -> None:
    result = plan(load_recipe("ds7b_fft"), load_cluster("a800"))
    assert result.fits and result.gpus == 8
    assert result.per_gpu_gib < 20
    assert 150 < result.cpu_gib < 1000  # optimizer states and fp32 weights on the CPU
    assert result.suggestions == []


def test_ds7b_fft_without_zero_on_one_80gb_gpu_does_not_fit() -> None:
    recipe = load_recipe("ds7b_fft", [*NO_ZERO, *ONE_GPU])
    result = plan(recipe, load_cluster("a800"))
    assert not result.fits
    assert result.per_gpu_gib > 80 and result.margin_gib is not None and result.margin_gib < 0
    assert result.suggestions
    for fix in result.fixes:  # every suggestion really fits when planned
        changed = load_recipe("ds7b_fft", [*NO_ZERO, *ONE_GPU, *fix.overrides])
        assert plan(changed, load_cluster("a800")).fits, fix.text
        assert fix.per_gpu_gib <= 80
    joined = " | ".join(result.suggestions)
    assert "--set distributed.zero_stage=" in joined and "--set method=lora" in joined
    assert all(s.startswith("--set ") for s in result.suggestions)


def test_ds15b_eval_fits_one_2080ti_in_fp16() -> None:
    result = plan(load_recipe("ds1.5b_eval"), load_cluster("2080ti"))
    assert result.fits and result.gpu_gib == 11
    assert result.breakdown["kv_cache"] > 0 and result.breakdown["gradients"] == 0
    assert result.breakdown["weights"] == pytest.approx(1_777_088_000 * 2 / GIB)


def test_llama4_scout_qlora_fits_one_80gb_gpu() -> None:
    # the linearized NF4 base (experts as nn.Linear, which bitsandbytes quantizes): see
    # tests/unit/test_plan_cases.py for the hub checkpoint, whose 3-D experts stay in bf16
    recipe = load_recipe("llama4_scout_qlora", [f"model.name_or_path={LINEARIZED_SCOUT}"])
    arch = resolve_arch(recipe)
    assert 105e9 < arch.total_params < 112e9 and 16e9 < arch.active_params < 18.5e9
    result = plan(recipe, load_cluster("a800"))
    assert result.fits and result.gpus == 1
    assert 50 < result.per_gpu_gib < 80
    assert result.trainable_params < 10e6  # LoRA r 8 on q and v


def test_7b_full_fine_tune_on_a_2080ti_does_not_fit() -> None:
    recipe = load_recipe("ds7b_fft", [*NO_ZERO, *ONE_GPU, "model.dtype=fp16"])
    result = plan(recipe, load_cluster("2080ti"))
    assert not result.fits and result.per_gpu_gib > 100


def test_more_work_needs_more_memory() -> None:
    a800 = load_cluster("a800")
    base = [*NO_ZERO, *ONE_GPU, "method=lora"]

    def gib(*extra: str) -> float:
        return plan(load_recipe("ds7b_fft", [*base, *extra]), a800).per_gpu_gib

    assert gib("train.gradient_checkpointing=false") > gib()
    assert gib("train.micro_batch_size=8") > gib("train.micro_batch_size=2")
    assert gib("train.max_length=2048") > gib("train.max_length=256")
    assert gib("method=qlora", "quantization.mode=int4") < gib()
    int8 = plan(load_recipe("ds7b_eval_int8"), load_cluster("2080ti")).breakdown["weights"]
    bf16 = plan(load_recipe("ds7b_eval_int8", ["quantization.mode=none"]), a800).breakdown["weights"]
    assert int8 < 0.6 * bf16


def test_every_recipe_plans_on_its_cluster() -> None:
    for name, cluster in [
        ("ds1.5b_fft", "a800"),
        ("ds7b_eval_int8", "2080ti"),
        ("electra_base", "2080ti"),
        ("nuner", "2080ti"),
    ]:
        result = plan(load_recipe(name), load_cluster(cluster))
        assert result.fits, name
        assert result.time_per_epoch_s is not None and result.time_per_epoch_s > 0
        assert result.peak_tflops in (312.0, 53.8)


def test_tiny_model_plans_when_given_a_gpu() -> None:
    result = plan(load_recipe("tiny_ner", ["resources.gpus_per_node=1"]), load_cluster("2080ti"))
    assert result.fits and result.per_gpu_gib < 2


def test_evaluation_through_an_api_needs_no_gpu_plan() -> None:
    recipe = load_recipe("agnews_zero_shot", ["resources.gpus_per_node=1"])
    result = plan(recipe, load_cluster("2080ti"))
    assert result.per_gpu_gib == 0 and result.planner == "none"


@pytest.mark.parametrize("name", ["spacy_lg", "agnews_zero_shot", "tiny_smoke", "tiny_ner"])
def test_non_llm_jobs_get_a_trivial_plan(name: str) -> None:
    result = plan(load_recipe(name), load_cluster("local"))
    assert result.fits and result.per_gpu_gib == 0 and result.assumptions


def test_profile_with_only_memory_gets_a_verdict_but_no_time() -> None:
    ray = load_cluster("ray")  # gpu: {type: null, memory_gb: 80, bf16: true}
    result = plan(load_recipe("ds7b_fft"), ray)
    assert result.fits and result.gpu_gib == 80
    assert result.time_per_epoch_s is None and result.peak_tflops is None
    assert any("no time estimate" in a for a in result.assumptions)


def test_time_per_epoch_states_its_assumptions() -> None:
    result = plan(load_recipe("ds1.5b_fft"), load_cluster("a800"))
    assert result.peak_tflops == 312.0 and result.utilization is not None
    assert 0 < result.utilization < 0.5
    assert any(a.startswith("time:") and "utilization" in a for a in result.assumptions)


# Quoted from tests/fixtures/h200_throughput.json (1.5B architecture, one H200, HF + sdpa; its
# packed rows attend across sample boundaries, as sdpa without a block mask does).
THROUGHPUT = [  # (overrides, useful tokens/s)
    (["train.micro_batch_size=2", "train.max_length=512", "train.packing=false"], 1702),
    (["train.micro_batch_size=4", "train.max_length=4096", "train.packing=true",
      "model.attn_implementation=sdpa"], 34194),
]  # fmt: skip
GENERATION = [(1, 0.63), (64, 20.68), (256, 79.86)]  # batch, sequences/s (prompt 90, 64 new)


@pytest.mark.parametrize(("overrides", "measured"), THROUGHPUT)
def test_training_time_reproduces_measured_throughput(overrides: list[str], measured: int) -> None:
    recipe = load_recipe("ds1.5b_fft", [
        *ONE_GPU, *NO_ZERO, "model.dtype=bf16", "train.grad_accum=1",
        "train.gradient_checkpointing=false", *overrides,
    ])  # fmt: skip
    result = plan(recipe, H200)
    assert result.time_per_epoch_s is not None
    samples = 47959 * 0.7 * 0.98  # the GMB train split the time estimate walks through
    useful = samples * 139.9 / result.time_per_epoch_s
    assert useful == pytest.approx(measured, rel=0.15)


@pytest.mark.parametrize(("batch", "measured"), GENERATION)
def test_generation_time_reproduces_measured_throughput(batch: int, measured: float) -> None:
    recipe = load_recipe("ds1.5b_eval", [
        "model.dtype=bf16", f"eval.batch_size={batch}", "eval.max_new_tokens=64",
        "train.max_length=90",
    ])  # fmt: skip
    result = plan(recipe, H200)
    assert result.time_per_epoch_s is not None
    assert round(47959 * 0.3) / result.time_per_epoch_s == pytest.approx(measured, rel=0.15)


# ----------------------------------------------------------------------------- architecture


def test_local_config_json_gives_the_same_plan_as_the_table(tmp_path: Path) -> None:
    keys = dict(CALIBRATION["setup"]["architectures"]["7b"])
    keys.pop("params")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2", **keys}))
    a800 = load_cluster("a800")
    table = plan(load_recipe("ds7b_fft"), a800)
    by_dir = plan(load_recipe("ds7b_fft", [f"model.name_or_path={tmp_path}"]), a800)
    by_config = plan(
        load_recipe(
            "ds7b_fft", ["model.name_or_path=someone/unknown-7b", f"model.config={tmp_path / 'config.json'}"]
        ),
        a800,
    )
    assert by_dir.per_gpu_gib == pytest.approx(table.per_gpu_gib)
    assert by_config.per_gpu_gib == pytest.approx(table.per_gpu_gib)
    assert str(tmp_path) in " ".join(by_dir.assumptions)


def test_llama4_style_moe_config_json(tmp_path: Path) -> None:
    text = {
        "model_type": "llama4_text",
        "vocab_size": 202048,
        "hidden_size": 5120,
        "intermediate_size": 8192,
        "intermediate_size_mlp": 16384,
        "num_hidden_layers": 48,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "num_local_experts": 16,
        "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 2,
    }
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "llama4", "tie_word_embeddings": False, "text_config": text})
    )
    recipe = load_recipe("llama4_scout_qlora", [f"model.config={tmp_path}"])
    arch = resolve_arch(recipe)
    assert arch.moe_layers == 24 and arch.experts == 16
    dense = 24 * 3 * 5120 * 16384  # every other layer is dense (Maverick-style interleave)
    assert arch.total_params > dense
    assert plan(recipe, load_cluster("a800")).per_gpu_gib > 0


def test_unknown_model_without_config_is_a_one_line_user_error() -> None:
    recipe = load_recipe("ds7b_fft", ["model.name_or_path=someone/mystery-13b"])
    with pytest.raises(UserError) as err:
        plan(recipe, load_cluster("a800"))
    message = str(err.value)
    assert "\n" not in message
    assert "ds7b_fft.yaml" in message and "model.name_or_path" in message
    assert "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B" in message and "model.config" in message


def test_unreadable_config_json_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match=r"config\.json"):
        plan(load_recipe("ds7b_fft", [f"model.config={tmp_path}"]), load_cluster("a800"))


# ----------------------------------------------------------------------------- output


def test_to_json_is_one_json_object_with_the_promised_keys() -> None:
    result = plan(load_recipe("ds7b_fft", [*NO_ZERO, *ONE_GPU]), load_cluster("a800"))
    data = json.loads(json.dumps(result.to_json()))
    assert data["fits"] is False
    for key in (
        "per_gpu_gib",
        "cpu_gib",
        "gpu_gib",
        "margin_gib",
        "time_per_epoch_s",
        "peak_tflops",
        "utilization",
        "assumptions",
        "suggestions",
    ):
        assert key in data
    assert set(data["breakdown"]) == {
        "weights",
        "gradients",
        "optimizer",
        "activations",
        "logits",
        "kv_cache",
        "overhead",
    }
    assert sum(data["breakdown"].values()) == pytest.approx(data["per_gpu_gib"], abs=0.05)


def test_render_plan_prints_breakdown_verdict_and_fixes() -> None:
    from rich.console import Console

    result = plan(load_recipe("ds7b_fft", [*NO_ZERO, *ONE_GPU]), load_cluster("a800"))
    console = Console(record=True, width=200)
    console.print(render_plan(result))
    text = console.export_text()
    for word in (
        "weights",
        "optimizer",
        "kv cache",
        "overhead",
        "does not fit",
        "--set method=lora",
        "assumptions",
    ):
        assert word in text
    console.print(render_plan(plan(load_recipe("spacy_md"), load_cluster("local"))))


def test_planner_imports_no_torch() -> None:
    code = (
        "import sys; from launcher.plan import plan; from launcher.config.recipe import load_recipe; "
        "from launcher.config.cluster import load_cluster; "
        "plan(load_recipe('ds7b_fft'), load_cluster('a800')); "
        "assert 'torch' not in sys.modules and 'rich' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
