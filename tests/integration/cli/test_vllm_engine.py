"""`launch recipe` refuses what vLLM cannot run: a LoRA adapter, and more."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Launch

MODEL = "tiny://qwen2-gmb-h64"  # head_dim 64: vLLM's CPU attention runs nothing smaller


def test_launch_refuses_a_lora_adapter_for_vllm(launch: Launch, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": MODEL}))
    proc = launch("recipe", "tiny_ner_eval", "-c", "local", "--set", f"model.name_or_path={adapter}",
                  "--set", "eval.engine=vllm")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert f"eval.engine: vllm takes full checkpoints here, and {adapter} is a LoRA adapter" in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["quantization.mode=int8"], "eval.engine: vllm runs unquantized weights here"),
        (["method=lora", "lora.r=8"], "eval.engine: vllm takes full checkpoints here, not method lora"),
    ],
)
def test_launch_refuses_what_vllm_cannot_run(
    launch: Launch, tmp_path: Path, overrides: list[str], message: str
) -> None:
    sets = [a for o in ["eval.engine=vllm", *overrides] for a in ("--set", o)]
    proc = launch("recipe", "tiny_ner_eval", "-c", "local", *sets)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
