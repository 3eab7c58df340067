"""Generation engines for jobs.evaluate: one protocol; HF, CTranslate2 and vLLM implementations.

An engine holds one model and its tokenizer and turns chat-formatted prompts into greedy answers:

    engine = HFEngine(recipe, max_new_tokens=96, batch_size=32)  # jobs.engines.hf (CPU: .prefix .kv .packed)
    engine = CT2Engine(recipe, max_new_tokens=96, batch_size=32)     # jobs.engines.ct2
    engine = VllmEngine(recipe, max_new_tokens=96)                   # jobs.engines.vllm
    gens = engine.generate(prompts)                                  # list[Generation], prompt order
    engine.close()

All decode greedily from the same token ids (the prompt tokenized without added special tokens)
and end a row the same way: at an eos id, at `max_new_tokens`, or once its text holds a complete
JSON object (`JsonEnd`); `settle` turns the generated ids into a Generation for both, so equal ids
give equal Generations. Only the chosen engine's module imports its library and loads the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from launcher.config.recipe import Recipe


class Progress(Protocol):
    """Called as answers are done: `done` of `total` prompts after `seconds`. `left`, from an
    engine whose prompts do not all cost the same (jobs.engines.prefix runs the longest first), is
    its estimate of the share of the work still to do; None: (total - done) / total."""

    def __call__(self, done: int, total: int, seconds: float, left: float | None = None) -> None: ...


@dataclass(frozen=True)
class Generation:
    """One generated answer: its text (prompt and eos excluded), its length in tokens, and why
    it ended: `json` (a complete JSON object), `eos`, or `length` (max_new_tokens). `token_ids`
    are the ids the text was decoded from."""

    text: str
    new_tokens: int
    stop: str
    token_ids: tuple[int, ...] = field(default=(), repr=False)


class Engine(Protocol):
    """What jobs.evaluate needs of an engine."""

    name: str  # the recipe's eval.engine: hf, ct2, vllm
    precision: str  # fp32, bf16, fp16, int8, int4
    device: str  # "cpu" or the GPU's name
    tokenizer: Any  # renders the prompts (chat template) and decodes the answers

    def generate(self, prompts: Sequence[str]) -> list[Generation]:
        """Greedy answers for `prompts`, in their order."""
        ...

    def close(self) -> None:
        """Free the model (and its accelerator memory)."""
        ...


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


def eos_ids(tokenizer: Any, generation_config: Any) -> set[int]:
    """Token ids that end a generation: the tokenizer's eos and the generation config's eos."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    return ids


def pad_id(tokenizer: Any, ends: set[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(ends)


def common_prefix(rows: Sequence[Sequence[Any]]) -> int:
    """Length of the longest token prefix every row shares, leaving each row at least one token."""
    if not rows:
        return 0
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def settle(tokenizer: Any, tokens: Sequence[int], ends: set[int], pad: int, json_done: bool) -> Generation:
    """The Generation of one row's generated ids: cut at the first eos or pad id, decoded without
    special tokens; `json` when the row's JsonEnd finished, else `eos` or `length`."""
    tokens = list(tokens)
    cut = next((k for k, t in enumerate(tokens) if t in ends or t == pad), len(tokens))
    text = tokenizer.decode(tokens[:cut], skip_special_tokens=True)
    if json_done:
        reason = "json"
    elif cut < len(tokens) and tokens[cut] in ends:
        reason = "eos"
    else:
        reason = "length"
    return Generation(text, cut, reason, tuple(tokens[:cut]))


def tokenizer_source(path: str) -> str:
    """A LoRA adapter directory without tokenizer files borrows its base model's tokenizer."""
    from jobs.tiny import models as tiny

    adapter = Path(path, "adapter_config.json")
    if adapter.is_file() and not Path(path, "tokenizer_config.json").is_file():
        return tiny.resolve(json.loads(adapter.read_text())["base_model_name_or_path"])
    return path


def precision_of(recipe: Recipe) -> str:
    """The precision an engine runs the recipe's model at: its quantization, else model.dtype
    (`auto` as jobs.modeling resolves it) on a GPU, fp32 on CPU."""
    import torch

    from jobs.modeling import resolve_dtype

    if recipe.quantization.mode != "none":
        return recipe.quantization.mode
    if not torch.cuda.is_available():
        return "fp32"
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[
        resolve_dtype(recipe.model.dtype)
    ]


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
