"""The results layout's pure parts: the results name and which recipe scored a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from launcher.config.recipe import load_recipe
from launcher.runs.checkpoints import mark_complete
from launcher.runs.results import (
    checkpoint_results,
    eval_digest,
    fingerprint,
    result_label,
    results_name,
    scored_by,
)


def test_results_name_is_the_recipe_name_and_a_digest_for_a_set_variant() -> None:
    base = load_recipe("tiny_ner_eval")
    assert results_name(base) == "tiny_ner_eval"
    variant = load_recipe("tiny_ner_eval", ["eval.max_samples=6"])
    name = results_name(variant, ["eval.max_samples=6"])
    assert name == f"tiny_ner_eval-{eval_digest(variant)[:8]}" and name != results_name(base, ["x=1"])
    run_dir = Path("/runs/r")
    assert (
        checkpoint_results(run_dir, "checkpoint-10", base) == run_dir / "results/checkpoint-10/tiny_ner_eval"
    )


def test_scored_by_finds_this_recipe_in_the_new_and_the_old_layout_only(tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "checkpoints" / "checkpoint-10"
    ckpt.mkdir(parents=True)
    mark_complete(ckpt, step=10)
    recipe, other = load_recipe("tiny_ner_eval"), load_recipe("tiny_ner_eval", ["eval.max_samples=7"])
    results = checkpoint_results(tmp_path / "run", ckpt.name, recipe)
    assert scored_by(ckpt, results, recipe) is None
    legacy = results.parent  # results/checkpoint-10/metrics.json: a run from before the layout
    legacy.mkdir(parents=True)
    (legacy / "metrics.json").write_text(json.dumps({"fingerprint": fingerprint(str(ckpt), recipe)}))
    assert scored_by(ckpt, results, recipe) is not None
    assert scored_by(ckpt, results, other) is None  # another eval recipe: not scored by it
    label = result_label(legacy / "metrics.json", tmp_path / "run", {"recipe": "tiny_ner_eval"})
    assert label == ("checkpoint-10", "tiny_ner_eval")
    new = results / "metrics.json"
    assert result_label(new, tmp_path / "run", {}) == ("checkpoint-10", "tiny_ner_eval")
