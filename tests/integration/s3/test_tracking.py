"""W&B names in the stored run's offline run file, and the exact `wandb sync` command that
`launch status` gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.s3_server import StoredRun
from tests.support.wandb_offline import read_run


@pytest.mark.slow
def test_train_run_names_in_the_offline_run_file(stored_run: StoredRun) -> None:
    info = json.loads((stored_run.run_dir / "launch.json").read_text())
    train = info["wandb"]["train"]
    assert train["mode"] == "offline", "the recipe says offline although a key is present"
    logged = read_run(Path(train["offline_dir"]))
    assert (logged.run_id, logged.job_type, logged.group) == (train["id"], "train", "tiny_ner")
    assert (logged.project, logged.entity) == ("recipe-launcher-tiny", "nlp-lab")
    assert sorted(logged.tags) == ["s3", "tiny"]
    assert logged.config["artifacts"]["uri"] == stored_run.uri
    assert "train/loss" in set().union(*logged.history)


@pytest.mark.slow
def test_status_gives_the_exact_wandb_sync_command(stored_run: StoredRun) -> None:
    offline = json.loads((stored_run.run_dir / "launch.json").read_text())["wandb"]["offline_dir"]
    assert list(Path(offline).glob("run-*.wandb")), "the directory named must be the offline run"
    detail = stored_run.launch("status", stored_run.run_id).stdout
    line = next(line for line in detail.splitlines() if line.startswith("W&B"))
    assert line.split(None, 1)[1] == f"offline: wandb sync {offline}"
    table = stored_run.launch("status").stdout
    assert "offline" in next(line for line in table.splitlines() if stored_run.run_id[:12] in line)
