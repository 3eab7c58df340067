"""Recipe: one experiment, written once. Loading, `--set` overrides, validation, hashing."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, model_validator

from launcher import paths
from launcher.config.grid import SweepSpec
from launcher.config.kind_sections import ClassifySpec, SpacySpec
from launcher.config.schema import EnvVars, Strict, apply_overrides, override_blame, validate
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
from launcher.errors import UserError
from launcher.kinds.table import JOB_NAMES, KINDS
from launcher.tracking.wandb_mode import redact_text


class Recipe(Strict):
    """A validated experiment. `source` is the file it came from (for error messages)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str | None = None
    job: Literal[JOB_NAMES]  # type: ignore[valid-type]  # the job-kind table, launcher/kinds/table.py
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
        kind = KINDS[self.job]
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
        data = self.model_dump(mode="json", exclude={"sweep"})
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

    def digest(self) -> str:
        """sha256 of the resolved recipe (first 16 hex digits)."""
        return hashlib.sha256(self.to_yaml().encode()).hexdigest()[:16]

    @property
    def overrides(self) -> list[str]:
        """The `--set` strings this recipe was loaded with, in order (secrets redacted)."""
        return list(self._overrides)

    def base_digest(self) -> str | None:
        """`digest()` of the recipe before its overrides (None: it does not validate without them)."""
        if self._base is None:
            return self.digest()
        base = self._base
        if not base.checked:  # validated once, when first asked (launch.json at submit)
            try:
                base.digest = validate(Recipe, base.data, self._source).digest()
            except UserError:
                base.digest = None
            base.checked = True
        return base.digest


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
    """`load_recipe` of data already read from `path` (changed in place by the overrides)."""
    base = copy.deepcopy(data) if overrides else None
    if overrides:
        apply_overrides(Recipe, data, overrides)
    recipe = validate(Recipe, data, str(path), overrides)
    recipe._source = str(path)
    recipe._overrides = [redact_text(o) for o in overrides or []]
    recipe._base = None if base is None else BaseData(base)
    return recipe


def read_resolved(run_dir: Path) -> Recipe:
    """The recipe a job reads from its run directory."""
    path = run_dir / "recipe.yaml"
    recipe = validate(Recipe, load_yaml(path), str(path))
    recipe._source = str(path)
    return recipe
