"""Sentences per second of jobs.evaluate's batched generation against one sentence at a time.

Same model, same prompts (GMB test sentences through jobs.prompts), same `jobs.evaluate.job.generate`
in one process: once with `--batch-size` prompts per batch (left padding, length bucketing, JSON
stop), once with batch size 1 (the research's way), alternating, best of `--repeat` each. Prints
both rates and their ratio.

    python benchmarks/eval_throughput.py                            # tiny model, CPU
    python benchmarks/eval_throughput.py --model runs/<run>/checkpoints/checkpoint-800
    python benchmarks/eval_throughput.py --arch 1.5b --sentences 1024 --batch-size 256   # GPU

`--arch 1.5b` (or 7b) writes the DeepSeek-R1-Distill-Qwen architecture with random weights and the
tiny tokenizer to a temporary directory (`jobs.tiny.models.random_like`: nothing is downloaded) and loads
it the way jobs.evaluate loads a checkpoint; random weights
never stop early, so every sentence generates exactly `--max-new-tokens` (64, as in
calibration/h200_throughput.json: 0.63 sentences/s one at a time, 79.9 at batch 256 on an H200).
The batched baseline is the HF path as the research first ran it on a CPU (bf16 autocast casting the
fp32 weights on every call, transformers' generate); `--engine hf-prefix` times the HF engine as
jobs.evaluate runs it now (jobs.engines.hf.HFEngine: weights cast once, jobs.engines.prefix's loop)
against it, and counts the answers that differ and scores both.
`--engine vllm` also loads the model into jobs.engines.vllm.VllmEngine and times it against the HF
engine at `--batch-size`, alternating, on the same prompts; vLLM needs its own interpreter here:

    $(python -m tests.vllm_venv) benchmarks/eval_throughput.py --engine vllm --model tiny://qwen2-gmb-h64

measured on the 2-core dev machine (shared, loaded): vLLM 95.3 sentences/s, HF batch 32 3.45, one at a
time 0.63 (64 new tokens each): vLLM / HF 27.7x, on a model so small that HF's per-step overhead is
most of its time; it says nothing of a 1.5B model on a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODULES = {"hf": "transformers", "hf-prefix": "transformers", "ct2": "ctranslate2", "vllm": "vllm"}
ARCHS = {"1.5b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "7b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"}


def eval_recipe(ref: str, dtype: str, engine: str = "hf", quantization: str = "none") -> Any:
    from launcher.config.recipe import load_recipe

    overrides = [f"model.name_or_path={ref}", f"model.dtype={dtype}", f"eval.engine={engine}"]
    overrides += [f"quantization.mode={quantization}"] if quantization != "none" else []
    return load_recipe("tiny_ner_eval", overrides)


def checkpoint_model(ref: str, dtype: str) -> tuple[Any, Any, str]:
    """A checkpoint, adapter, hub name or tiny:// loaded as jobs.evaluate loaded it before the HF
    engine cast its Linear weights once under CPU bf16 autocast (the baseline: autocast casts them
    on every call, with the same bf16 values)."""
    from jobs.engines.hf import load

    return load(eval_recipe(ref, dtype), cast_once=False)


def test_sentences(n: int) -> list[Any]:
    """The first `n` GMB test sentences of the evaluation recipes (gold tags included)."""
    from jobs.data.gmb import recipe_split
    from launcher.config.recipe import load_recipe

    return list(recipe_split(load_recipe("tiny_ner_eval").data).test[:n])


def prompts_for(tokenizer: Any, sentences: list[Any]) -> list[str]:
    from jobs.prompts import render_prompt

    return [render_prompt(tokenizer, s.text) for s in sentences]


def strict_f1(sentences: list[Any], gens: list[Any]) -> float:
    """Strict entity F1 of `gens` against the sentences' gold tags, as jobs.evaluate scores it."""
    from jobs.evaluate.job import prediction_rows
    from launcher.scoring.metrics import score

    _, examples = prediction_rows(sentences, gens)
    return float(score(examples)["strict"]["f1"])


