"""How right the evaluation ETA is: each progress line's ETA against the time that was actually left.

The HF engine runs `--sentences` GMB test sentences as jobs.evaluate runs them (jobs.engines.hf.
HFEngine, the recipe's precision and batch size) and records every progress call; afterwards each is
printed with the time left, the ETA jobs.evaluate shows (from the engine's `left`, the share of work
left), the ETA from finished answers alone (the formula before), and each ETA's ratio to the time
left (1.00x: exact; above: pessimistic).

    python benchmarks/eval_eta.py --model runs/<run>/checkpoints/checkpoint-64
    python benchmarks/eval_eta.py --model HuggingFaceTB/SmolLM2-135M-Instruct   # what checkpoint-0 is

Measured on the 2-core dev machine (SmolLM2 checkpoint-64 of smollm2_ner at 300 samples, 200
sentences, bf16): the first four lines 0.86x 0.86x 0.86x 0.75x, against 1.77x 1.51x 1.43x 1.43x from
finished answers alone; the base model 0.86x 0.95x 0.95x 0.87x against 1.58x 1.81x 1.80x 1.62x.
"""

from __future__ import annotations

import argparse
import time

from jobs.data.gmb import eval_sentences
from jobs.engines.hf import HFEngine
from jobs.prompts import render_prompt
from launcher.config.recipe import load_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint dir or hub name (packaged)")
    parser.add_argument("--recipe", default="smollm2_ner", help="recipe whose eval settings apply")
    parser.add_argument("--sentences", type=int, default=200)
    args = parser.parse_args()
    overrides = [f"model.name_or_path={args.model}", f"eval.max_samples={args.sentences}"]
    recipe = load_recipe(args.recipe, overrides)
    calls: list[tuple[int, int, float, float | None]] = []

    def record(done: int, total: int, seconds: float, left: float | None = None) -> None:
        calls.append((done, total, seconds, left))

    engine = HFEngine(recipe, recipe.eval.max_new_tokens, recipe.eval.batch_size, progress=record)
    prompts = [render_prompt(engine.tokenizer, s.text) for s in eval_sentences(recipe)][: args.sentences]
    started = time.perf_counter()
    engine.generate(prompts)
    total_s = time.perf_counter() - started
    print(f"{len(prompts)} sentences in {total_s:.1f} s ({engine.precision}, batch {recipe.eval.batch_size})")
    for done, total, seconds, left in calls[:-1]:
        remaining = total_s - seconds
        share = (total - done) / total if left is None else left
        shown = seconds * share / (1 - share) if share < 1 else float("nan")
        counted = (total - done) * seconds / done
        print(
            f"{done:4d}/{total}  at {seconds:6.1f} s  left {remaining:6.1f} s  "
            f"ETA {shown:6.1f} s ({shown / remaining:.2f}x)  finished answers only {counted:6.1f} s "
            f"({counted / remaining:.2f}x)"
        )


if __name__ == "__main__":
    main()
