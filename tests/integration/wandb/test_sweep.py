"""A sweep point's W&B run (offline) carries the overrides in its config and name, the sweep as group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.config.recipe import load_recipe


def test_wandb_gets_the_overrides_in_config_and_name_and_the_sweep_as_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs import wandb_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    overrides = ["tracking.wandb.mode=offline", "train.lr=1e-05"]
    recipe = load_recipe("tiny_smoke", overrides)
    info = {"run_id": "r-1", "overrides": overrides, "sweep": "sweep-s-1", "sweep_point": {"train.lr": 1e-05}}
    (tmp_path / "launch.json").write_text(json.dumps(info))
    run = wandb_run.start(recipe, tmp_path, "train")
    try:
        assert run.name == "r-1 lr=1e-05" and run.group == "sweep-s-1"
        assert run.config["overrides"] == overrides and run.config["sweep"] == "sweep-s-1"
        assert run.config["train"]["lr"] == 1e-05
    finally:
        run.finish()
