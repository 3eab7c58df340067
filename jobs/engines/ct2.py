"""The CTranslate2 engine: the fast path for generative evaluation on a CPU.

The recipe's model (checkpoint, LoRA adapter, hub name or tiny://) is loaded through the HF engine's
loader, unquantized and merged, and converted to CTranslate2's format in a temporary directory (a
few seconds for SmolLM2-135M). Generation is greedy from the same prompt ids as the HF engine:

- the prompts' common token prefix (the chat template and instructions) is CTranslate2's static
  prompt, computed once and reused by every batch;
- a row leaves its batch as soon as it ends (eos, `max_new_tokens`, or the per-token callback's
  JsonEnd), so a batch costs its rows' own lengths, not its longest row's times the batch size.

At `float32` its answers equal the HF engine's fp32 answers token for token (benchmarks/
eval_throughput.py counts them). `quantization.mode: int8` runs CTranslate2's int8 weights
(`int8_float32` on a CPU, `int8_bfloat16`/`int8_float16` on a GPU), and a bf16/fp16 recipe on a GPU
runs at that dtype; neither is token-exact against the HF engine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.engines import Generation, JsonEnd, Progress, common_prefix, device_name, eos_ids, pad_id, settle
from jobs.engines.hf import buckets

if TYPE_CHECKING:
    from launcher.config.recipe import Recipe

# CTranslate2's model loaders (ctranslate2.converters.transformers): what this engine can convert
SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "falcon", "gpt2")


def compute_type(recipe: Recipe, cuda: bool) -> str:
    """CTranslate2's compute type for the recipe: int8 weights for `quantization.mode: int8`, else
    float32 on a CPU (exact) and the recipe's dtype on a GPU."""
    q = recipe.quantization.mode
    if q == "int4":
        raise ValueError("eval.engine: ct2 runs fp32, fp16, bf16 or int8 weights, not int4; use engine hf")
    dtype = recipe.model.dtype if recipe.model.dtype != "auto" else "bf16"
    if q == "int8":
        return ("int8_bfloat16" if dtype == "bf16" else "int8_float16") if cuda else "int8_float32"
    if not cuda:
        return "float32"
    return {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[dtype]


def convert(recipe: Recipe, out: Path, quantization: str) -> tuple[Any, Any]:
    """Write the recipe's model in CTranslate2's format to `out`; returns (tokenizer, generation
    config). The model is loaded unquantized on the CPU (a LoRA adapter merged into its base)."""
    import torch
    from ctranslate2.converters import TransformersConverter

    from jobs.engines import tokenizer_source
    from jobs.modeling import load_model, load_tokenizer, model_path

    path = model_path(recipe)
    plain = recipe.model_copy(
        update={"quantization": recipe.quantization.model_copy(update={"mode": "none"})}
    )
    model = load_model(plain, path, for_training=False, dtype=torch.float32)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    kind = model.config.model_type
    if kind not in SUPPORTED:
        raise ValueError(
            f"eval.engine: ct2 cannot convert model type {kind}; valid: {', '.join(SUPPORTED)}, or engine hf"
        )
    tokenizer = load_tokenizer(recipe, tokenizer_source(path), padding_side="left")
    model.config.save_pretrained(out.parent / "config")  # all the converter reads from disk
    config = model.generation_config

    class Loaded(TransformersConverter):
        """The converter fed the model and tokenizer loaded above: its own from_pretrained would load
        them a second time, and cannot read a GGUF-backed hub name (SmolLM2's package)."""

        def load_model(self, *args: Any, **kwargs: Any) -> Any:
            return model

        def load_tokenizer(self, *args: Any, **kwargs: Any) -> Any:
            return tokenizer

    Loaded(str(out.parent / "config")).convert(str(out), quantization=quantization)
    return tokenizer, config


class CT2Engine:
    """The recipe's model through ctranslate2.Generator (module docstring)."""

    name = "ct2"

    def __init__(
        self,
        recipe: Recipe,
        max_new_tokens: int,
        batch_size: int,
        stop_at_json: bool = True,
        progress: Progress | None = None,
    ) -> None:
        import ctranslate2
        import torch

        cuda = torch.cuda.is_available()
        kind = compute_type(recipe, cuda)
        self.precision = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(kind, "int8")
        self.device = device_name()
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.stop_at_json, self.progress = stop_at_json, progress
        self.workdir = Path(tempfile.mkdtemp(prefix="ct2-"))
        try:
            self.tokenizer, config = convert(recipe, self.workdir / "model", kind)
            self.ends = eos_ids(self.tokenizer, config)
            self.pad = pad_id(self.tokenizer, self.ends)
            threads = (
                len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            )
            self.generator: Any = ctranslate2.Generator(
                str(self.workdir / "model"), device="cuda" if cuda else "cpu", compute_type=kind,
                intra_threads=0 if cuda else threads,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    def generate(self, prompts: Sequence[str]) -> list[Generation]:
        """Greedy answers in the order of `prompts`; `progress` is called after each batch."""
        tok = self.tokenizer
        rows = [tok.convert_ids_to_tokens(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        shared = common_prefix(rows)
        static = rows[0][:shared] if shared else None
        out: list[Generation | None] = [None] * len(prompts)
        started, done = time.perf_counter(), 0
        for batch in buckets([len(r) for r in rows], self.batch_size):
            ends = [JsonEnd() for _ in batch]

            def json_closed(step: Any, ends: list[JsonEnd] = ends) -> bool:
                return self.stop_at_json and ends[step.batch_id].feed(tok.decode([step.token_id]))

            results = self.generator.generate_batch(
                [rows[i][shared:] for i in batch], max_length=self.max_new_tokens, sampling_topk=1,
                include_prompt_in_result=False, static_prompt=static, end_token=sorted(self.ends),
                return_end_token=True, callback=json_closed,
            )  # fmt: skip
            for row, i in enumerate(batch):
                ids = list(results[row].sequences_ids[0])
                out[i] = settle(tok, ids, self.ends, self.pad, ends[row].done)
            done += len(batch)
            if self.progress is not None:
                self.progress(done, len(prompts), time.perf_counter() - started)
        return [g for g in out if g is not None]

    def close(self) -> None:
        del self.generator
        shutil.rmtree(self.workdir, ignore_errors=True)
