"""W&B tracking: the mode (online with a key, offline without, disabled when the recipe says),
the names (entity, project, group = recipe, tags, job_type) read back from the offline run file,
and what `launch status` tells people: the URL, or the offline directory and the exact sync command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.config.recipe import load_recipe
from launcher.tracking.wandb_mode import wandb_mode
from launcher.views.status import wandb_text

KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("requested", "env", "mode"),
    [
        ("auto", {"WANDB_API_KEY": KEY}, "online"),
        ("auto", {}, "offline"),
        ("auto", {"WANDB_API_KEY": KEY, "WANDB_MODE": "offline"}, "offline"),
        ("auto", {"WANDB_MODE": "disabled"}, "disabled"),
        ("offline", {"WANDB_API_KEY": KEY}, "offline"),
        ("disabled", {"WANDB_API_KEY": KEY}, "disabled"),
        ("online", {}, "online"),
    ],
)
def test_wandb_mode(requested: str, env: dict[str, str], mode: str) -> None:
    assert wandb_mode(requested, env) == mode


def test_status_gives_the_url_of_an_online_run(tmp_path: Path) -> None:
    url = "https://wandb.ai/nlp-lab/llm-ner/runs/abc123"
    (tmp_path / "launch.json").write_text(
        json.dumps({"wandb": {"train": {"mode": "online", "url": url}, "url": url}})
    )
    assert wandb_text(tmp_path) == url and wandb_text(tmp_path, short=True) == url


def test_disabled_starts_no_wandb_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobs import wandb_run

    monkeypatch.setenv("WANDB_API_KEY", KEY)
    recipe = load_recipe("tiny_ner", ["tracking.wandb.mode=disabled"])
    (tmp_path / "launch.json").write_text("{}")
    assert wandb_run.start(recipe, tmp_path, "train") is None
    assert not (tmp_path / "wandb").exists() and json.loads((tmp_path / "launch.json").read_text()) == {}


def test_axolotl_gets_the_resolved_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from launcher.kinds.axolotl import axolotl_config

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert axolotl_config(load_recipe("llama4_scout_qlora"), tmp_path)["wandb_mode"] == "offline"
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    assert axolotl_config(load_recipe("llama4_scout_qlora"), tmp_path)["wandb_mode"] == "online"
    disabled = load_recipe("llama4_scout_qlora", ["tracking.wandb.mode=disabled"])
    assert "wandb_project" not in axolotl_config(disabled, tmp_path)
