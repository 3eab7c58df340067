"""`launch reeval`'s pure parts: checkpoint selection, the fingerprint, the default eval recipes."""

from __future__ import annotations

import time
from pathlib import Path

from launcher.config.recipe import load_recipe
from launcher.runs.checkpoints import mark_complete
from launcher.runs.results import default_eval_recipe, fingerprint, select


def test_every_and_last_select_checkpoints(tmp_path: Path) -> None:
    ckpts = [tmp_path / f"checkpoint-{s}" for s in (10, 20, 30, 40)]
    assert [c.name for c in select(ckpts, every=20)] == ["checkpoint-20", "checkpoint-40"]
    assert [c.name for c in select(ckpts, last=1)] == ["checkpoint-40"]
    assert [c.name for c in select(ckpts, every=10, last=2)] == ["checkpoint-30", "checkpoint-40"]
    assert select(ckpts) == ckpts


def test_fingerprint_ignores_per_checkpoint_keys_only(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints" / "checkpoint-10"
    ckpt.mkdir(parents=True)
    mark_complete(ckpt, step=10)
    base = load_recipe("tiny_ner_eval")
    same = load_recipe("tiny_ner_eval", [f"model.name_or_path={ckpt}", f"eval.results_dir={tmp_path}"])
    fp = fingerprint(str(ckpt), base)
    assert fingerprint(str(ckpt), same) == fp
    assert fingerprint(str(ckpt), load_recipe("tiny_ner_eval", ["eval.max_samples=7"])) != fp
    time.sleep(0.01)
    mark_complete(ckpt, step=10)  # the checkpoint was written again: results are stale
    assert fingerprint(str(ckpt), base) != fp


def test_default_eval_recipes() -> None:
    assert default_eval_recipe(load_recipe("tiny_ner")).name == "tiny_ner_eval"
    assert default_eval_recipe(load_recipe("ds1.5b_fft")).name == "ds1.5b_eval"
    derived = default_eval_recipe(load_recipe("ds7b_fft"), ["eval.batch_size=4"])
    assert (derived.name, derived.job, derived.eval.batch_size) == ("ds7b_fft_eval", "evaluate", 4)
    assert (derived.resources.nodes, derived.resources.gpus_per_node) == (1, 1)
    assert derived.distributed.strategy == "none"
