"""`launch score`: the research's published numbers through the CLI, the JSON layout, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import Launch
from tests.support.paths import ROOT

SEED_CSV = ROOT / "tests" / "fixtures" / "ds_7b_output.csv"


def test_seed_numbers_exactly_through_the_cli(launch: Launch) -> None:
    out = json.loads(launch("score", str(SEED_CSV), "--json", check=True).stdout)
    seed = out["seed"]
    assert (round(seed["precision"], 4), round(seed["recall"], 4), round(seed["f1"], 4)) == (
        0.8638,
        0.8585,
        0.8611,
    )
    assert (seed["tp"], seed["fp"], seed["fn"]) == (1972, 311, 325)
    assert round(seed["token"]["f1"], 4) == 0.8389
    assert round(seed["sentence"]["accuracy"], 4) == 0.7280
    assert out["sentences"] == 1000

    table = launch("score", str(SEED_CSV), "--metric", "seed", check=True).stdout
    seed_line = next(line for line in table.splitlines() if "seed entity" in line)
    assert "0.8638" in seed_line and "0.8585" in seed_line and "0.8611" in seed_line
    assert "1972" in seed_line and "311" in seed_line and "325" in seed_line


def test_json_layout(launch: Launch) -> None:
    full = json.loads(launch("score", str(SEED_CSV), "--json", check=True).stdout)
    assert {"strict", "seed", "token", "sentence", "parse_failures", "sentences"} <= set(full)
    for key in ("strict", "seed", "token"):
        assert {"precision", "recall", "f1"} <= set(full[key]), key
    for key in ("strict", "seed"):
        assert {"tp", "fp", "fn"} <= set(full[key]), key
    assert {"accuracy", "correct", "total"} <= set(full["sentence"])
    assert {"macro_f1", "per_type"} <= set(full["strict"])

    strict = json.loads(launch("score", str(SEED_CSV), "--json", "--metric", "strict", check=True).stdout)
    assert "seed" not in strict and {"strict", "token", "sentence", "parse_failures"} <= set(strict)
    assert strict["strict"] == full["strict"]
    seed = json.loads(launch("score", str(SEED_CSV), "--json", "--metric", "seed", check=True).stdout)
    assert set(seed) >= {"seed", "parse_failures", "sentences"} and "strict" not in seed


def _one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_inputs_are_one_line_and_exit_2(launch: Launch, tmp_path: Path) -> None:
    _one_line_error(launch("score", str(tmp_path / "missing.jsonl")), "no such file")
    odd = tmp_path / "preds.txt"
    odd.write_text("x\n")
    _one_line_error(launch("score", str(odd)), "--format")
    _one_line_error(launch("score", str(SEED_CSV), "--format", "xml"), "jsonl, seed-csv")
    _one_line_error(launch("score", str(SEED_CSV), "--metric", "f2"), "strict, seed, all")
    _one_line_error(launch("score", str(SEED_CSV), "--format", "jsonl"), "format jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"tokens": ["a"], "raw": "{}"\n')
    _one_line_error(launch("score", str(broken)), str(broken))
    no_gold = tmp_path / "nogold.jsonl"
    no_gold.write_text(json.dumps({"tokens": ["a"], "raw": "{}"}) + "\n")
    _one_line_error(launch("score", str(no_gold)), "neither gold_tags nor gold")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _one_line_error(launch("score", str(empty)), "no sentences")
    not_csv = tmp_path / "wrong.csv"
    not_csv.write_text("a,b\n1,2\n")
    _one_line_error(launch("score", str(not_csv)), "missing column")


def test_jsonl_rows_written_by_hand(launch: Launch, tmp_path: Path) -> None:
    """A predictions file of two sentences: one right, one unparsable (its gold entity is a miss)."""
    rows = [
        {"id": 1, "tokens": ["Paris", "is", "big"], "gold_tags": ["B-geo", "O", "O"],
         "raw": '{"entities": [{"entity": "Paris", "order": 0, "label": "geo"}]}'},
        {"id": 2, "tokens": ["Bob", "ran"], "gold_tags": ["B-per", "O"], "raw": "no idea"},
    ]  # fmt: skip
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = json.loads(launch("score", str(path), "--json", check=True).stdout)
    assert (out["strict"]["tp"], out["strict"]["fp"], out["strict"]["fn"]) == (1, 0, 1)
    assert out["parse_failures"] == 1 and out["sentences"] == 2
    assert out["sentence"]["correct"] == 1