def timed(generate: Any, prompts: list[str]) -> tuple[dict[str, float], list[Any]]:
    """sentences/s and new tokens/s of one `generate(prompts)` call, and its Generations."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    gens = generate(prompts)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = sum(g.new_tokens for g in gens)
    return {"sentences": len(prompts), "seconds": round(seconds, 3),
            "sentences_per_s": len(prompts) / seconds, "new_tokens_per_s": tokens / seconds,
            "mean_new_tokens": tokens / len(prompts)}, gens  # fmt: skip


def hf_generate(model: Any, tokenizer: Any, batch_size: int, max_new: int, autocast: bool) -> Any:
    """jobs.engines.hf.generate at `batch_size` (under bf16 autocast where the HF engine uses it)."""
    import contextlib

    import torch

    from jobs.engines.hf import generate

    def run(prompts: list[str]) -> list[Any]:
        with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
            return generate(model, tokenizer, prompts, batch_size, max_new)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny://qwen2-gmb", help="checkpoint dir, adapter, tiny://")
    parser.add_argument("--arch", choices=sorted(ARCHS), help="random weights of this architecture")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    parser.add_argument("--sentences", type=int, default=64, help="sentences for the batched run")
    parser.add_argument("--single", type=int, default=16, help="sentences for the one-at-a-time run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--engine", choices=["hf", "hf-prefix", "ct2", "vllm"], default="hf",
                        help="hf-prefix, ct2, vllm: also time that engine (jobs.engines) against HF's "
                             "generate (hf-prefix: the HF engine as jobs.evaluate runs it, its CPU loop "
                             "and its Linear weights cast once under bf16 autocast)")  # fmt: skip
    parser.add_argument(
        "--int8", action="store_true", help="--engine ct2 with int8 weights (quantization.mode)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each; the best counts")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()

    import torch

    scratch = tempfile.TemporaryDirectory(prefix="eval-throughput-")
    path, what = args.model, args.model
    if args.arch:
        from jobs.modeling import resolve_dtype
        from jobs.tiny.models import random_like

        names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        saved = names[resolve_dtype(args.dtype)]
        path = str(random_like(ARCHS[args.arch], Path(scratch.name) / args.arch, saved))
        what = f"{ARCHS[args.arch]} architecture, random weights"
    model, tokenizer, precision = checkpoint_model(path, args.dtype)
    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    sentences = test_sentences(max(args.sentences, args.single))
    prompts = prompts_for(tokenizer, sentences)
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    print(f"model: {what}; {precision} on {device}")
    print(f"prompts: GMB test sentences, {min(lengths)}-{max(lengths)} tokens "
          f"(mean {sum(lengths) / len(lengths):.0f}); max_new_tokens {args.max_new_tokens}")  # fmt: skip

    other: Any = None
    autocast = precision == "bf16-autocast"
    if args.engine != "hf" and importlib.util.find_spec(MODULES[args.engine]) is None:
        print(
            f"{MODULES[args.engine]} not installed in this interpreter (see the docstring): --engine skipped"
        )
    elif args.engine == "vllm":
        from jobs.engines.vllm import VllmEngine

        # beside the HF model on a GPU: leave it room (vLLM takes 90% of the memory by default)
        room: dict[str, Any] = {"gpu_memory_utilization": 0.5} if torch.cuda.is_available() else {}
        other = VllmEngine(eval_recipe(path, args.dtype, "vllm"), args.max_new_tokens, **room)
    elif args.engine == "hf-prefix":
        from jobs.engines.hf import HFEngine

        other = HFEngine(eval_recipe(path, args.dtype), args.max_new_tokens, args.batch_size)
        if not other.shared_prefix:
            print("the HF engine runs generate for this model (jobs.engines.prefix.applies)")
    elif args.engine == "ct2":
        from jobs.engines.ct2 import CT2Engine

        recipe = eval_recipe(path, args.dtype, "ct2", "int8" if args.int8 else "none")
        other = CT2Engine(recipe, args.max_new_tokens, args.batch_size)

    def hf(batch: int, new: int) -> Any:
        return hf_generate(model, tokenizer, batch, new, autocast)

    # warm-up of every path (kernels, allocator, thread pools) before anything is timed
    timed(hf(1, 8), prompts[:2])
    timed(hf(args.batch_size, 8), prompts[: args.batch_size])
    if other is not None:
        timed(other.generate, prompts[: args.batch_size])
    # best of --repeat alternating runs: on a shared machine the fastest run is the least disturbed
    singles, batches, others, new = [], [], [], args.max_new_tokens
    batch_gens: list[Any] = []
    other_gens: list[Any] = []
    for _ in range(args.repeat):
        if args.single:
            singles.append(timed(hf(1, new), prompts[: args.single])[0])
        numbers, batch_gens = timed(hf(args.batch_size, new), prompts[: args.sentences])
        batches.append(numbers)
        if other is not None:
            numbers, other_gens = timed(other.generate, prompts[: args.sentences])
            others.append(numbers)
    batched = max(batches, key=lambda r: r["sentences_per_s"])
    scored = sentences[: args.sentences]
    batched["strict_f1"] = strict_f1(scored, batch_gens)
    results: dict[str, Any] = {"model": what, "precision": precision, "device": device,
                               "max_new_tokens": args.max_new_tokens}  # fmt: skip
    results[f"batch_{args.batch_size}"] = batched
    rows = [(f"hf batch {args.batch_size}", batched)]
    if singles:
        results["one_at_a_time"] = single = max(singles, key=lambda r: r["sentences_per_s"])
        rows.insert(0, ("one at a time", single))
    if others and other is not None:
        best: dict[str, Any] = max(others, key=lambda r: r["sentences_per_s"])
        best["strict_f1"] = strict_f1(scored, other_gens)
        best["precision"] = other.precision
        best["same_as_hf"] = sum(
            a.token_ids == b.token_ids for a, b in zip(batch_gens, other_gens, strict=True)
        )
        results[args.engine] = best
        rows.append((f"{args.engine} ({other.precision})", best))
        other.close()
    for name, r in rows:
        f1 = f"  strict F1 {r['strict_f1']:.4f}" if "strict_f1" in r else ""
        print(
            f"{name:18} {r['sentences_per_s']:7.2f} sentences/s  {r['new_tokens_per_s']:7.1f} new tokens/s"
            f"  ({r['sentences']} sentences, {r['mean_new_tokens']:.1f} new tokens each, {r['seconds']} s)"
            + f1
        )
    if singles:
        results["ratio"] = ratio = batched["sentences_per_s"] / singles_best(results)
        print(f"ratio batched / one at a time: {ratio:.1f}x")
    if args.engine in results:
        r = results[args.engine]
        results[f"{args.engine}_ratio"] = r["sentences_per_s"] / batched["sentences_per_s"]
        print(f"same answers as hf: {r['same_as_hf']}/{r['sentences']} (token ids)")
        print(f"ratio {args.engine} / hf batch {args.batch_size}: {results[f'{args.engine}_ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    scratch.cleanup()


def singles_best(results: dict[str, Any]) -> float:
    return float(results["one_at_a_time"]["sentences_per_s"])


if __name__ == "__main__":
    main()
