"""What every evaluating job kind (evaluate, token_classification, spacy, classify) leaves behind: its
results directory, the upload of it, and its W&B run.

A results directory holds

    predictions.jsonl   one JSON object per line (ensure_ascii off), written atomically
    metrics.json        the scores and what was scored (indented JSON), written atomically and last

Both are standard JSON: a NaN or an infinity is written as `null` (launcher.jsonio.dumps).

`write_predictions` first removes a metrics.json already there, so a reader that sees metrics.json
always sees the predictions it was computed from. The upload goes to the store of the run that
holds the directory (launcher.artifacts.uploads.upload_results); a failure is printed and left
pending for `launch sync`, never raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher.config.recipe import Recipe
from launcher.jsonio import atomic_write_json, atomic_write_text, dumps
from launcher.runs.checkpoints import MARKER
from launcher.runs.results import checkpoint_step, eval_digest, fingerprint, training_run_of

PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write JSON lines atomically (temporary file, then rename); non-finite numbers as null."""
    atomic_write_text(path, "".join(dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_predictions(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Create `out`, remove its metrics.json (new predictions are never paired with old metrics),
    then write predictions.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS).unlink(missing_ok=True)
    write_jsonl(out / PREDICTIONS, rows)


def write_metrics(out: Path, metrics: dict[str, Any]) -> None:
    """metrics.json, after `write_predictions`."""
    atomic_write_json(out / METRICS, metrics)


def write_results(out: Path, rows: Sequence[dict[str, Any]], metrics: dict[str, Any]) -> None:
    """predictions.jsonl, then metrics.json."""
    write_predictions(out, rows)
    write_metrics(out, metrics)


def scored_checkpoint(recipe: Recipe, run_dir: Path, checkpoint: str) -> dict[str, Any]:
    """What an NER metrics.json scored, in its key order: checkpoint, step (of a checkpoint with its
    COMPLETE marker), fingerprint (what `launch reeval` compares), recipe and recipe_digest (the eval
    recipe's), run_id, training_run (the run the checkpoint belongs to), split and level."""
    path = Path(checkpoint)
    train_run = training_run_of(path)
    return {
        "checkpoint": checkpoint,
        "step": checkpoint_step(path) if (path / MARKER).is_file() else None,
        "fingerprint": fingerprint(checkpoint, recipe),
        "recipe": recipe.name,
        "recipe_digest": eval_digest(recipe),
        "run_id": run_dir.name,
        "training_run": train_run.name if train_run else None,
        "split": recipe.eval.split,
        "level": recipe.eval.level,
    }


def training_recipe_name(checkpoint: Path) -> str | None:
    """The recipe name of the training run `checkpoint` belongs to, read leniently (an older schema
    is fine here); None for a checkpoint of no run."""
    import yaml

    train_run = training_run_of(checkpoint)
    if train_run is None:
        return None
    try:
        data = yaml.safe_load((train_run / "recipe.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return str(data["name"]) if isinstance(data, dict) and data.get("name") else None


def upload(recipe: Recipe, run_dir: Path, out: Path) -> None:
    """The results directory `out` to the artifact store; a failure is printed and stays pending."""
    from launcher.artifacts.uploads import upload_results

    outcome = upload_results(recipe, run_dir, out)
    if outcome is None:
        return
    if outcome.ok:
        print(f"upload: {outcome.rel} is in the artifact store", flush=True)
    else:
        print(f"upload: results {out} failed: {outcome.error}; recorded as pending upload", flush=True)


def ner_values(metrics: dict[str, Any]) -> dict[str, float]:
    """The `eval/*` values of an NER metrics.json (generative or tagged): strict entity P/R/F1 and
    macro F1, token and sentence level, seed F1, parse failures, hallucinations, throughput, the F1
    of each entity type, and `eval/token_bio_f1` where the metrics have the research's token level."""
    strict = metrics["strict"]
    values = {
        "eval/precision": strict["precision"], "eval/recall": strict["recall"], "eval/f1": strict["f1"],
        "eval/macro_f1": strict["macro_f1"], "eval/token_f1": metrics["token"]["f1"],
        "eval/sentence_accuracy": metrics["sentence"]["accuracy"], "eval/seed_f1": metrics["seed"]["f1"],
        "eval/parse_failures": metrics["parse_failures"], "eval/hallucinated": metrics["hallucinated"],
        "eval/sentences_per_s": metrics["sentences_per_s"],
    }  # fmt: skip
    if "token_bio" in metrics:
        values["eval/token_bio_f1"] = metrics["token_bio"]["f1"]
    for label, row in strict["per_type"].items():
        values[f"eval/f1_{label}"] = row["f1"]
    return values


def log_ner(recipe: Recipe, run_dir: Path, metrics: dict[str, Any], training_recipe: str | None) -> None:
    """One W&B run (job_type eval), grouped with its training run's recipe, `ner_values` logged at
    the checkpoint's training step."""
    from jobs import wandb_run

    tracked = recipe.model_copy(deep=True)
    if training_recipe and not tracked.tracking.wandb.group:
        tracked.tracking.wandb.group = training_recipe
    extra = {k: metrics[k] for k in ("checkpoint", "step", "fingerprint", "training_run")}
    run = wandb_run.start(tracked, run_dir, "eval", **extra)
    if run is None:
        return
    run.define_metric("train/global_step")
    run.define_metric("eval/*", step_metric="train/global_step")
    run.log({"train/global_step": metrics["step"] or 0, **ner_values(metrics)})
    run.summary.update({"checkpoint": metrics["checkpoint"], "sentences": metrics["sentences"]})
    run.finish()


def log_classification(recipe: Recipe, run_dir: Path, metrics: dict[str, Any]) -> None:
    """One W&B run (job_type classify): top-k accuracy, requests, cache hits and the ECE of each
    confidence the metrics have."""
    from jobs import wandb_run

    run = wandb_run.start(recipe, run_dir, "classify")
    if run is None:
        return
    cal = metrics.get("calibration") or {}
    values = {
        f"cls/{k}": metrics[k] for k in ("top1", "top3", "top5", "requests_sent", "cached") if k in metrics
    }
    for kind in ("verbalized", "logprob"):
        if cal.get(kind):
            values[f"cls/ece_{kind}"] = cal[kind]["ece"]
    run.log(values)
    run.finish()
