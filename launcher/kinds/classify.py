"""The `classify` section of a recipe and the rules of the classify job kind (torch-free).

Defaults are the research's protocol: temperature 0, one item per request, 3 attempts, 500 items
per cell drawn with seed 42, 5 ranked labels per answer. `Recipe.classify` is filled with these
defaults for a classify job; `jobs.classify` reads nothing else from the environment but the API
key, and that only from the variable `eval.api.key_env` names.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

from pydantic import Field

from launcher.config.schema import Strict
from launcher.errors import UserError

if TYPE_CHECKING:
    from launcher.config.recipe import Recipe

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ColumnsSpec(Strict):
    """Which CSV columns hold an item's text and its gold code at each level."""

    text: list[str] = Field(
        default_factory=lambda: ["Title", "Description"],
        min_length=1,
        description="joined as 'Column: value' lines in the prompt (the first is called Title, the "
        "second Abstract in the shipped template)",
    )
    codes: dict[int, str] = Field(
        default_factory=lambda: {1: "Class Index"},
        description="level -> column with the gold code; a level without a column takes the parent "
        "of the deepest code given",
    )
    id: str | None = Field(None, description="column with the item id; default: the row number")


class SupportSpec(Strict):
    """Where the in-prompt examples come from: never from the items being classified."""

    strategy: Literal["per_class", "first_per_parent"] = Field(
        "per_class",
        description="per_class: eval.shots examples in all, spread over the candidates (k per class), "
        "drawn with `seed`; first_per_parent: the research's first row of each parent bucket",
    )
    seed: int = 42


class SamplingSpec(Strict):
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, description="sent to endpoints that take a sampling seed")


class ClassifySpec(Strict):
    """Settings of a classify job (recipes: `classify:`)."""

    labels: str | None = Field(
        None,
        description="label tree CSV (code, level, label, definition); default: the dataset's own "
        "(AG News: its 4 classes)",
    )
    columns: ColumnsSpec = Field(default_factory=ColumnsSpec)
    levels: list[int] = Field(default_factory=lambda: [1], min_length=1)
    mode: Literal["oracle", "cascade"] = Field(
        "oracle",
        description="oracle: a level's candidates are the children of the gold parent (the research's "
        "protocol); cascade: the children of the model's own prediction one level up",
    )
    sample: int | None = Field(500, ge=1, description="items per cell, drawn with `seed`; null: all")
    seed: int = 42
    support: SupportSpec = Field(default_factory=SupportSpec)
    prompt: str | None = Field(None, description="prompt template file; default: the shipped one")
    n_predictions: int = Field(5, ge=1, description="ranked labels asked for")
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    response_format: Literal["none", "json_object", "json_schema", "llama_schema"] = Field(
        "none",
        description="none: the prompt alone asks for JSON (the research); json_object: any JSON; "
        "json_schema: OpenAI structured output, the answer schema with category one of the candidates; "
        "llama_schema: the same schema in llama.cpp's form ({type: json_object, schema: ...})",
    )
    attempts: int = Field(3, ge=1, description="tries per request (the openai client's retries, which "
                          "back off exponentially and honour Retry-After)")  # fmt: skip
    rpm: float | None = Field(None, gt=0, description="requests per minute at most; null: no limit")
    hf_mode: Literal["generate", "loglik"] = Field(
        "generate",
        description="engine hf: generate the answer like the API engine, or score each candidate "
        "label by its log-likelihood after the prompt (a probability over the candidates)",
    )
    progress_every_s: float = Field(10.0, gt=0, description="a progress line this often when not on a tty")


def is_loopback(base_url: str) -> bool:
    return (urlparse(base_url).hostname or "") in LOOPBACK


def classify_rules(recipe: Recipe) -> None:
    """The job-kind validation hook: engines, API section, levels; fills the default section."""
    if recipe.classify is None:
        recipe.classify = ClassifySpec()
    e, c = recipe.eval, recipe.classify
    if e.engine not in ("openai", "hf"):
        raise ValueError(f"eval.engine: the classify job runs openai or hf (got {e.engine})")
    if e.engine == "openai" and e.api is None:
        raise ValueError("eval.api: engine openai needs api: {base_url: ..., key_env: ...}")
    if sorted(set(c.levels)) != c.levels or c.levels[0] < 1:
        raise ValueError(f"classify.levels: increasing levels from 1 up, e.g. [1, 2, 3] (got {c.levels})")
    if c.mode == "cascade" and c.levels != list(range(1, c.levels[-1] + 1)):
        raise ValueError(f"classify.levels: mode cascade needs every level from 1 (got {c.levels})")
    if e.engine == "hf" and c.hf_mode == "loglik" and e.confidence == "verbal":
        raise ValueError(
            "eval.confidence: hf_mode loglik gives logprob confidence only; valid: logprobs, auto"
        )


def check_classify(recipe: Recipe) -> None:
    """Inputs of a classify recipe that need the file system or the environment (UserError)."""
    c, src = recipe.classify, recipe.source
    if c is None:
        return
    for key, path in (("classify.labels", c.labels), ("classify.prompt", c.prompt)):
        if path and not os.path.isfile(os.path.expanduser(path)):
            raise UserError(f"{src}: {key}: '{path}' is not a file")
    if recipe.data.dataset == "csv" and not recipe.data.path:
        raise UserError(f"{src}: data.path: dataset csv needs data.path (a CSV file)")
