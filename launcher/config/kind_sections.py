"""Recipe sections that one job kind owns: `classify:` (the classify kind) and `spacy:` (the spacy kind).

Defaults are the research's protocol: temperature 0, one item per request, 3 attempts, 500 items
per cell drawn with seed 42, 5 ranked labels per answer; spaCy's training settings as the research
trained. The rules of each kind are in launcher/kinds/.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from launcher.config.schema import Strict


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


class SpacySpec(Strict):
    """spaCy's own training settings (the research's values are the defaults).

    Learning rate, epochs, seed and `save_total_limit` come from `train.*`.
    """

    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    batch_start: float = Field(4.0, ge=1.0, description="spacy.util.compounding: first batch size")
    batch_stop: float = Field(32.0, ge=1.0, description="compounding: the batch size it grows to")
    batch_compound: float = Field(1.001, ge=1.0, description="compounding: factor per batch")
    exclude: list[str] = Field(
        default_factory=list,
        description="pipes not loaded (nor saved, nor run), e.g. [parser, lemmatizer]; ner is never excluded",
    )
