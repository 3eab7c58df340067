"""Recipe: one experiment, written once. Loading, `--set` overrides, validation, hashing."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from launcher import paths
from launcher.config.grid import SweepSpec
from launcher.config.kind_sections import ClassifySpec, SpacySpec
from launcher.config.schema import EnvVars, Strict, apply_overrides, override_blame, parse_override, validate
from launcher.config.sections import (
    ArtifactsSpec,
    DataSpec,
    DistributedSpec,
    EvalSpec,
    LoraSpec,
    ModelSpec,
    QuantSpec,
    ResourcesSpec,
    TrackingSpec,
    TrainSpec,
)
from launcher.config.yamlio import load_yaml
from launcher.errors import UserError, choices_text, did_you_mean
from launcher.kinds.reads import explicit_keys
from launcher.kinds.table import KINDS, LAUNCHER_PACKAGES, custom_module, kind_of, registered_jobs, unread_key
from launcher.tracking.wandb_mode import redact_text


class Recipe(Strict):
    """A validated experiment. `source` is the file it came from (for error messages)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str | None = None
    job: str = Field(
        description="a built-in job kind (launcher/kinds/table.py), a name registered in the entry point "
        "group recipe_launcher.jobs, or a dotted module of your project (my_lab.jobs.probe)"
    )
    task: Literal["ner", "classification"] = "ner"
    engine: Literal["hf", "axolotl"] = "hf"
    model: ModelSpec
    method: Literal["fft", "lora", "qlora"] = "fft"
    lora: LoraSpec | None = None
    quantization: QuantSpec = Field(default_factory=QuantSpec)
    distributed: DistributedSpec = Field(default_factory=DistributedSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    spacy: SpacySpec | None = Field(None, description="spaCy's training settings (job spacy only)")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    artifacts: ArtifactsSpec = Field(default_factory=ArtifactsSpec)
    env: EnvVars = Field(default_factory=dict)
    params: dict[str, Any] | None = Field(
        None, description="a lab's own job's settings (job: a module of your project), passed as written"
    )
    classify: ClassifySpec | None = None  # the classify job's settings (launcher/kinds/classify.py)
    sweep: SweepSpec | None = Field(
        None, description="the grid `launch sweep` runs (launcher/config/grid.py); never in a resolved recipe"
    )

    _source: str = PrivateAttr("<recipe>")
    _overrides: list[str] = PrivateAttr(default_factory=list)
    _base: BaseData | None = PrivateAttr(None)  # the raw data before the overrides

    @property
    def source(self) -> str:
        return self._source

    def at(self, key: str) -> str:
        """Where an error at `key` is reported: `--set KEY` when an override set it, else `<file>: KEY`."""
        return override_blame(self._source, self._overrides)(key)

    @field_validator("job")
    @classmethod
    def _known_job(cls, job: str) -> str:
        if job in KINDS or custom_module(job) is not None:
            return job
        registered = sorted(registered_jobs())
        ours = job.split(".", 1)[0] in LAUNCHER_PACKAGES and "." in job
        why = " (jobs.* and launcher.* are the launcher's own modules)" if ours else ""
        raise ValueError(
            f"{job!r} is not a job kind{why}{did_you_mean(job, [*KINDS, *registered])}; valid: "
            f"{choices_text([*KINDS, *registered])}, or a dotted module of your project (my_lab.jobs.probe)"
        )

    @model_validator(mode="before")
    @classmethod
    def _custom_sections(cls, data: Any, info: ValidationInfo) -> Any:
        """A lab's own job keeps the generic sections; the built-in kinds' own keys are refused, and
        `model` (required of them) holds an empty placeholder that the resolved recipe leaves out.
        An assignment (`info.field_name`) passes every field, placeholder included: nothing to do."""
        job = data.get("job") if isinstance(data, dict) else None
        if not isinstance(job, str) or job in KINDS or info.field_name is not None:
            return data
        if custom_module(job) is None:  # refused by _known_job: not also "model: required key is missing"
            return {"model": {"name_or_path": ""}, **data}
        for key in BUILTIN_KEYS:
            if key in data:
                raise ValueError(
                    f"{key}: is for the built-in job kinds, and job {job} is a module of your project; "
                    "put its settings under params"
                )
        return {**data, "model": {"name_or_path": ""}}

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        q = self.quantization.mode
        if self.method == "qlora" and q != "int4":
            raise ValueError(
                f"method: qlora needs quantization: int4 (got {q}); set quantization: int4 "
                "or use method: lora"
            )
        if self.method == "fft" and self.lora is not None:
            raise ValueError(
                "lora: settings given but method is fft; set method: lora or qlora, "
                "or remove the lora section"
            )
        if self.method in ("lora", "qlora") and self.lora is None:
            self.lora = LoraSpec()
        d = self.distributed
        if d.strategy != "deepspeed" and (
            d.zero_stage or d.offload_optimizer != "none" or d.offload_params != "none"
        ):
            raise ValueError(
                f"distributed.strategy: zero_stage and offload need strategy: deepspeed (got {d.strategy})"
            )
        if d.offload_params != "none" and d.zero_stage != 3:
            raise ValueError(
                f"distributed.offload_params: parameter offload needs zero_stage: 3 (got {d.zero_stage})"
            )
        kind = kind_of(self)
        if self.params is not None and not kind.custom:
            raise ValueError(
                f"params: settings given but job is {self.job}, a built-in kind; params is for a job "
                "module of your project (job: my_lab.jobs.probe); remove the params section"
            )
        for other in KINDS.values():
            for section in other.owns:
                if section not in kind.owns and getattr(self, section, None) is not None:
                    raise ValueError(
                        f"{section}: settings given but job is {self.job} (the {section} section is "
                        f"for job {other.name}); remove the {section} section"
                    )
        if self.task not in kind.tasks:
            raise ValueError(f"task: job {self.job} takes task {' or '.join(kind.tasks)} (got {self.task})")
        if self.engine not in kind.engines:
            takes = " or ".join(k.name for k in KINDS.values() if self.engine in k.engines)
            raise ValueError(f"engine: {self.engine} runs {takes} jobs only (job is {self.job})")
        if kind.validate is not None:
            kind.validate(self)
        if self.train.gradient_checkpointing == "offload" and self.engine != "axolotl":
            raise ValueError(
                "train.gradient_checkpointing: offload is axolotl's activation offloading; with engine "
                f"{self.engine} use true or false"
            )
        return self

    def to_yaml(self) -> str:
        """The resolved recipe, every default filled in: exactly what the job reads."""
        exclude = {"sweep", *(BUILTIN_KEYS if kind_of(self).custom else ())}
        if self.params is None:
            exclude.add("params")
        data = self.model_dump(mode="json", exclude=exclude)
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

    def digest(self, text: str | None = None) -> str:
        """sha256 of the resolved recipe (first 16 hex digits); `text`: its `to_yaml()`, when known."""
        return hashlib.sha256((self.to_yaml() if text is None else text).encode()).hexdigest()[:16]

    @property
    def overrides(self) -> list[str]:
        """The `--set` strings this recipe was loaded with, in order (secrets redacted)."""
        return list(self._overrides)

    def base_digest(self, own: str | None = None) -> str | None:
        """`digest()` of the recipe before its overrides (None: it does not validate without them);
        `own`: this recipe's `digest()`, when known."""
        if self._base is None:
            return own or self.digest()
        base = self._base
        if not base.checked:  # validated once, when first asked (launch.json at submit)
            try:
                base.digest = validate(Recipe, base.data, self._source).digest()
            except UserError:
                base.digest = None
            base.checked = True
        return base.digest


BUILTIN_KEYS = ("task", "engine", "model", "method", "lora", "quantization", "distributed", "data", "train",
                "eval", "spacy", "classify")  # fmt: skip
"""The keys the built-in kinds own or read: a lab's own job kind neither takes nor writes them."""


@dataclasses.dataclass
class BaseData:
    """A recipe's raw data before its `--set` overrides (shared by the points of a sweep), and
    the digest it validates to once `checked` (None: it does not validate)."""

    data: dict[str, Any]
    digest: str | None = None
    checked: bool = False


def load_recipe(ref: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load a recipe by name or path, apply `--set` overrides, validate; errors are UserErrors."""
    path = paths.resolve("recipes", str(ref))
    data = load_yaml(path)
    data.setdefault("name", path.stem)
    return recipe_from_data(data, path, overrides)


def recipe_from_data(data: dict[str, Any], path: Path, overrides: list[str] | None = None) -> Recipe:
    """`load_recipe` of data already read from `path` (changed in place by the overrides). A generic
    key given explicitly that the recipe's job kind does not read is a UserError (`check_reads`)."""
    base = copy.deepcopy(data) if overrides else None
    if overrides:
        apply_overrides(Recipe, data, overrides)
    recipe = validate(Recipe, data, str(path), overrides)
    recipe._source = str(path)
    recipe._overrides = [redact_text(o) for o in overrides or []]
    recipe._base = None if base is None else BaseData(base)
    check_reads(recipe)
    return recipe


def check_reads(recipe: Recipe, overrides: list[str] | None = None) -> None:
    """Refuse a key of the generic sections that the recipe gives explicitly (its file, `--set`,
    `--grid`; not a default) and its job kind does not read (launcher/kinds/reads.py): one line,
    naming the key the kind reads instead where there is one. A resolved recipe (every key filled
    in) is not asked: it was checked when it was written. With `overrides` (a recipe made from
    another one's resolved data, as `launch reeval` makes its eval recipe), only the keys they set."""
    given = explicit_keys(recipe)
    blame: Callable[[str], str] = recipe.at
    if overrides is not None:
        keys = [".".join(parse_override(o)[0]) for o in overrides]
        given = [k for k in given if any(k == o or k.startswith(o + ".") for o in keys)]
        blame = override_blame(recipe.source, overrides)
    found = unread_key(kind_of(recipe), given)
    if found is not None:
        key, why = found
        raise UserError(f"{blame(key)}: {why}")


def read_resolved(run_dir: Path) -> Recipe:
    """The recipe a job reads from its run directory."""
    path = run_dir / "recipe.yaml"
    recipe = validate(Recipe, load_yaml(path), str(path))
    recipe._source = str(path)
    return recipe
