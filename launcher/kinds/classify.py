"""The rules of the classify job kind (torch-free); its `classify:` section is in
launcher/config/kind_sections.py.

`Recipe.classify` is filled with the research's defaults for a classify job; `jobs.classify` reads
nothing else from the environment but the API key, and that only from the variable
`eval.api.key_env` names.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from launcher.config.kind_sections import ClassifySpec
from launcher.errors import UserError
from launcher.kinds.view import RecipeView

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_loopback(base_url: str) -> bool:
    return (urlparse(base_url).hostname or "") in LOOPBACK


def classify_rules(recipe: RecipeView) -> None:
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


def check_classify(recipe: RecipeView) -> None:
    """Inputs of a classify recipe that need the file system or the environment (UserError)."""
    c, src = recipe.classify, recipe.source
    if c is None:
        return
    for key, path in (("classify.labels", c.labels), ("classify.prompt", c.prompt)):
        if path and not os.path.isfile(os.path.expanduser(path)):
            raise UserError(f"{src}: {key}: '{path}' is not a file")
    if recipe.data.dataset == "csv" and not recipe.data.path:
        raise UserError(f"{src}: data.path: dataset csv needs data.path (a CSV file)")
