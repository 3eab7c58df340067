"""The token_classification job through the CLI: bad recipes are one line and create nothing, and
several GPUs start it under torchrun."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Launch


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method=qlora", "quantization=int4"], "method: token_classification fine-tunes every weight of the "
         "encoder (got qlora); valid: fft"),
        (["method=lora"], "(got lora); valid: fft"),
        (["quantization=int8"], "quantization: token_classification trains full-precision weights"),
        (["train.packing=true"], "train.packing: token_classification trains one sentence per row"),
        (["eval.engine=vllm"], "eval.engine: token_classification scores with hf (got vllm); valid: hf"),
    ],
)  # fmt: skip
def test_bad_recipes_are_one_line_and_create_nothing(
    launch: Launch, tmp_path: Path, overrides: list[str], message: str
) -> None:
    args = [a for o in overrides for a in ("--set", o)]
    proc = launch("recipe", "electra_base", "--cluster", "local", *args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_several_gpus_start_it_under_torchrun(launch: Launch) -> None:
    gpus = ["--set", "resources.gpus_per_node=4"]
    proc = launch("recipe", "electra_base", "--cluster", "a800", *gpus, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "torch.distributed.run" in x)
    assert "--nproc-per-node 4" in line and "-m jobs.token_classification --run-dir" in line
