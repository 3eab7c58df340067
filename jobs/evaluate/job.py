"""Generation and scoring of one checkpoint for generative NER.

    python -m jobs.evaluate --run-dir DIR

Reads the resolved recipe from DIR/recipe.yaml. The model is `model.name_or_path`: a checkpoint
directory of a training run, a LoRA adapter directory, a hub name or `tiny://...`. The engine
(`eval.engine`: hf, or vllm for full checkpoints; jobs.engines) generates greedily for the GMB
test (or validation) split, each row stopping at eos or once it has written a complete JSON
object; only that engine's model is loaded. Writes, into `eval.results_dir` (default
DIR/results/<basename of the model>/<eval recipe name>; reeval sets the training run's
results/<checkpoint>/<eval recipe name>):

    predictions.jsonl   one row per sentence (what scoring.metrics.predictions_jsonl_examples reads)
    metrics.json        scoring.metrics.score(...) plus checkpoint, step, fingerprint, recipe, throughput

both atomically, metrics.json last (a reader that sees metrics.json sees its predictions). Logs
the metrics to W&B (job_type eval) against the checkpoint's training step. Exit codes: 0 done,
1 vllm missing here, 2 bad input.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.entry import BAD_INPUT, read_run
from launcher.config.recipe import Recipe
from launcher.jsonio import atomic_write_json, atomic_write_text
from launcher.runs.progress import Progress, now_iso, write_progress
from launcher.runs.results import (
    MARKER,
    checkpoint_step,
    eval_digest,
    fingerprint,
    results_dir,
    training_run_of,
)

if TYPE_CHECKING:
    from jobs.data.gmb import Sentence
    from jobs.engines import Engine, Generation


def main(argv: list[str] | None = None) -> int:
    loaded = read_run(argv, __doc__.splitlines()[0])  # recipe-only rules: jobkinds._evaluate_rules
    if loaded is None:
        return BAD_INPUT
    recipe, run_dir = loaded
    if recipe.eval.engine == "vllm" and importlib.util.find_spec("vllm") is None:
        print(f"error: {recipe.source}: eval.engine: vllm is not installed here; valid: hf", file=sys.stderr)
        return 1
    return evaluate(recipe, run_dir)


def open_engine(recipe: Recipe, run_dir: Path | None = None) -> Engine:
    """The recipe's engine with its model loaded (and no other model); with `run_dir`, each batch
    done is also written to its progress.json (what `launch status` and `--follow` show)."""
    e = recipe.eval

    def progress(done: int, total: int, seconds: float) -> None:
        rate = done / max(seconds, 1e-9)
        print(f"  {done}/{total} sentences, {rate:.2f} sentences/s", flush=True)
        if run_dir is not None:
            eta = (total - done) / rate if rate > 0 else None
            write_progress(run_dir, Progress(step=done, total_steps=total, eta_s=eta, updated_at=now_iso(),
                                             unit="sentence", items_per_s=rate))  # fmt: skip

    if e.engine == "vllm":
        from jobs.engines.vllm import VllmEngine

        return VllmEngine(recipe, e.max_new_tokens)
    from jobs.engines.hf import HFEngine

    return HFEngine(recipe, e.max_new_tokens, e.batch_size, progress=progress)


def evaluate(recipe: Recipe, run_dir: Path) -> int:
    """Generate, parse, score and write one model's results (module docstring); returns 0."""
    from jobs.prompts import render_prompt
    from launcher.scoring.metrics import score

    checkpoint = recipe.model.name_or_path
    ckpt = Path(checkpoint)
    step = checkpoint_step(ckpt) if (ckpt / MARKER).is_file() else None
    train_run = training_run_of(ckpt)
    train_recipe = _recipe_name(train_run) if train_run else None
    out = results_dir(recipe, run_dir)
    out.mkdir(parents=True, exist_ok=True)

    engine = open_engine(recipe, run_dir)
    sentences = eval_sentences(recipe)
    prompts = [render_prompt(engine.tokenizer, s.text) for s in sentences]
    e = recipe.eval
    print(
        f"evaluating {checkpoint} (step {step}) on {len(sentences)} {e.split} sentences: "
        f"{engine.precision}, {engine.device}, batch {e.batch_size}, max_new_tokens {e.max_new_tokens}, "
        f"engine {engine.name}",
        flush=True,
    )
    started = time.perf_counter()
    gens = engine.generate(prompts)
    seconds = time.perf_counter() - started
    engine.close()

    rows, examples = prediction_rows(sentences, gens)
    metrics = score(examples)
    stops = {k: sum(g.stop == k for g in gens) for k in ("json", "eos", "length")}
    metrics.update(
        checkpoint=checkpoint, step=step, fingerprint=fingerprint(checkpoint, recipe), recipe=recipe.name,
        recipe_digest=eval_digest(recipe), run_id=run_dir.name,
        training_run=train_run.name if train_run else None, split=e.split, level=e.level,
        dtype=engine.precision, engine=engine.name, device=engine.device, batch_size=e.batch_size,
        max_new_tokens=e.max_new_tokens, generation_seconds=round(seconds, 3),
        sentences_per_s=round(len(sentences) / max(seconds, 1e-9), 3),
        new_tokens=sum(g.new_tokens for g in gens), stops=stops,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip
    (out / "metrics.json").unlink(missing_ok=True)  # never pair new predictions with old metrics
    write_jsonl(out / "predictions.jsonl", rows)
    atomic_write_json(out / "metrics.json", metrics)
    s = metrics["strict"]
    print(
        f"strict entity P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}; parse failures "
        f"{metrics['parse_failures']}/{len(rows)}; {metrics['sentences_per_s']:.2f} sentences/s; "
        f"stops {stops}; wrote {out}",
        flush=True,
    )
    log_wandb(recipe, run_dir, metrics, train_recipe)
    upload(recipe, run_dir, out)
    return 0


def eval_sentences(recipe: Recipe) -> list[Sentence]:
    """The sentences to evaluate: the recipe's test or validation split, capped by
    eval.max_samples (else data.max_eval_samples)."""
    from jobs.data.gmb import recipe_split

    split = recipe_split(recipe.data)
    sentences = split.test if recipe.eval.split == "test" else split.validation
    cap = recipe.eval.max_samples or recipe.data.max_eval_samples
    return sentences[:cap] if cap else sentences


def prediction_rows(sentences: Sequence[Sentence], gens: Sequence[Generation]) -> tuple[list[dict], list]:
    """The predictions.jsonl rows and the scoring Examples of the parsed generations."""
    from launcher.scoring.metrics import Example
    from launcher.scoring.parse import parse_output

    rows, examples = [], []
    for sentence, gen in zip(sentences, gens, strict=True):
        parsed = parse_output(gen.text)
        example = Example.from_tags(sentence.tokens, sentence.tags, parsed)
        examples.append(example)
        rows.append({
            "id": sentence.id, "tokens": sentence.tokens, "gold_tags": sentence.tags,
            "gold": [g.to_dict() for g in example.gold], "raw": gen.text,
            "entities": None if parsed.entities is None else [p.to_dict() for p in parsed.entities],
            "status": parsed.status, "error": parsed.error, "new_tokens": gen.new_tokens, "stop": gen.stop,
        })  # fmt: skip
    return rows, examples


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write JSON lines atomically (temporary file, then rename)."""
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def log_wandb(recipe: Recipe, run_dir: Path, metrics: dict[str, Any], training_recipe: str | None) -> None:
    """One W&B run (job_type eval), grouped with its training run, metrics at its training step."""
    from jobs import wandb_run

    tracked = recipe.model_copy(deep=True)
    if training_recipe and not tracked.tracking.wandb.group:
        tracked.tracking.wandb.group = training_recipe
    extra = {k: metrics[k] for k in ("checkpoint", "step", "fingerprint", "training_run")}
    run = wandb_run.start(tracked, run_dir, "eval", **extra)
    if run is None:
        return
    strict, seed = metrics["strict"], metrics["seed"]
    values = {
        "eval/precision": strict["precision"], "eval/recall": strict["recall"], "eval/f1": strict["f1"],
        "eval/macro_f1": strict["macro_f1"], "eval/token_f1": metrics["token"]["f1"],
        "eval/sentence_accuracy": metrics["sentence"]["accuracy"], "eval/seed_f1": seed["f1"],
        "eval/parse_failures": metrics["parse_failures"], "eval/hallucinated": metrics["hallucinated"],
        "eval/sentences_per_s": metrics["sentences_per_s"],
    }  # fmt: skip
    for label, row in strict["per_type"].items():
        values[f"eval/f1_{label}"] = row["f1"]
    run.define_metric("train/global_step")
    run.define_metric("eval/*", step_metric="train/global_step")
    run.log({"train/global_step": metrics["step"] or 0, **values})
    run.summary.update({"checkpoint": metrics["checkpoint"], "sentences": metrics["sentences"]})
    run.finish()


def _recipe_name(run_dir: Path) -> str | None:
    """The recipe name of a run directory, read leniently (an older schema is fine here)."""
    import yaml

    try:
        data = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return str(data["name"]) if isinstance(data, dict) and data.get("name") else None


def upload(recipe: Recipe, run_dir: Path, out: Path) -> None:
    """Results to the artifact store (the results' run's); a failure is printed and stays pending."""
    from launcher.artifacts.uploads import upload_results

    outcome = upload_results(recipe, run_dir, out)
    if outcome is None:
        return
    if outcome.ok:
        print(f"upload: {outcome.rel} is in the artifact store", flush=True)
    else:
        print(f"upload: results {out} failed: {outcome.error}; recorded as pending upload", flush=True)
