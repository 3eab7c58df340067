"""Generation and scoring of one checkpoint for generative NER.

    python -m jobs.evaluate --run-dir DIR

Reads the resolved recipe from DIR/recipe.yaml. The model is `model.name_or_path`: a checkpoint
directory of a training run, a LoRA adapter directory, a hub name or `tiny://...`. Generates
greedily for the GMB test (or validation) split, in batches of `eval.batch_size` prompts of
similar length, left-padded, each row stopping at eos or once it has written a complete JSON
object. Writes, into `eval.results_dir` (default DIR/results/<basename of the model>):

    predictions.jsonl   one row per sentence (what scoring.metrics.predictions_jsonl_examples reads)
    metrics.json        scoring.metrics.score(...) plus checkpoint, step, fingerprint, recipe, throughput

both atomically, metrics.json last (a reader that sees metrics.json sees its predictions). Logs
the metrics to W&B (job_type eval) against the checkpoint's training step. Exit codes: 0 done,
2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.checks import check_inputs
from launcher.errors import UserError
from launcher.evaluation import (
    MARKER,
    checkpoint_step,
    eval_digest,
    fingerprint,
    results_dir,
    training_run_of,
)
from launcher.recipe import Recipe, read_resolved
from launcher.runfiles import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    import torch

    from jobs.data.gmb import Sentence


@dataclass(frozen=True)
class Generation:
    """One generated answer: its text (prompt and eos excluded), its length in tokens, and why
    it ended: `json` (a complete JSON object), `eos`, or `length` (max_new_tokens)."""

    text: str
    new_tokens: int
    stop: str


class JsonEnd:
    """Incremental check: has the text fed so far closed a top-level JSON object?

    Braces inside JSON strings do not count, nor does anything inside a `<think>` block that is
    still open; a `</think>` restarts the scan after it (reasoning may hold braces).
    """

    def __init__(self) -> None:
        self.text = ""
        self.pos = 0
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.done = False

    def feed(self, piece: str) -> bool:
        """Append `piece`; True once a complete top-level object has been seen (and from then on)."""
        if self.done:
            return True
        self.text += piece
        opened = self.text.rfind("<think>")
        closed = self.text.rfind("</think>")
        if opened > closed:
            return False
        if closed >= 0 and closed + len("</think>") > self.pos:
            self.pos, self.depth, self.in_string, self.escaped = closed + len("</think>"), 0, False, False
        for ch in self.text[self.pos :]:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
            elif ch == '"' and self.depth > 0:
                self.in_string = True
            elif ch == "{":
                self.depth += 1
            elif ch == "}" and self.depth > 0:
                self.depth -= 1
                if self.depth == 0:
                    self.done = True
                    break
        self.pos = len(self.text)
        return self.done


def json_stopping_criteria(tokenizer: Any, prompt_width: int, rows: int) -> Any:
    """A transformers StoppingCriteria that ends each row once its generated text (from column
    `prompt_width` on) holds a complete top-level JSON object; `.ends` keeps one JsonEnd per row."""
    import torch
    from transformers import StoppingCriteria

    class JsonStop(StoppingCriteria):
        def __init__(self) -> None:
            self.ends = [JsonEnd() for _ in range(rows)]
            self.seen = prompt_width

        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
            new = input_ids[:, self.seen :].tolist()
            self.seen = input_ids.shape[1]
            pieces = tokenizer.batch_decode(new, skip_special_tokens=False)
            done = [end.done or end.feed(piece) for end, piece in zip(self.ends, pieces, strict=True)]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return JsonStop()


def eos_ids(tokenizer: Any, model: Any) -> set[int]:
    """Token ids that end a generation: the tokenizer's eos and the model's generation eos."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    return ids


def buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (an OOM shows at once)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    batch_size: int,
    max_new_tokens: int,
    stop_at_json: bool = True,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[Generation]:
    """Greedy generations for `prompts`, returned in the order of `prompts`.

    Prompts are tokenized without added special tokens (the chat template has them, as in
    training), bucketed by length, left-padded per batch. A row ends at an eos id, at
    `max_new_tokens`, or (with `stop_at_json`) once its text holds a complete JSON object.
    `progress(done, total, seconds)` is called after each batch.
    """
    import torch
    from transformers import GenerationConfig, StoppingCriteriaList

    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    ends = eos_ids(tokenizer, model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(ends)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad,
        eos_token_id=sorted(ends), temperature=None, top_p=None, top_k=None,
    )  # fmt: skip
    device = next(model.parameters()).device
    out: list[Generation | None] = [None] * len(prompts)
    started, done = time.perf_counter(), 0
    for batch in buckets([len(e) for e in encoded], batch_size):
        width = max(len(encoded[i]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            n = len(encoded[i])
            ids[row, width - n :] = torch.tensor(encoded[i])
            mask[row, width - n :] = 1
        criteria = StoppingCriteriaList()
        stop = json_stopping_criteria(tokenizer, width, len(batch)) if stop_at_json else None
        if stop is not None:
            criteria.append(stop)
        with torch.inference_mode():
            generated = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config,
                stopping_criteria=criteria,
            )  # fmt: skip
        for row, i in enumerate(batch):
            tokens = generated[row, width:].tolist()
            cut = next((k for k, t in enumerate(tokens) if t in ends or t == pad), len(tokens))
            text = tokenizer.decode(tokens[:cut], skip_special_tokens=True)
            if stop is not None and stop.ends[row].done:
                reason = "json"
            elif cut < len(tokens) and tokens[cut] in ends:
                reason = "eos"
            else:
                reason = "length"
            out[i] = Generation(text, cut, reason)
        done += len(batch)
        if progress is not None:
            progress(done, len(prompts), time.perf_counter() - started)
    return [g for g in out if g is not None]


def generate_vllm(
    model_path: str, tokenizer_path: str, prompts: Sequence[str], max_new_tokens: int, dtype: str
) -> list[Generation]:
    """The same greedy generations through vLLM (continuous batching); stops at eos or at the
    `]}` that closes the answer object. Full checkpoints only (no LoRA adapter directories)."""
    from vllm import LLM, SamplingParams

    names = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
    if dtype not in names:
        raise ValueError(f"vLLM runs bf16, fp16 or fp32 weights here, not {dtype}")
    llm = LLM(model=model_path, tokenizer=tokenizer_path, dtype=names[dtype], seed=0)
    params = SamplingParams(
        temperature=0.0, max_tokens=max_new_tokens, stop=["]}"], include_stop_str_in_output=True
    )
    results = llm.generate(list(prompts), params, use_tqdm=False)
    out = []
    for r in results:
        c = r.outputs[0]
        reason = "json" if c.text.endswith("]}") else ("length" if c.finish_reason == "length" else "eos")
        out.append(Generation(c.text, len(c.token_ids), reason))
    return out


# --------------------------------------------------------------------------------- the job


def eval_sentences(recipe: Recipe) -> list[Sentence]:
    """The sentences to evaluate: the recipe's test or validation split, capped by
    eval.max_samples (else data.max_eval_samples)."""
    from jobs.data.gmb import recipe_split

    split = recipe_split(recipe.data)
    sentences = split.test if recipe.eval.split == "test" else split.validation
    cap = recipe.eval.max_samples or recipe.data.max_eval_samples
    return sentences[:cap] if cap else sentences


def tokenizer_source(path: str) -> str:
    """A LoRA adapter directory without tokenizer files borrows its base model's tokenizer."""
    from jobs import tiny

    adapter = Path(path, "adapter_config.json")
    if adapter.is_file() and not Path(path, "tokenizer_config.json").is_file():
        return tiny.resolve(json.loads(adapter.read_text())["base_model_name_or_path"])
    return path


def load(recipe: Recipe) -> tuple[Any, Any, str]:
    """(model in eval mode on its device, left-padding tokenizer, precision name)."""
    import torch

    from jobs.modeling import load_model, load_tokenizer, model_path, resolve_dtype

    path = model_path(recipe)
    tokenizer = load_tokenizer(recipe, tokenizer_source(path), padding_side="left")
    cuda = torch.cuda.is_available()
    dtype = resolve_dtype(recipe.model.dtype) if cuda else torch.float32
    model = load_model(recipe, path, for_training=False, dtype=dtype)
    quant = recipe.quantization.mode
    if quant == "none" and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()  # a LoRA adapter folded into its base: plain-model speed
    if cuda and quant == "none":
        model = model.to("cuda")
    model.eval()
    names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    return model, tokenizer, quant if quant != "none" else names[dtype]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write JSON lines atomically (temporary file, then rename)."""
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


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


def evaluate(recipe: Recipe, run_dir: Path) -> int:
    """Generate, parse, score and write one model's results (module docstring); returns 0."""
    from jobs.prompts import render_prompt
    from launcher.scoring.metrics import Example, score
    from launcher.scoring.parse import parse_output

    checkpoint = recipe.model.name_or_path
    ckpt = Path(checkpoint)
    step = checkpoint_step(ckpt) if (ckpt / MARKER).is_file() else None
    train_run = training_run_of(ckpt)
    train_recipe = _recipe_name(train_run) if train_run else None
    out = results_dir(recipe, run_dir)
    out.mkdir(parents=True, exist_ok=True)

    model, tokenizer, precision = load(recipe)
    sentences = eval_sentences(recipe)
    prompts = [render_prompt(tokenizer, s.text) for s in sentences]
    e = recipe.eval
    print(
        f"evaluating {checkpoint} (step {step}) on {len(sentences)} {e.split} sentences: {precision}, "
        f"{_device_name()}, batch {e.batch_size}, max_new_tokens {e.max_new_tokens}, engine {e.engine}",
        flush=True,
    )

    def progress(done: int, total: int, seconds: float) -> None:
        print(f"  {done}/{total} sentences, {done / max(seconds, 1e-9):.2f} sentences/s", flush=True)

    started = time.perf_counter()
    if e.engine == "vllm":
        from jobs.modeling import model_path

        path = model_path(recipe)
        gens = generate_vllm(path, tokenizer_source(path), prompts, e.max_new_tokens, precision)
    else:
        gens = generate(model, tokenizer, prompts, e.batch_size, e.max_new_tokens, progress=progress)
    seconds = time.perf_counter() - started

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
    metrics = score(examples)
    stops = {k: sum(g.stop == k for g in gens) for k in ("json", "eos", "length")}
    metrics.update(
        checkpoint=checkpoint, step=step, fingerprint=fingerprint(checkpoint, recipe), recipe=recipe.name,
        recipe_digest=eval_digest(recipe), run_id=run_dir.name,
        training_run=train_run.name if train_run else None, split=e.split, level=e.level,
        dtype=precision, engine=e.engine, device=_device_name(), batch_size=e.batch_size,
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


def upload(recipe: Recipe, run_dir: Path, out: Path) -> None:
    """Results to the artifact store (the results' run's); a failure is printed and stays pending."""
    from launcher.uploads import upload_results

    outcome = upload_results(recipe, run_dir, out)
    if outcome is None:
        return
    if outcome.ok:
        print(f"upload: {outcome.rel} is in the artifact store", flush=True)
    else:
        print(f"upload: results {out} failed: {outcome.error}; recorded as pending upload", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    run_dir = parser.parse_args(argv).run_dir
    try:
        recipe = read_resolved(run_dir)
        check_inputs(recipe)
        if recipe.task != "ner":
            raise UserError(f"{recipe.source}: task: jobs.evaluate scores NER (got {recipe.task})")
        if recipe.eval.engine == "openai":
            raise UserError(f"{recipe.source}: eval.engine: openai is for the classify job; valid: hf, vllm")
        if recipe.eval.engine == "vllm":
            import importlib.util

            if importlib.util.find_spec("vllm") is None:
                raise UserError(f"{recipe.source}: eval.engine: vllm is not installed here; valid: hf")
            if Path(recipe.model.name_or_path, "adapter_config.json").is_file():
                raise UserError(
                    f"{recipe.source}: eval.engine: vllm takes full checkpoints here, and "
                    f"{recipe.model.name_or_path} is a LoRA adapter; use engine hf"
                )
            if recipe.quantization.mode != "none":
                raise UserError(
                    f"{recipe.source}: eval.engine: vllm runs unquantized weights here; use engine hf "
                    f"for quantization: {recipe.quantization.mode}"
                )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return evaluate(recipe, run_dir)


if __name__ == "__main__":
    sys.exit(main())
