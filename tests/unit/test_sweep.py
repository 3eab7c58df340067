"""Sweeps' pure parts: grid expansion by hand, overrides read back, W&B run names, bench rows, hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.wandb_run import run_name
from launcher.config.grid import (
    expand,
    parse_grid,
    point_overrides,
    short_overrides,
    split_values,
    value_text,
)
from launcher.config.recipe import load_recipe
from launcher.errors import UserError
from launcher.runs.launch_info import LaunchInfo


def test_grid_values_are_read_as_yaml_and_split_outside_brackets() -> None:
    assert split_values('1,[2,3],"a,b", x') == ["1", "[2,3]", '"a,b"', "x"]
    grid = parse_grid(["train.lr=1e-5,5e-5", "train.packing=true,false", "eval.split=test", "x.y=[1,2],3"])
    assert grid == {
        "train.lr": [1e-5, 5e-5],
        "train.packing": [True, False],
        "eval.split": ["test"],
        "x.y": [[1, 2], 3],
    }


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["train.lr"], "--grid train.lr: expected KEY=V1,V2,..."),
        (["train.lr=1,2", "train.lr=3"], "--grid train.lr: given twice"),
        (["train.lr=,"], "--grid train.lr: no values"),
    ],
)
def test_bad_grid_options_are_user_errors(texts: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("[", r"\[")):
        parse_grid(texts)


def test_cartesian_grid_varies_the_first_key_slowest() -> None:
    grid = {"train.lr": [1e-5, 2e-5, 5e-5], "train.epochs": [3, 5]}
    assert expand(grid) == [
        {"train.lr": 1e-5, "train.epochs": 3},
        {"train.lr": 1e-5, "train.epochs": 5},
        {"train.lr": 2e-5, "train.epochs": 3},
        {"train.lr": 2e-5, "train.epochs": 5},
        {"train.lr": 5e-5, "train.epochs": 3},
        {"train.lr": 5e-5, "train.epochs": 5},
    ]


def test_zip_pairs_lists_and_refuses_unequal_lengths() -> None:
    grid = {"train.lr": [1e-5, 2e-5], "train.epochs": [3, 5]}
    assert expand(grid, zip_=True) == [
        {"train.lr": 1e-5, "train.epochs": 3},
        {"train.lr": 2e-5, "train.epochs": 5},
    ]
    with pytest.raises(UserError) as err:
        expand({"train.lr": [1e-5, 2e-5], "train.epochs": [3, 5, 7]}, zip_=True)
    assert str(err.value) == (
        "--zip: the grid lists must have one length to be paired: train.lr has 2, train.epochs has 3 values"
    )


def test_point_overrides_read_back_as_the_same_values() -> None:
    point = {
        "train.lr": 1e-5,
        "train.epochs": 3,
        "train.packing": False,
        "model.name_or_path": "a/b",
        "s": "3",
    }
    assert point_overrides(point) == [
        "train.lr=1e-05", "train.epochs=3", "train.packing=false", "model.name_or_path=a/b", 's="3"',
    ]  # fmt: skip
    assert value_text([1, 2]) == "[1, 2]" and value_text(None) == "null"
    assert parse_grid([f"k={value_text(v)}" for v in ("3", 1e-5, True)][:1]) == {"k": ["3"]}
    assert short_overrides(["train.lr=1e-05", "train.epochs=3"]) == "lr=1e-05,epochs=3"
    assert (
        short_overrides(["train.seed=1", "data.seed=2", "eval.shots=0"]) == "train.seed=1,data.seed=2,shots=0"
    )


def test_wandb_run_name_carries_the_overrides() -> None:
    info = {"run_id": "r-1", "overrides": ["train.max_steps=9", "train.lr=1e-05"]}
    assert run_name(LaunchInfo.model_validate(info), Path("/x")) == "r-1 max_steps=9,lr=1e-05"
    point = {**info, "sweep_point": {"train.lr": 1e-05}}
    assert run_name(LaunchInfo.model_validate(point), Path("/x")) == "r-1 lr=1e-05"
    assert run_name(LaunchInfo(), Path("/runs/r-2")) == "r-2"


def test_bench_rows_carry_the_overrides(tmp_path: Path) -> None:
    from launcher.scoring import bench

    run_dir = tmp_path / "tiny_ner-1"
    (run_dir / "results" / "checkpoint-10").mkdir(parents=True)
    (run_dir / "launch.json").write_text(json.dumps({"overrides": ["train.lr=1e-05", "train.epochs=3"]}))
    strict = {"precision": 0.5, "recall": 0.25, "f1": 1 / 3}
    metrics = {"strict": strict, "step": 10, "sentences": 20, "parse_failures": 0, "recipe": "tiny_ner_eval"}
    (run_dir / "results" / "checkpoint-10" / "metrics.json").write_text(json.dumps(metrics))
    (row,) = bench.run_rows(run_dir)
    assert row.overrides == "train.lr=1e-05 train.epochs=3" and "lr=1e-05,epochs=3" in row.notes
    bench.write_csv([row], tmp_path / "b.csv")
    header, line = (tmp_path / "b.csv").read_text().splitlines()
    assert header.endswith(",overrides") and line.endswith(",train.lr=1e-05 train.epochs=3")


def test_hash_before_overrides_and_sweep_section_never_resolved(tmp_path: Path) -> None:
    plain = load_recipe("tiny_smoke")
    changed = load_recipe("tiny_smoke", ["train.lr=1e-5"])
    assert changed.base_digest() == plain.digest() != changed.digest()
    assert changed.overrides == ["train.lr=1e-5"]
    text = Path("recipes/tiny_smoke.yaml").read_text()
    (tmp_path / "plain.yaml").write_text(text)
    (tmp_path / "swept.yaml").write_text(text + "sweep: {grid: {train.lr: [1e-5, 2e-5]}, max_parallel: 2}\n")
    swept = load_recipe(str(tmp_path / "swept.yaml"))
    assert swept.sweep is not None and swept.sweep.grid == {"train.lr": [1e-5, 2e-5]}
    assert swept.sweep.max_parallel == 2 and swept.sweep.zip is False
    assert "sweep" not in swept.to_yaml()
    assert swept.digest() == load_recipe(str(tmp_path / "plain.yaml")).digest()
