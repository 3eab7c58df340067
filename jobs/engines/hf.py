"""The HF engine: transformers' generate in batches of similar length, left-padded, greedy; on a CPU
jobs.engines.prefix's loop (at fp32 the same answers, faster; under bf16 autocast a few differ)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from jobs.engines import (
    Generation,
    JsonEnd,
    Progress,
    device_name,
    eos_ids,
    pad_id,
    prefix,
    settle,
    tokenizer_source,
)

if TYPE_CHECKING:
    import torch

    from launcher.config.recipe import Recipe


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
            # transformers annotates BoolTensor, a legacy type no torch function returns
            return cast(torch.BoolTensor, torch.tensor(done, dtype=torch.bool, device=input_ids.device))

    return JsonStop()


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
    progress: Progress | None = None,
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
    ends = eos_ids(tokenizer, getattr(model, "generation_config", None))
    pad = pad_id(tokenizer, ends)
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
            json_done = stop is not None and stop.ends[row].done
            out[i] = settle(tokenizer, generated[row, width:].tolist(), ends, pad, json_done)
        done += len(batch)
        if progress is not None:
            progress(done, len(prompts), time.perf_counter() - started)
    return [g for g in out if g is not None]


def cpu_autocast(recipe: Recipe) -> bool:
    """bf16 on a machine without CUDA: fp32 weights under bf16 autocast, as the train job does
    (16 SmolLM2 generations: 87 s against 133 s in fp32 on two loaded cores)."""
    import torch

    return recipe.model.dtype == "bf16" and not torch.cuda.is_available()


def cast_linears_once(model: Any) -> None:
    """Every Linear's weight (and bias) cast to bf16 once, for a model run under CPU bf16 autocast:
    autocast would cast the same fp32 weights to the same bf16 values on every call (a third of a
    SmolLM2-135M decoding step), so the answers are unchanged. A Linear tied to the input embeddings
    (the output layer) gets a bf16 copy of its own; the embeddings stay fp32, as autocast reads them."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.weight.dtype == torch.float32:
            module.weight = torch.nn.Parameter(module.weight.detach().to(torch.bfloat16), requires_grad=False)
            if module.bias is not None:
                module.bias = torch.nn.Parameter(module.bias.detach().to(torch.bfloat16), requires_grad=False)


def load(recipe: Recipe, cast_once: bool = True, rows: int = 32) -> tuple[Any, Any, str]:
    """(model in eval mode on its device, left-padding tokenizer, precision name). `cast_once`: under
    CPU bf16 autocast, the Linear weights cast to bf16 at load, prepacked for oneDNN where it runs
    bf16 matmuls (jobs.engines.packed, laid out for `rows` rows), else plain (`cast_linears_once`)."""
    import torch

    from jobs.engines import packed
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
    precision = "bf16-autocast" if quant == "none" and cpu_autocast(recipe) else names[dtype]
    if precision == "bf16-autocast" and cast_once and not packed.pack_linears(model, rows):
        cast_linears_once(model)
    return model, tokenizer, quant if quant != "none" else precision


class HFEngine:
    """The recipe's model through transformers (checkpoints, LoRA adapters, int8/int4): unquantized
    on a CPU through jobs.engines.prefix; else `generate` above."""

    name = "hf"

    def __init__(
        self,
        recipe: Recipe,
        max_new_tokens: int,
        batch_size: int,
        stop_at_json: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.model, self.tokenizer, self.precision = load(recipe, rows=batch_size)
        self.device = device_name()
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.stop_at_json, self.progress = stop_at_json, progress
        # jobs.engines.prefix's loop on a CPU: token-exact at fp32; under bf16 autocast its other shapes
        # and packed matmuls round differently (SmolLM2 smollm2_ner checkpoint-128, 200 GMB test
        # sentences: 178 answers identical, strict F1 0.5688 against generate's 0.5717) at 3.2x-3.5x
        # the sentences/s
        self.shared_prefix = self.precision in ("fp32", "bf16-autocast") and prefix.applies(self.model)

    def generate(self, prompts: Sequence[str]) -> list[Generation]:
        import contextlib

        import torch

        autocast = self.precision == "bf16-autocast"
        loop = prefix.generate if self.shared_prefix else generate
        with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
            return loop(
                self.model, self.tokenizer, prompts, self.batch_size, self.max_new_tokens,
                stop_at_json=self.stop_at_json, progress=self.progress,
            )  # fmt: skip

    def close(self) -> None:
        import torch

        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
