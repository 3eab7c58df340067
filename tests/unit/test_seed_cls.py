"""`launch score --format seed-cls` on the research's own DeepSeek-chat outputs, and the classification bench.

The fixtures are byte copies of ../shared/data/seed_outputs/classification (AG News, DDC levels 1-3,
500 items each) with the research's `.md` reports beside them.
"""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import pytest

from launcher.scoring import bench_cls, seed_cls
from launcher.scoring.labels import LabelTree
from tests.support.paths import FIXTURES

CLASSIFICATION = FIXTURES / "classification"

PUBLISHED = {1: (320, 452, 484), 2: (276, 429, 465), 3: (241, 311, 369)}

SHA256 = {
    1: "835e7d895bccd8b1cd257ea24d095b57c77cd91b4e4586eb951c6d1c3b76af82",
    2: "28322ae8a4c1c1b9095e1a10f6c5413f1ec8b92fd77b75182f00444ab829194c",
    3: "06ec806a2b32de106a197f22049d48d730e4adbdcf8077916165657458420f2c",
}


def fixture(level: int) -> Path:
    return CLASSIFICATION / f"ag_news_unified_level{level}_sample500_zero_deepseek-chat.csv.gz"


@pytest.mark.parametrize("level", [1, 2, 3])
def test_fixtures_are_the_research_files(level: int) -> None:
    assert hashlib.sha256(fixture(level).read_bytes()).hexdigest() == SHA256[level]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_seed_hits_equal_the_published_ones_exactly(level: int) -> None:
    result = seed_cls.score_seed_cls(fixture(level))
    seed = result["seed"]
    assert result["level"] == level and seed["n"] == 500
    assert tuple(seed["hits"][k] for k in ("top1", "top3", "top5")) == PUBLISHED[level]
    assert seed["top1"] == PUBLISHED[level][0] / 500
    assert result["published"]["hits"] == seed["hits"] and result["seed_equals_published"] is True
    # The research's weighted P/R/F1 (sklearn) to the 4 decimals its report prints.
    for key, value in result["published"]["weighted"].items():
        assert round(seed["weighted"][key], 4) == value
    assert seed["source"] == {"json": 500, "lines": 0, "raw": 0, "none": 0}
    assert seed["calibration"]["verbalized"]["n"] == 500 and seed["calibration"]["logprob"] is None
    assert len(result["labels_skipped"]) == 1 and "'DDC'" in result["labels_skipped"][0]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_seed_picks_equal_the_research_predicted_codes_row_by_row(level: int) -> None:
    tree = LabelTree.ddc()
    rows = seed_cls.read_rows(fixture(level))
    for row in rows:
        gold = seed_cls.gold_code(row["ddc_code"], tree)
        picks = seed_cls.match(row["response"], tree.candidates(gold, level), "seed")
        assert picks.codes == ast.literal_eval(row["predicted_codes"]), row["index"]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_tree_candidates_are_the_prompt_categories(level: int) -> None:
    """The siblings the tree gives are the categories the research's prompt listed, in order,
    except the header-like DDC row that it offered as an 11th level-1 category."""
    tree = LabelTree.ddc()
    for row in seed_cls.read_rows(fixture(level))[:60]:
        listed = row["prompt"].split("Allowed categories", 1)[1].split("\n\n", 1)[1]
        names = re.findall(r"^- (.+):$", listed.split("Rules", 1)[0], re.MULTILINE)
        ours = [lab.label for lab in tree.candidates(seed_cls.gold_code(row["ddc_code"], tree), level)]
        assert names == ([*ours, "Labels (Hierarchical)"] if level == 1 else ours)


def test_strict_differs_where_lenient_matching_merges_answers() -> None:
    strict = seed_cls.score_seed_cls(fixture(3))["strict"]
    assert strict["hits"] == {"top1": 224, "top3": 329, "top5": 414}
    for level in (1, 2):
        result = seed_cls.score_seed_cls(fixture(level))
        assert result["strict"]["hits"] == result["seed"]["hits"]


def test_published_bench_cells_are_the_reports() -> None:
    *levels, product = bench_cls.PUBLISHED
    assert product.level == "product" and product.top1 == pytest.approx(0.64 * 0.552 * 0.482)
    for row in levels:
        report = seed_cls.published_report(fixture(int(row.level)))
        assert report is not None and row.published and row.n == report["n"]
        assert (row.top1, row.top3, row.top5) == tuple(report["hits"][f"top{k}"] / 500 for k in (1, 3, 5))
        md = Path(report["report"]).read_text()
        mean = re.search(r"Avg Duration\*\*: ([\d.]+) ms", md).group(1)
        assert f"mean latency {float(mean):.0f} ms" in row.notes
