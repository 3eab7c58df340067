"""The vLLM engine: continuous batching, greedy, full checkpoints at bf16/fp16/fp32.

Its answers equal the HF engine's token for token (tests/integration/venv/test_vllm_engine.py checks it
on CPU): both get the same prompt ids, and each row ends where the HF engine ends it. vLLM has no per-row
stopping hook, so the JSON end is found here: a request stops at eos, at `max_tokens` or at the
string `]}` (where the answer object usually closes); its ids are then fed one by one to JsonEnd,
exactly as the HF stopping criterion feeds them, and cut after the one that closes the object. A
row that stopped at `]}` inside a string or an inner object goes on from its ids so far (prefix
caching makes that cheap) until it closes, ends or runs out of tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobs.engines import Generation, JsonEnd, device_name, eos_ids, pad_id, precision_of, settle
from jobs.engines import tokenizer_source as tokenizer_dir

if TYPE_CHECKING:
    from launcher.config.recipe import Recipe

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
STOP = "]}"


class VllmEngine:
    """The recipe's model (a full checkpoint, hub name or tiny://) through vllm.LLM."""

    name = "vllm"

    def __init__(
        self, recipe: Recipe, max_new_tokens: int, stop_at_json: bool = True, **llm_options: Any
    ) -> None:
        """`llm_options` go to vllm.LLM as they are (gpu_memory_utilization, enforce_eager, ...)."""
        from transformers import GenerationConfig
        from vllm import LLM

        from jobs.modeling import load_tokenizer, model_path
        from jobs.tiny import models as tiny

        path = model_path(recipe)
        source = tiny.resolve(recipe.model.tokenizer or tokenizer_dir(path))
        self.tokenizer = load_tokenizer(recipe, source, padding_side="left")
        self.precision = precision_of(recipe)
        if self.precision not in DTYPES:
            raise ValueError(f"vLLM runs bf16, fp16 or fp32 weights here, not {self.precision}")
        self.device = device_name()
        self.max_new_tokens, self.stop_at_json = max_new_tokens, stop_at_json
        try:
            # transformers reads a revision of None as "main" but annotates `str`
            config = GenerationConfig.from_pretrained(path, revision=recipe.model.revision or "main")
        except OSError:  # no generation_config.json: the model config's eos, as transformers does
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(path, revision=recipe.model.revision)
        self.ends = eos_ids(self.tokenizer, config)
        self.pad = pad_id(self.tokenizer, self.ends)
        self.llm: Any = LLM(
            model=path, tokenizer=source, revision=recipe.model.revision,
            trust_remote_code=recipe.model.trust_remote_code, dtype=DTYPES[self.precision], seed=0,
            **llm_options,
        )  # fmt: skip

    def generate(self, prompts: Sequence[str]) -> list[Generation]:
        from vllm.inputs import TokensPrompt

        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        tokens: list[list[int]] = [[] for _ in prompts]
        ends = [JsonEnd() for _ in prompts]
        pending = list(range(len(prompts)))
        while pending:
            requests = [TokensPrompt(prompt_token_ids=encoded[i] + tokens[i]) for i in pending]
            params = [self._params(self.max_new_tokens - len(tokens[i])) for i in pending]
            again = []
            for i, result in zip(pending, self.llm.generate(requests, params, use_tqdm=False), strict=True):
                out = result.outputs[0]
                for t in out.token_ids:
                    tokens[i].append(t)
                    piece = self.tokenizer.decode([t], skip_special_tokens=False)
                    if self.stop_at_json and ends[i].feed(piece):
                        break
                at_string = out.finish_reason == "stop" and out.stop_reason == STOP
                if at_string and not ends[i].done and len(tokens[i]) < self.max_new_tokens:
                    again.append(i)
            pending = again
        tok, pad = self.tokenizer, self.pad
        return [settle(tok, t, self.ends, pad, end.done) for t, end in zip(tokens, ends, strict=True)]

    def _params(self, max_tokens: int) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            temperature=0.0, max_tokens=max_tokens, stop=[STOP] if self.stop_at_json else None,
            include_stop_str_in_output=True, stop_token_ids=sorted(self.ends), skip_special_tokens=False,
        )  # fmt: skip

    def close(self) -> None:
        del self.llm
