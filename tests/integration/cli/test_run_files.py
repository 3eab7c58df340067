"""`--dry-run` through the CLI shows the axolotl and DeepSpeed configs a submission would write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.config.recipe import load_recipe
from launcher.kinds.axolotl import axolotl_config_text
from launcher.kinds.deepspeed import deepspeed_config
from tests.support.cli import Launch


def _sections(stdout: str) -> tuple[Path, dict[str, str]]:
    """(run directory, {file name: content}) of a dry run's output."""
    run_dir = Path(next(line for line in stdout.splitlines() if line.startswith("# run directory: "))[17:])
    sections: dict[str, str] = {}
    for chunk in stdout.split("\n# ---- ")[1:]:
        name, _, text = chunk.partition(" ----\n")
        sections[name] = text
    return run_dir, sections


def test_dry_run_prints_the_axolotl_config(
    launch: Launch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    proc = launch("recipe", "llama4_scout_qlora", "--cluster", "a800", "--dry-run", "--force", check=True)
    run_dir, sections = _sections(proc.stdout)
    assert list(sections) == ["recipe.yaml", "axolotl.yaml"]
    header = sections["axolotl.yaml"].splitlines()[0]
    assert header.endswith("recipe llama4_scout_qlora (built-in recipes/llama4_scout_qlora.yaml)")
    monkeypatch.setenv("WANDB_MODE", "offline")  # as the launch fixture's environment
    monkeypatch.chdir(tmp_path)  # and its working directory
    recipe = load_recipe("llama4_scout_qlora")
    assert sections["axolotl.yaml"] == axolotl_config_text(recipe, run_dir)
    assert sections["recipe.yaml"] == recipe.to_yaml()
    assert proc.stdout.index("srun ") < proc.stdout.index("# files the run will write in ")
    assert not run_dir.exists()  # a dry run creates nothing


def test_dry_run_prints_the_deepspeed_config(launch: Launch) -> None:
    proc = launch("recipe", "ds7b_fft", "--cluster", "a800", "--dry-run", "--force", check=True)
    _, sections = _sections(proc.stdout)
    assert list(sections) == ["recipe.yaml", "deepspeed.json"]
    assert json.loads(sections["deepspeed.json"]) == deepspeed_config(load_recipe("ds7b_fft"))
