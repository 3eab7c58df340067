"""Generation and scoring of one checkpoint for generative NER.

    python -m jobs.evaluate --run-dir DIR

Reads the resolved recipe from DIR/recipe.yaml. The model is `model.name_or_path`: a checkpoint
directory of a training run, a LoRA adapter directory, a hub name or `tiny://...`. The engine
(`eval.engine`: hf; ct2, CTranslate2 with int8 weights on a CPU; or vllm for full checkpoints;
jobs.engines) generates greedily for the GMB test (or validation) split, each row stopping at eos
or once it has written a complete JSON object; only that engine's model is loaded. Writes, into
`eval.results_dir` (default DIR/results/<basename of the model>/<eval recipe name>; reeval sets
the training run's results/<checkpoint>/<eval recipe name>):

    predictions.jsonl   one row per sentence (what scoring.metrics.predictions_jsonl_examples reads)
    metrics.json        scoring.metrics.score(...) plus checkpoint, step, fingerprint, recipe, throughput

both atomically, metrics.json last (a reader that sees metrics.json sees its predictions), then
uploaded; the metrics go to W&B (job_type eval) against the checkpoint's training step: all of it
through jobs.results. Exit codes: 0 done, 1 the engine's library missing here, 2 bad input.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jobs import results
from jobs.entry import BAD_INPUT, read_run
from launcher.config.recipe import Recipe
from launcher.runs.progress import Progress, now_iso, write_progress
from launcher.runs.results import results_dir

if TYPE_CHECKING:
    from jobs.data.gmb import Sentence
    from jobs.engines import Engine, Generation


def main(argv: list[str] | None = None) -> int:
    loaded = read_run(argv, __doc__.splitlines()[0])  # recipe-only rules: jobkinds._evaluate_rules
    if loaded is None:
        return BAD_INPUT
    recipe, run_dir = loaded
    for engine, module in (("vllm", "vllm"), ("ct2", "ctranslate2")):
        if recipe.eval.engine == engine and importlib.util.find_spec(module) is None:
            hint = " (pip install 'recipe-launcher[ct2]')" if engine == "ct2" else ""
            print(
                f"error: {recipe.source}: eval.engine: {engine} is not installed here{hint}; valid: hf",
                file=sys.stderr,
            )
            return 1
    return evaluate(recipe, run_dir)


def open_engine(recipe: Recipe, run_dir: Path | None = None) -> Engine:
    """The recipe's engine with its model loaded (and no other model); with `run_dir`, each batch
    done is also written to its progress.json (what `launch status` and `--follow` show)."""
    e = recipe.eval

    def progress(done: int, total: int, seconds: float, left: float | None = None) -> None:
        rate = done / max(seconds, 1e-9)
        print(f"  {done}/{total} sentences, {rate:.2f} sentences/s", flush=True)
        if run_dir is not None:
            share = (total - done) / total if left is None else left
            eta = seconds * share / (1 - share) if 0 < share < 1 else (0.0 if share == 0 else None)
            write_progress(run_dir, Progress(step=done, total_steps=total, eta_s=eta, updated_at=now_iso(),
                                             unit="sentence", items_per_s=rate))  # fmt: skip

    if e.engine == "vllm":
        from jobs.engines.vllm import VllmEngine

        return VllmEngine(recipe, e.max_new_tokens)
    if e.engine == "ct2":
        from jobs.engines.ct2 import CT2Engine

        return CT2Engine(recipe, e.max_new_tokens, e.batch_size, progress=progress)
    from jobs.engines.hf import HFEngine

    return HFEngine(recipe, e.max_new_tokens, e.batch_size, progress=progress)


def evaluate(recipe: Recipe, run_dir: Path) -> int:
    """Generate, parse, score and write one model's results (module docstring); returns 0."""
    from jobs.data.gmb import eval_sentences
    from jobs.prompts import render_prompt
    from launcher.scoring.metrics import score

    checkpoint = recipe.model.name_or_path
    out = results_dir(recipe, run_dir)
    out.mkdir(parents=True, exist_ok=True)

    engine = open_engine(recipe, run_dir)
    sentences = eval_sentences(recipe)
    prompts = [render_prompt(engine.tokenizer, s.text) for s in sentences]
    e = recipe.eval
    identity = results.scored_checkpoint(recipe, run_dir, checkpoint)
    print(
        f"evaluating {checkpoint} (step {identity['step']}) on {len(sentences)} {e.split} sentences: "
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
        identity, dtype=engine.precision, engine=engine.name, device=engine.device, batch_size=e.batch_size,
        max_new_tokens=e.max_new_tokens, generation_seconds=round(seconds, 3),
        sentences_per_s=round(len(sentences) / max(seconds, 1e-9), 3),
        new_tokens=sum(g.new_tokens for g in gens), stops=stops, created_at=now_iso(),
    )  # fmt: skip
    results.write_results(out, rows, metrics)
    s = metrics["strict"]
    print(
        f"strict entity P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}; parse failures "
        f"{metrics['parse_failures']}/{len(rows)}; {metrics['sentences_per_s']:.2f} sentences/s; "
        f"stops {stops}; wrote {out}",
        flush=True,
    )
    results.log_ner(recipe, run_dir, metrics, results.training_recipe_name(Path(checkpoint)))
    results.upload(recipe, run_dir, out)
    return 0


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
