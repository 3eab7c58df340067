"""Evaluation bookkeeping shared by `launch reeval` and `jobs.evaluate`: which checkpoints,
which eval recipe, where results go, and the fingerprint that says a result is current.

No torch here: the launcher imports it. A checkpoint is scored by an eval recipe when
`<results_dir>/metrics.json` holds the same `fingerprint`. Results live at
`results/<checkpoint>/<eval recipe name>/` (`results_name`); runs from before that layout have
`results/<checkpoint>/metrics.json`, still read everywhere (`result_files`):

    fingerprint = sha256(checkpoint's COMPLETE marker bytes | step | eval_digest(recipe))[:16]

`eval_digest` hashes the eval recipe with the per-checkpoint keys (`model.name_or_path`,
`eval.results_dir`) blanked, so reeval (before it sets them) and the job (after) agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from launcher import paths
from launcher.config.recipe import Recipe, check_reads, load_recipe
from launcher.config.schema import apply_overrides, validate
from launcher.errors import UserError
from launcher.jsonio import read_object
from launcher.kinds.table import kind_of
from launcher.runs.checkpoints import MARKER, step_of

PLACEHOLDER = "<checkpoint>"


def select(checkpoints: Sequence[Path], every: int | None = None, last: int | None = None) -> list[Path]:
    """`--every N`: only steps that are multiples of N; then `--last K`: the K latest of those."""
    chosen = [c for c in checkpoints if not every or (step_of(c) or 0) % every == 0]
    if last is not None:
        chosen = chosen[-last:] if last > 0 else []
    return chosen


def checkpoint_step(checkpoint: Path) -> int | None:
    """The training step of a checkpoint: its COMPLETE marker's `step`, else its directory name."""
    try:
        step = json.loads((checkpoint / MARKER).read_text()).get("step")
        if isinstance(step, int):
            return step
    except (OSError, ValueError, AttributeError):
        pass
    return step_of(checkpoint)


