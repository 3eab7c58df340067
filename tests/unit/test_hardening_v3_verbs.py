"""Issue 26, items 16, 17, 20, 21 and 23 as pure logic: duplicate grid points, --watch and --since
bounds, bench numbers in range, empty run references, a registry that a dry run does not create."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from launcher.config.grid import expand, parse_grid, unique_points
from launcher.errors import UserError, require_file, require_positive
from launcher.loop import sweep
from launcher.runs.find import find_row, find_run
from launcher.runs.registry import Registry
from launcher.scoring import bench_cls, tables
from launcher.views.status import check_watch, parse_since


def test_unique_points_keep_the_first_of_each_in_order() -> None:
    points = expand(parse_grid(["train.seed=1,2,1", "train.lr=1e-5,1e-5"]))
    kept, dropped = unique_points(points)
    assert kept == [{"train.seed": 1, "train.lr": 1e-5}, {"train.seed": 2, "train.lr": 1e-5}]
    assert len(dropped) == 4
    assert unique_points(expand({"a": [1, 1.0, True, "1"]}))[1] == []  # four different --set texts


@pytest.mark.parametrize("value", [1.0, 2.0, 86400.0])
def test_watch_accepts_one_second_to_a_day(value: float) -> None:
    assert check_watch(value) == value


@pytest.mark.parametrize("value", [0.0, 0.001, 0.999, -1.0, math.inf, math.nan, 1e300, 86401.0])
def test_watch_refuses_the_rest(value: float) -> None:
    with pytest.raises(UserError, match=r"^--watch: SECONDS must be from 1 to 86400"):
        check_watch(value)


def test_since_out_of_range_is_a_user_error() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2w", now) == datetime(2026, 11, 17, tzinfo=UTC)
    for text in ("1000000w", "99999999999999999999d"):
        with pytest.raises(UserError, match=rf"^--since: {text} reaches back before the year 1"):
            parse_since(text, now)


@pytest.mark.parametrize("value", [7.5, -3, math.nan, math.inf, "0.5", None, True])
def test_a_fraction_out_of_range_or_of_the_wrong_type_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"^strict\.f1: "):
        tables.fraction("strict.f1", value)
    assert tables.fraction("strict.f1", 0) == 0.0 and tables.fraction("strict.f1", 1) == 1.0


def test_a_classification_row_out_of_range_is_refused() -> None:
    good = bench_cls.ClsRow("ag_news", "1", "zero", "flat", "m", 0.5, 0.9, 1.0, 0.1, None, 120.0, 2, "")
    bench_cls._check(good)
    for field, value in (("top1", 1.5), ("ece", -0.1), ("top3", math.nan), ("p50_ms", -1.0), ("n", -2)):
        with pytest.raises(ValueError, match=field.replace("p50_ms", "latency_ms")):
            bench_cls._check(good.__class__(**{**good.__dict__, field: value}))


def test_max_parallel_must_be_positive() -> None:
    assert require_positive("--max-parallel", 1) == 1
    for value in (0, -5):
        with pytest.raises(UserError, match=rf"^--max-parallel: {value} is not a positive number"):
            require_positive("--max-parallel", value)


def test_require_file_says_a_directory_is_one(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory, not a file"):
        require_file(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        require_file(tmp_path / "missing.csv")


def test_an_empty_reference_never_names_every_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(tmp_path / "registry.db")
    run_dir = tmp_path / "runs" / "only-20261201-1200-aaaa"
    run_dir.mkdir(parents=True)
    (run_dir / "recipe.yaml").write_text("name: x\n")
    registry.add(run_dir.name, "only", "local", "local", "train", run_dir, ["1"], state="completed")
    registry.add_sweep("sweep-only-20261201-1200-bbbb", "only", "local", ["train.lr"])
    monkeypatch.chdir(run_dir)  # "" is not the current directory either
    for ref in ("", "  "):
        with pytest.raises(UserError, match="the argument is empty"):
            find_row(registry, ref)
        with pytest.raises(UserError, match="the argument is empty"):
            find_run(registry, ref)
        with pytest.raises(UserError, match="the argument is empty"):
            sweep.resolve(registry, ref)


def test_a_registry_opened_without_create_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "home" / "registry.db"
    empty = Registry(path, create=False)
    assert empty.all() == [] and empty.find("x") == [] and not (tmp_path / "home").exists()
    Registry(path).add("r-1", "r", "local", "local", "train", tmp_path, ["1"])
    assert [r.run_id for r in Registry(path, create=False).all()] == ["r-1"]
