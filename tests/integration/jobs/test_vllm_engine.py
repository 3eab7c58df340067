"""The evaluate job without vllm installed says so in one line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from launcher.config.recipe import load_recipe
from tests.support.paths import ROOT


def test_job_without_vllm_installed_says_so_in_one_line(tmp_path: Path) -> None:
    assert importlib.util.find_spec("vllm") is None  # the project's interpreter: vLLM is in its own venv
    run_dir = tmp_path / "tiny_ner_eval-20260101-0000-cafe"
    run_dir.mkdir()
    (run_dir / "recipe.yaml").write_text(load_recipe("tiny_ner_eval", ["eval.engine=vllm"]).to_yaml())
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.evaluate", "--run-dir", str(run_dir)], cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "eval.engine: vllm is not installed here; valid: hf" in proc.stderr
    assert not (run_dir / "results").exists()
