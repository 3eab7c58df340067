"""Offloaded checkpointing is for the axolotl engine: the CLI refuses it for hf."""

from __future__ import annotations

from tests.support.cli import Launch


def test_offload_is_for_the_axolotl_engine(launch: Launch) -> None:
    args = ["--dry-run", "--set", "train.gradient_checkpointing=offload"]
    proc = launch("recipe", "tiny_ner", "-c", "local", *args)
    assert proc.returncode == 2 and "gradient_checkpointing: offload" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
