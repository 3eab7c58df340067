"""`launch score --format seed-cls` and `launch bench` through the CLI on the research's own
DeepSeek-chat classification outputs (tests/fixtures/classification): tables, JSON, bad input."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import yaml

from launcher.scoring.classification import score_classification, score_levels
from launcher.scoring.labels import LabelTree
from tests.support.cli import Launch
from tests.support.paths import FIXTURES

CLASSIFICATION = FIXTURES / "classification"


def fixture(level: int) -> Path:
    return CLASSIFICATION / f"ag_news_unified_level{level}_sample500_zero_deepseek-chat.csv.gz"


def test_cli_json_layout(launch: Launch) -> None:
    proc = launch("score", str(fixture(2)), "--format", "seed-cls", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for matcher in ("seed", "strict"):
        assert {"n", "top1", "top3", "top5", "hits", "calibration"} <= set(out[matcher])
        assert set(out[matcher]["hits"]) == {"top1", "top3", "top5"}
        assert set(out[matcher]["calibration"]["verbalized"]) >= {"ece", "brier"}
    assert out["seed"]["hits"] == {"top1": 276, "top3": 429, "top5": 465}
    assert out["seed_equals_published"] is True and out["level"] == 2
    assert "skipped code 'DDC'" in proc.stderr


def test_cli_table_and_explicit_level_and_labels(launch: Launch, tmp_path: Path) -> None:
    copy = tmp_path / "results.csv"
    copy.write_bytes(gzip.decompress(fixture(1).read_bytes()))  # no level in the name, no report
    proc = launch("score", str(copy), "--format", "seed-cls", "--labels", str(LabelTree.ddc().source))
    assert proc.returncode == 0, proc.stderr
    assert "(level 1," in proc.stdout  # from the prompt's "top-level classifier"
    assert re.search(r"seed\s+500\s+0\.6400 \(320\)\s+0\.9040 \(452\)\s+0\.9680 \(484\)", proc.stdout)
    assert "published" not in proc.stdout
    proc = launch("score", str(fixture(2)), "--format", "seed-cls", "--level", "2", "--json")
    assert json.loads(proc.stdout)["seed"]["hits"]["top1"] == 276


def _bad(launch: Launch, *args: str) -> str:
    proc = launch("score", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr and proc.stdout == ""
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(launch: Launch, tmp_path: Path) -> None:
    missing = tmp_path / "few.csv"
    missing.write_text("index,title,response\n1,t,r\n")
    line = _bad(launch, str(missing), "--format", "seed-cls")
    assert "missing column(s) ddc_code, prompt" in line and str(missing) in line
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(fixture(1).read_bytes()[:5000])
    assert "cannot read as CSV" in _bad(launch, str(broken), "--format", "seed-cls")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"index,title,ddc_code,prompt,response\n1,caf\xe9,300,p,r\n")
    assert "cannot read as CSV" in _bad(launch, str(latin), "--format", "seed-cls", "--level", "1")
    assert "no such file" in _bad(launch, str(tmp_path / "nope.csv"), "--format", "seed-cls")
    empty = tmp_path / "empty_level1.csv"
    empty.write_text("index,title,ddc_code,prompt,response\n")
    assert "no rows" in _bad(launch, str(empty), "--format", "seed-cls")
    nolevel = tmp_path / "x.csv"
    nolevel.write_text("index,title,ddc_code,prompt,response\n1,t,300,p,r\n")
    assert "pass --level" in _bad(launch, str(nolevel), "--format", "seed-cls")
    assert "valid: 1 to 3" in _bad(launch, str(fixture(1)), "--format", "seed-cls", "--level", "4")
    flat = tmp_path / "flat.csv"
    flat.write_text("code,level,label\n1,1,World\n2,1,Sports\n")
    line = _bad(launch, str(fixture(1)), "--format", "seed-cls", "--labels", str(flat))
    assert "row 2: ddc_code '300' is not a level-1 code" in line
    assert "only to --format seed-cls" in _bad(launch, str(missing), "--format", "jsonl", "--level", "1")


def _classify_run(root: Path, name: str, metrics: dict, job: str = "classify") -> Path:
    run = root / name
    (run / "results" / "eval").mkdir(parents=True)
    recipe = {"job": job, "model": {"name_or_path": "smollm2-135m-instruct"}, "data": {"name": "ag_news"}}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    (run / "results" / "eval" / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_launch_bench_writes_the_classification_table(launch: Launch, tmp_path: Path) -> None:
    rows = [
        {"id": "a", "gold": "1", "parse_status": "ok", "latency_ms": 120.0, "cached": False,
         "predictions": [{"label": "1", "confidence_verbal": 0.9, "confidence_logprob": 0.8}]},
        {"id": "b", "gold": "2", "parse_status": "ok", "latency_ms": 80.0, "cached": True,
         "predictions": [{"label": "1", "confidence_verbal": 0.6, "confidence_logprob": 0.3},
                         {"label": "2", "confidence_verbal": 0.2, "confidence_logprob": 0.1}]},
    ]  # fmt: skip
    flat = {**score_classification(rows), "dataset": "ag_news", "level": 1, "shots": 0, "mode": "flat",
            "model": "smollm2-135m-instruct"}  # fmt: skip
    hier_rows = [
        {**r, "level": lv, "gold": r["gold"] * lv,
         "predictions": [{**p, "label": p["label"] * lv} for p in r["predictions"]]}
        for r in rows for lv in (1, 2)
    ]  # fmt: skip
    # The job's layout: the deepest level at the top, score_levels under "hierarchy", levels a list.
    deepest = score_classification([r for r in hier_rows if r["level"] == 2])
    hier = {**deepest, "dataset": "ddc", "level": 2, "levels": [1, 2], "shots": 5, "mode": "cascade",
            "hierarchy": score_levels(hier_rows)}  # fmt: skip
    flat_run = _classify_run(tmp_path / "runs", "cls-flat", flat)
    hier_run = _classify_run(tmp_path / "runs", "cls-cascade", hier)
    other = _classify_run(tmp_path / "runs", "not-cls", flat, job="smoke")
    out = tmp_path / "bench"
    proc = launch("bench", str(flat_run), str(hier_run), str(other), "--out", str(out), "--no-wandb")
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader((out / "benchmark_classification.csv").open()))
    ours = [r for r in table if r["published"] == "False"]
    assert [(r["run"], r["level"], r["mode"]) for r in ours] == [
        ("cls-flat", "1", "flat"), ("cls-cascade", "1", "cascade"), ("cls-cascade", "2", "cascade"),
        ("cls-cascade", "joint", "cascade")]  # fmt: skip
    first = ours[0]
    assert (first["dataset"], first["shots"], first["model"]) == ("ag_news", "zero", "smollm2-135m-instruct")
    assert float(first["top1"]) == flat["top1"] == 0.5 and float(first["top3"]) == 1.0
    assert float(first["ece"]) == flat["calibration"]["verbalized"]["ece"]
    assert float(first["ece_logprob"]) == flat["calibration"]["logprob"]["ece"]
    assert float(first["p50_ms"]) == 100.0 and first["n"] == "2"
    assert float(ours[3]["top1"]) == 0.5 and "product hit rate 0.2500" in ours[3]["notes"]
    assert {r["shots"] for r in ours[1:]} == {"few (5)"} and ours[2]["dataset"] == "ddc"
    published = [r for r in table if r["published"] == "True"]
    assert [(r["level"], r["top1"], r["model"]) for r in published] == [
        ("1", "0.64", "deepseek-chat"),
        ("2", "0.552", "deepseek-chat"),
        ("3", "0.482", "deepseek-chat"),
        ("product", repr(0.64 * 0.552 * 0.482), "deepseek-chat"),
    ]
    md = (out / "benchmark_classification.md").read_text()
    assert md.startswith("| dataset | level | shots | mode | model | top-1 | top-3 | top-5 | ECE |")
    assert md.count("published:") == 3 and "not-cls" not in md
    assert "benchmark (text classification)" in proc.stdout and "0.6400" in proc.stdout
    assert "benchmark (GMB NER)" not in proc.stdout  # these runs have no NER rows: its file only
    assert f"GMB NER: no rows from these runs; published rows in {out / 'benchmark.md'}" in proc.stderr
