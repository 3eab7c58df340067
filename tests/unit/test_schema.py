"""Pure schema logic: overrides, durations, defaults, cross-field rules, error lines."""

from __future__ import annotations

import pytest

from launcher.config.cluster import check_fit, load_cluster
from launcher.config.duration import duration_seconds
from launcher.config.recipe import Recipe, load_recipe
from launcher.config.schema import apply_overrides, parse_override
from launcher.errors import UserError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("10:30", 630), ("01:00:00", 3600), ("72:00:00", 259200), ("2-00", 172800),
     ("1-02:03", 93780), ("1-02:03:04", 93784)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


def test_override_values_are_yaml() -> None:
    assert parse_override("lora.target_modules=[q_proj,v_proj]") == (
        ["lora", "target_modules"], ["q_proj", "v_proj"]
    )  # fmt: skip
    assert parse_override("train.packing=false") == (["train", "packing"], False)
    assert parse_override("train.lr=1e-5")[1] == pytest.approx(1e-5)
    assert parse_override("model.name_or_path=a=b") == (["model", "name_or_path"], "a=b")


def test_overrides_apply_and_validate() -> None:
    r = load_recipe("ds7b_fft", ["train.lr=1e-5", "train.packing=false", "resources.nodes=2"])
    assert (r.train.lr, r.train.packing, r.resources.nodes) == (1e-5, False, 2)
    r = load_recipe("ds7b_fft", ["method=lora", "lora.target_modules=[q_proj,k_proj]"])
    assert r.lora is not None and r.lora.target_modules == ["q_proj", "k_proj"]


def test_override_inside_a_shorthand_section_keeps_the_shorthand() -> None:
    r = load_recipe("ds7b_fft", ["method=qlora", "quantization=int4", "quantization.compute_dtype=bf16"])
    assert (r.quantization.mode, r.quantization.compute_dtype) == ("int4", "bf16")


def test_unknown_override_key_names_valid_keys() -> None:
    with pytest.raises(UserError) as err:
        apply_overrides(Recipe, {}, ["train.lrr=1"])
    msg = str(err.value)
    assert msg.startswith("--set train.lrr: unknown key 'lrr' (did you mean 'lr'?)")
    assert "micro_batch_size" in msg


def test_lora_defaults_for_lora_methods() -> None:
    r = load_recipe("ds7b_fft", ["method=lora"])
    assert r.lora is not None and r.lora.r == 16


def test_resolved_recipe_round_trips() -> None:
    r = load_recipe("ds7b_fft")
    again = Recipe.model_validate(__import__("yaml").safe_load(r.to_yaml()))
    assert again.model_dump() == r.model_dump() and again.digest() == r.digest()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method=qlora"], "--set method: qlora needs quantization: int4"),
        (["quantization=int4"], "--set quantization: int4 weights cannot be fully fine-tuned"),
        (["lora.r=4"], "--set lora.r: lora: settings given but method is fft"),
        (["method=ftt"], "--set method: 'ftt' is not valid (did you mean 'fft'?); valid: fft, lora, qlora"),
        (["train.lr=fast"], "--set train.lr: Input should be a valid number"),
        (["distributed.zero_stage=4"], "--set distributed.zero_stage: Input should be less than or equal to"),
    ],
)
def test_bad_values_give_one_line_naming_the_set_argument(overrides: list[str], message: str) -> None:
    with pytest.raises(UserError) as err:
        load_recipe("ds7b_fft", overrides)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_fit_checks() -> None:
    a800 = load_cluster("a800")
    check_fit(load_recipe("ds7b_fft"), a800)
    with pytest.raises(UserError, match=r"resources.gpus_per_node: 16 is more than the 8 GPUs per node"):
        check_fit(load_recipe("ds7b_fft", ["resources.gpus_per_node=16"]), a800)
    with pytest.raises(UserError, match=r"resources.nodes: 9 .* valid: 1-5"):
        check_fit(load_recipe("ds7b_fft", ["resources.nodes=9"]), a800)
    with pytest.raises(UserError, match=r"resources.time: 300:00:00 is longer than the 240:00:00 limit"):
        check_fit(load_recipe("ds7b_fft", ["resources.time=300:00:00"]), a800)
    with pytest.raises(UserError, match=r"model.dtype: bf16 is not supported .* valid: fp16, fp32 or auto"):
        check_fit(load_recipe("ds1.5b_eval", ["model.dtype=bf16"]), load_cluster("2080ti"))
    with pytest.raises(UserError, match=r"resources.gpu_type: 'h100' is not offered .* valid: a800"):
        check_fit(load_recipe("ds7b_fft", ["resources.gpu_type=h100"]), a800)
