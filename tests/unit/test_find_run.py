"""Finding a run: by id, by a unique prefix, by its directory; ambiguous and missing ones refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.errors import UserError
from launcher.runs.find import find_row, find_run
from launcher.runs.registry import Registry

IDS = {"tiny_ner-20261201-1200-aaaa": "train", "tiny_ner_eval-20261201-1300-bbbb": "evaluate",
       "tiny_smoke-20261201-1400-cccc": "smoke"}  # fmt: skip


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(tmp_path / "home" / "registry.db")
    for run_id, job in IDS.items():
        run_dir = tmp_path / "runs" / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "recipe.yaml").write_text("name: x\n")
        (run_dir / "launch.json").write_text(json.dumps({"run_id": run_id}))
        registry.add(run_id, run_id.split("-")[0], "local", "local", job, run_dir, ["1"], state="completed")
    return registry


def test_by_id_and_by_unique_prefix(registry: Registry, tmp_path: Path) -> None:
    assert find_row(registry, "tiny_smoke-20261201-1400-cccc").run_id == "tiny_smoke-20261201-1400-cccc"
    assert find_row(registry, "tiny_sm").run_id == "tiny_smoke-20261201-1400-cccc"
    run_id, run_dir, row = find_run(registry, "tiny_ner_")
    assert run_id == "tiny_ner_eval-20261201-1300-bbbb" and row is not None and row.job == "evaluate"
    assert run_dir == tmp_path / "runs" / run_id


def test_an_ambiguous_prefix_is_refused_unless_one_run_is_of_the_kinds_asked(registry: Registry) -> None:
    with pytest.raises(UserError, match=r"^run 'tiny_' is ambiguous: tiny_ner-20261201-1200-aaaa, "):
        find_row(registry, "tiny_")
    assert find_run(registry, "tiny_ner", ["train"]).run_id == "tiny_ner-20261201-1200-aaaa"
    with pytest.raises(UserError, match="is ambiguous"):
        find_run(registry, "tiny_ner")


def test_by_directory_registered_or_not(registry: Registry, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "tiny_smoke-20261201-1400-cccc"
    found = find_run(registry, str(run_dir))
    assert found.run_id == run_dir.name and found.run_dir == run_dir.resolve() and found.row is not None
    copy = tmp_path / "elsewhere" / "copied"
    copy.mkdir(parents=True)
    (copy / "recipe.yaml").write_text("name: x\n")
    (copy / "launch.json").write_text(json.dumps({"run_id": run_dir.name}))
    assert find_run(registry, str(copy)) == (run_dir.name, copy.resolve(), None)  # a copy: not that row
    (copy / "launch.json").unlink()
    assert find_run(registry, str(copy)).run_id == "copied"  # no launch.json: the directory's name


def test_missing_runs(registry: Registry, tmp_path: Path) -> None:
    suggested = r"\(did you mean 'tiny_smoke-20261201-1400-cccc'\?\)"
    with pytest.raises(UserError, match=rf"^unknown run 'tiny_smoke-2026120-x' {suggested}; `launch status`"):
        find_run(registry, "tiny_smoke-2026120-x")
    with pytest.raises(UserError, match=r"^unknown run 'nothing'.*; `launch status` lists runs$"):
        find_row(registry, "nothing")
    with pytest.raises(UserError, match=r": not a run directory \(no recipe.yaml\)$"):
        find_run(registry, str(tmp_path))
    with pytest.raises(UserError, match=r"^runs/nothing: not a run directory"):
        find_run(registry, "runs/nothing")
