"""`launch score` on a baseline's tag-per-word predictions.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from launcher.scoring.token_level import bio_token_prf
from tests.support.cli import Launch

TOKENS = [["John", "Smith", "visited", "New", "York", "."], ["Paris", "is", "in", "France"]]

GOLD = [["B-per", "I-per", "O", "B-geo", "I-geo", "O"], ["B-geo", "O", "O", "B-geo"]]

PRED = [["B-per", "B-per", "O", "B-geo", "I-geo", "B-tim"], ["I-geo", "O", "O", "B-gpe"]]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_launch_score_reads_a_baseline_predictions_file(launch: Launch, tmp_path: Path) -> None:
    rows = [{"id": i, "tokens": t, "gold_tags": g, "pred_tags": p}
            for i, (t, g, p) in enumerate(zip(TOKENS, GOLD, PRED, strict=True))]  # fmt: skip
    path = _write(tmp_path / "predictions.jsonl", rows)
    proc = launch("score", str(path), "--json", check=True)
    result = json.loads(proc.stdout)
    assert result["token_bio"] == bio_token_prf(GOLD, PRED)
    assert result["strict"]["tp"] == 1 and result["sentences"] == 2
    table = launch("score", str(path), check=True).stdout
    assert "token, exact BIO tag" in table and "0.4286" in table  # 3/7

    bad = _write(tmp_path / "bad.jsonl", [{**rows[0], "pred_tags": ["O"]}])
    proc = launch("score", str(bad))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "line 1: 6 tokens, 6 gold tags, 1 predicted tags" in proc.stderr
