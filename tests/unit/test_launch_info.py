"""launch.json through LaunchInfo: a round trip, old and partial files, corrupt ones, validated merges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from launcher.runs.launch_info import ChainInfo, LaunchInfo

CREATED = {
    "run_id": "tiny_ner-20261201-1200-ab12", "recipe": "tiny_ner", "recipe_source": "recipes/tiny_ner.yaml",
    "recipe_hash": "h1", "cluster": "local", "backend": "local", "job": "train",
    "created_at": "2026-12-01T12:00:00+00:00", "git_commit": None, "git_dirty": False, "job_ids": [],
    "parent": None, "wandb": {}, "extra": {}, "overrides": ["train.lr=1e-05"], "recipe_hash_base": "h0",
    "sweep": "sweep-x", "sweep_point": {"train.lr": 1e-05},
}  # fmt: skip
"""launch.json as `Run.create` writes it (every key but then and chain), in its order."""


def _file(run_dir: Path) -> dict:
    return json.loads((run_dir / "launch.json").read_text())


def test_a_round_trip_keeps_every_key_in_order(tmp_path: Path) -> None:
    LaunchInfo(**CREATED).write(tmp_path)
    assert list(_file(tmp_path).items()) == list(CREATED.items())
    info = LaunchInfo.read(tmp_path)
    assert info.run_id == CREATED["run_id"] and info.sweep_point == {"train.lr": 1e-05}
    assert info.then == [] and info.chain is None
    info.write(tmp_path)
    assert _file(tmp_path) == CREATED


def test_merges_add_keys_and_validate(tmp_path: Path) -> None:
    LaunchInfo(**CREATED).write(tmp_path)
    LaunchInfo.update(tmp_path, job_ids=["7"], extra={"profile": {"name": "local"}})
    steps = [{"text": "reeval", "kind": "reeval", "recipe": None, "cluster": None}]
    LaunchInfo.update(tmp_path, then=["reeval"], chain={"backend": "local", "job_id": None, "steps": steps})
    info = LaunchInfo.read(tmp_path)
    assert info.chain is not None
    LaunchInfo.update(tmp_path, chain=info.chain.model_copy(update={"job_id": "99@1"}))
    data = _file(tmp_path)
    assert list(data) == [*CREATED, "then", "chain"]
    assert data["job_ids"] == ["7"] and data["extra"] == {"profile": {"name": "local"}}
    assert data["chain"] == {"backend": "local", "job_id": "99@1", "steps": steps}
    assert LaunchInfo.read(tmp_path).chain == ChainInfo(backend="local", job_id="99@1", steps=steps)
    before = (tmp_path / "launch.json").read_text()
    with pytest.raises(ValidationError):
        LaunchInfo.update(tmp_path, job_ids="7")
    with pytest.raises(TypeError, match=r"launch\.json has no field jobids"):
        LaunchInfo.update(tmp_path, jobids=["7"])
    assert (tmp_path / "launch.json").read_text() == before


def test_an_old_file_with_keys_this_version_does_not_know_reads_and_keeps_them(tmp_path: Path) -> None:
    old = {"run_id": "r1", "recipe": "tiny_ner", "job_ids": ["5"], "queue": "gpu", "notes": {"a": 1}}
    (tmp_path / "launch.json").write_text(json.dumps(old))
    info = LaunchInfo.read(tmp_path)
    assert info.run_id == "r1" and info.job_ids == ["5"] and info.overrides == [] and info.sweep is None
    assert info.model_extra == {"queue": "gpu", "notes": {"a": 1}}
    LaunchInfo.update(tmp_path, wandb={"train": {"id": "w1"}})
    assert _file(tmp_path) == {**old, "wandb": {"train": {"id": "w1"}}}  # a partial file stays partial


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"', "", "[" * 100_000])
def test_a_corrupt_file_reads_as_defaults(tmp_path: Path, text: str) -> None:
    (tmp_path / "launch.json").write_text(text)
    assert LaunchInfo.read(tmp_path) == LaunchInfo()


def test_a_missing_file_reads_as_defaults_and_a_value_of_the_wrong_type_as_missing(tmp_path: Path) -> None:
    assert LaunchInfo.read(tmp_path) == LaunchInfo()
    (tmp_path / "launch.json").write_text(json.dumps({"run_id": "r1", "job_ids": "5", "chain": {"x": 1}}))
    info = LaunchInfo.read(tmp_path)
    assert info.run_id == "r1" and info.job_ids == [] and info.chain is None
