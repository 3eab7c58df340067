"""Checks of a recipe's local inputs, run by the launcher before submitting and by jobs at start."""

from __future__ import annotations

from pathlib import Path

from launcher.config.recipe import Recipe
from launcher.errors import UserError
from launcher.kinds.table import kind_of

TINY_PREFIX = "tiny://"
DATASETS_BY_TASK = {"ner": ("gmb",), "classification": ("ag_news", "csv")}


def _looks_local(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~"))


def check_inputs(recipe: Recipe) -> None:
    """Model and data paths that name local files must exist; the dataset must suit the task."""
    at = recipe.at
    name = recipe.model.name_or_path
    if _looks_local(name) and not Path(name).expanduser().exists():
        raise UserError(
            f"{at('model.name_or_path')}: '{name}' does not exist; valid: an existing directory, "
            "a hub name (org/model) or tiny://qwen2-gmb"
        )
    if recipe.eval.engine == "vllm" and Path(name, "adapter_config.json").expanduser().is_file():
        raise UserError(
            f"{at('eval.engine')}: vllm takes full checkpoints here, and {name} is a LoRA adapter "
            "directory; valid: engine hf, or a merged checkpoint"
        )
    if recipe.model.config and not Path(recipe.model.config).expanduser().exists():
        raise UserError(f"{at('model.config')}: '{recipe.model.config}' does not exist")
    if recipe.data.path and not Path(recipe.data.path).expanduser().is_file():
        raise UserError(
            f"{at('data.path')}: '{recipe.data.path}' is not a file; leave it unset to use the "
            f"{recipe.data.dataset} data shipped with the project"
        )
    kind = kind_of(recipe)
    if kind.inputs is not None:
        kind.inputs(recipe)
    allowed = DATASETS_BY_TASK[recipe.task]
    if kind.reads_data and recipe.data.dataset not in allowed:
        raise UserError(
            f"{at('data.dataset')}: '{recipe.data.dataset}' does not suit task {recipe.task}; "
            f"valid: {', '.join(allowed)}"
        )