def eval_digest(recipe: Recipe) -> str:
    """sha256 (16 hex) of the eval recipe with the per-checkpoint keys blanked."""
    data = recipe.model_dump(mode="json")
    data["model"]["name_or_path"] = PLACEHOLDER
    data["eval"]["results_dir"] = None
    text = yaml.safe_dump(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(name_or_path: str, recipe: Recipe, digest: str | None = None) -> str:
    """What `metrics.json` must hold for `name_or_path` to count as scored by `recipe`.

    For a checkpoint directory: its COMPLETE marker's bytes (a rewritten checkpoint gets a new
    marker) and step; for anything else (a hub name, tiny://, a directory without marker): the
    name itself. `digest`: `eval_digest(recipe)` when the caller has it (a reeval of thousands of
    checkpoints computes it once).
    """
    path = Path(name_or_path)
    marker = path / MARKER
    ident = marker.read_bytes() if marker.is_file() else name_or_path.encode()
    step = checkpoint_step(path) if marker.is_file() else None
    h = hashlib.sha256()
    for part in (ident, str(step).encode(), (digest or eval_digest(recipe)).encode()):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def results_name(recipe: Recipe, overrides: Sequence[str] | None = None) -> str:
    """The directory an eval recipe's results get under `results/<checkpoint>/`: its name, with
    `-<eval digest, 8 hex>` when `--set` overrides changed it (so a variant never overwrites it).
    Only characters safe in S3 keys and shells: an `@` broke S3 request signing."""
    return f"{recipe.name}-{eval_digest(recipe)[:8]}" if overrides else recipe.name


def checkpoint_results(
    run_dir: Path, checkpoint: str, recipe: Recipe, overrides: Sequence[str] | None = None
) -> Path:
    """`<run_dir>/results/<checkpoint name>/<results_name>`: where `recipe` scores that checkpoint."""
    return run_dir / "results" / checkpoint / results_name(recipe, overrides)


def default_results_dir(run_dir: Path, name_or_path: str, recipe: Recipe) -> Path:
    """`<run_dir>/results/<basename of the checkpoint or model name>/<eval recipe name>`."""
    base = name_or_path.rstrip("/").replace("tiny://", "").rsplit("/", 1)[-1] or "model"
    return checkpoint_results(run_dir, base, recipe)


def results_dir(recipe: Recipe, run_dir: Path) -> Path:
    """Where an eval run writes: `eval.results_dir` when set, else the default."""
    if recipe.eval.results_dir:
        return Path(recipe.eval.results_dir)
    return default_results_dir(run_dir, recipe.model.name_or_path, recipe)


def legacy_results(results: Path) -> Path:
    """The layout before results per eval recipe: `results/<checkpoint>/` itself held metrics.json."""
    return results.parent


def result_files(run_dir: Path) -> list[Path]:
    """Every evaluation's metrics.json of a run, both layouts (`results/<ckpt>/metrics.json` and
    `results/<ckpt>/<eval recipe>/metrics.json`), sorted."""
    return sorted((run_dir / "results").glob("**/metrics.json"))


def result_label(metrics_path: Path, run_dir: Path, metrics: dict[str, Any]) -> tuple[str, str]:
    """(checkpoint, eval recipe) of a metrics.json: from its path under results/; an old-layout
    file names no eval recipe in its path, so its `recipe` key does."""
    parts = metrics_path.parent.relative_to(run_dir / "results").parts
    eval_name = "/".join(parts[1:]) or str(metrics.get("recipe") or "?")
    return (parts[0] if parts else "?"), eval_name


def read_metrics(results: Path) -> dict[str, Any] | None:
    """`<results>/metrics.json`, or None when missing or unreadable."""
    return read_object(results / "metrics.json")


def scored_by(
    checkpoint: Path, results: Path, recipe: Recipe, fp: str | None = None
) -> dict[str, Any] | None:
    """The metrics of this checkpoint by this eval recipe (same fingerprint, `fp` when known): in
    `results`, else in any other results directory of that checkpoint (the old layout's
    `results/<checkpoint>/`, or a `--set` variant that resolved to the same recipe); None when none
    holds them."""
    fp = fp or fingerprint(str(checkpoint), recipe)
    others = sorted(legacy_results(results).glob("**/metrics.json"))
    for where in (results, *(m.parent for m in others if m.parent != results)):
        metrics = read_metrics(where)
        if metrics is not None and metrics.get("fingerprint") == fp:
            return metrics
    return None


def is_scored(checkpoint: Path, results: Path, recipe: Recipe) -> bool:
    """True when `results` (or the old layout) holds this checkpoint's metrics from this eval recipe."""
    return scored_by(checkpoint, results, recipe) is not None


def training_run_of(checkpoint: Path) -> Path | None:
    """The run directory a `<run>/checkpoints/checkpoint-N` belongs to, if it has a recipe.yaml."""
    if step_of(checkpoint) is None or checkpoint.parent.name != "checkpoints":
        return None
    run_dir = checkpoint.parent.parent
    return run_dir if (run_dir / "recipe.yaml").is_file() else None


_METHOD_SUFFIX = re.compile(r"_(fft|lora|qlora)$")


def self_evaluating(recipe: Recipe) -> bool:
    """A job kind that scores its own checkpoints (spacy, token_classification): `eval.only: true`."""
    kind = kind_of(recipe)
    return kind.evaluator == kind.name


def self_eval_recipe(train: Recipe, overrides: list[str] | None = None) -> Recipe:
    """For a self-evaluating kind: the training recipe with `eval.only: true`, one node with at most
    one GPU and no distributed strategy, `--set` applied. The job's end-of-training score uses
    the same recipe for its fingerprint, so reeval skips the checkpoint it already scored."""
    data = train.model_dump(mode="json", exclude={"distributed"})
    data.update(name=f"{train.name}_eval", description=f"evaluate {train.name} checkpoints")
    data["eval"]["only"] = True
    res = data["resources"]
    res.update(nodes=1, gpus_per_node=min(1, res["gpus_per_node"]))
    if overrides:
        apply_overrides(Recipe, data, overrides)
    source = f"{train.source} (with eval.only: true)"
    recipe = validate(Recipe, data, source)
    recipe._source = source
    check_reads(recipe, overrides or [])  # `launch reeval --set` a key its kind does not read: refused
    return recipe


def default_eval_recipe(train: Recipe, overrides: list[str] | None = None) -> Recipe:
    """The eval recipe for a training recipe when `--recipe` is not given, `--set` applied.

    A self-evaluating kind: `self_eval_recipe`. Otherwise `recipes/<name>_eval.yaml` (or `<name
    without _fft/_lora/_qlora>_eval`) when there is one; else the training recipe itself turned
    into a job of its evaluator kind: same model settings, method, quantization, data, eval and
    tracking sections, one node with at most one GPU.
    """
    if self_evaluating(train):
        return self_eval_recipe(train, overrides)
    catalog = paths.catalog("recipes")
    for candidate in (f"{train.name}_eval", _METHOD_SUFFIX.sub("", train.name) + "_eval"):
        if candidate in catalog:
            return load_recipe(candidate, overrides or [])
    data = train.model_dump(mode="json", exclude={"train", "distributed", "engine"})
    data.update(name=f"{train.name}_eval", job=kind_of(train).evaluator,
                description=f"evaluate {train.name} checkpoints")  # fmt: skip
    res = data["resources"]
    res.update(nodes=1, gpus_per_node=min(1, res["gpus_per_node"]))
    if overrides:
        apply_overrides(Recipe, data, overrides)
    source = f"{train.source} (as an evaluate job)"
    recipe = validate(Recipe, data, source, overrides)
    recipe._source = source
    recipe._overrides = list(overrides or [])
    check_reads(recipe, recipe._overrides)
    return recipe


def checkpoint_recipe(eval_recipe: Recipe, checkpoint: Path, results: Path) -> Recipe:
    """The eval recipe for one checkpoint: model.name_or_path and eval.results_dir set."""
    recipe = eval_recipe.model_copy(deep=True)
    recipe.model.name_or_path = str(checkpoint.resolve())
    recipe.eval.results_dir = str(results.resolve())
    recipe._source = eval_recipe.source
    return recipe


def training_recipe(run_dir: Path) -> Recipe:
    """The resolved recipe of a training run directory; a UserError if it is none."""
    from launcher.config.recipe import read_resolved

    if not (run_dir / "recipe.yaml").is_file():
        raise UserError(f"{run_dir}: not a run directory (no recipe.yaml)")
    recipe = read_resolved(run_dir)
    kind = kind_of(recipe)
    if not kind.trains or kind.evaluator is None or recipe.eval.only:
        what = f"{recipe.job} run with eval.only" if recipe.eval.only else f"{recipe.job} run"
        raise UserError(f"{run_dir}: is a {what}; reeval takes a training run (one with checkpoints/)")
    return recipe
