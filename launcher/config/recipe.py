"""Recipe: one experiment, written once. Loading, `--set` overrides, validation, hashing."""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, PrivateAttr, model_validator

from launcher import paths
from launcher.config.grid import SweepSpec
from launcher.config.schema import EnvVars, Strict, apply_overrides, override_blame, validate
from launcher.config.yamlio import load_yaml
from launcher.errors import UserError
from launcher.kinds.classify import ClassifySpec
from launcher.kinds.spacy import SpacySpec
from launcher.kinds.table import JOB_NAMES, KINDS
from launcher.tracking.wandb_mode import redact_text

Dtype = Literal["auto", "fp32", "bf16", "fp16"]
Offload = Literal["none", "cpu", "nvme"]
# The HF Trainer `optim` names a recipe may give (launcher/plan/workload.py sizes each one).
Optim = Literal[
    "adamw_torch", "adamw_torch_fused", "adamw_torch_8bit", "adamw_torch_4bit", "adamw_8bit",
    "adamw_bnb_8bit", "paged_adamw_8bit",
]  # fmt: skip

_DURATION = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def duration_seconds(text: str) -> int:
    """Seconds in a Slurm-style duration: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM[:SS]`."""
    m = _DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"'{text}' is not a duration; use HH:MM:SS or D-HH:MM:SS")
    days, a, b, c = m.groups()
    if days is not None:
        hours, minutes, seconds = int(a), int(b or 0), int(c or 0)
    elif c is not None:
        hours, minutes, seconds = int(a), int(b), int(c)
    elif b is not None:
        hours, minutes, seconds = 0, int(a), int(b)
    else:
        hours, minutes, seconds = 0, int(a), 0
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def _check_duration(value: str | int) -> str:
    if duration_seconds(str(value)) == 0:  # Slurm reads --time=0 as UNLIMITED
        raise ValueError(f"'{value}' is zero, which Slurm reads as unlimited; use a positive HH:MM:SS")
    return str(value)


Duration = Annotated[str, BeforeValidator(_check_duration)]


class ModelSpec(Strict):
    name_or_path: str
    dtype: Dtype = "auto"
    config: str | None = Field(
        None, description="local directory or config.json with the architecture (planner, tiny builds)"
    )
    revision: str | None = None
    tokenizer: str | None = None
    trust_remote_code: bool = False
    attn_implementation: Literal["auto", "sdpa", "flex_attention", "flash_attention_2", "eager"] = Field(
        "auto", description="auto: flex_attention for packed training on a GPU, else sdpa"
    )
    model_type: str | None = Field(
        None, description="the transformers class to load, e.g. Llama4ForConditionalGeneration (axolotl)"
    )
    linearized_experts: bool = Field(
        False, description="MoE experts stored as one linear layer each, so bitsandbytes quantizes them"
    )
    chat_template: str | None = Field(None, description="a named chat template, e.g. llama4 (axolotl)")
    special_tokens: dict[str, str] = Field(
        default_factory=dict, description="tokenizer special tokens to set: {pad_token: ..., eos_token: ...}"
    )


class LoraSpec(Strict):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    bias: Literal["none", "all", "lora_only"] = "none"


class QuantSpec(Strict):
    mode: Literal["none", "int8", "int4"] = "none"
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: Dtype = "auto"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"mode": data} if isinstance(data, str) else data


class DistributedSpec(Strict):
    strategy: Literal["none", "ddp", "deepspeed"] = "none"
    zero_stage: int = Field(0, ge=0, le=3)
    offload_optimizer: Offload = "none"
    offload_params: Offload = "none"


class ResourcesSpec(Strict):
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(1, ge=0)
    gpu_memory_gb: float | None = Field(None, gt=0)
    gpu_type: str | None = None
    cpus_per_gpu: int = Field(4, ge=1)
    mem_gb: float | None = Field(None, gt=0)
    time: Duration = "01:00:00"

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def seconds(self) -> int:
        return duration_seconds(self.time)


class DataSpec(Strict):
    dataset: Literal["gmb", "ag_news", "csv"] = "gmb"  # csv: data.path, columns in classify.columns
    path: str | None = None
    test_size: float = Field(0.3, gt=0.0, lt=1.0)
    validation_size: float | int = Field(0.02, ge=0)
    seed: int = 42
    max_train_samples: int | None = Field(None, ge=1)
    max_eval_samples: int | None = Field(None, ge=1)


class TrainSpec(Strict):
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    lr: float = Field(2e-5, gt=0)
    micro_batch_size: int = Field(2, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(256, ge=8)
    packing: bool = True
    gradient_checkpointing: bool | Literal["offload"] = Field(
        False, description="offload: checkpointed layer inputs kept in CPU memory (axolotl engine)"
    )
    optim: Optim = Field(
        "adamw_torch_fused", description="the HF Trainer optimizer (TrainingArguments.optim); its default"
    )
    cut_cross_entropy: bool = Field(
        False, description="loss without stored logits (axolotl's CutCrossEntropyPlugin; axolotl engine)"
    )
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = Field(None, ge=1)
    save_step0: bool = Field(
        False, description="also save checkpoint-0, the model before training, so launch reeval scores it"
    )
    logging_steps: int = Field(10, ge=1)
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    seed: int = 42
    deterministic: bool = False


class ApiSpec(Strict):
    base_url: str
    key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)
    max_concurrency: int = Field(8, ge=1)


class EvalSpec(Strict):
    split: Literal["test", "validation"] = "test"
    batch_size: int = Field(32, ge=1)
    max_new_tokens: int = Field(256, ge=1)
    max_samples: int | None = Field(None, ge=1)
    level: Literal["entity", "token"] = "entity"
    engine: Literal["hf", "vllm", "openai"] = "hf"
    shots: int = Field(0, ge=0)
    confidence: Literal["none", "verbal", "logprobs", "auto"] = "auto"
    api: ApiSpec | None = None
    cache: bool = Field(True, description="classify: answers kept in $LAUNCH_HOME/cache, never asked twice")
    only: bool = Field(
        False,
        description="score model.name_or_path (a checkpoint) on the test split without training: how "
        "launch reeval runs a job kind that is its own evaluator (spacy, token_classification)",
    )
    results_dir: str | None = Field(
        None,
        description="where jobs.evaluate writes metrics.json and predictions.jsonl; default "
        "<run_dir>/results/<basename of model.name_or_path>/<recipe name>; reeval points it at the training "
        "run's results/<checkpoint>/<eval recipe name>",
    )


class WandbSpec(Strict):
    project: str = "recipe-launcher"
    entity: str | None = None
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    group: str | None = None
    tags: list[str] = Field(default_factory=list)


class TrackingSpec(Strict):
    wandb: WandbSpec = Field(default_factory=WandbSpec)


class ArtifactsSpec(Strict):
    uri: str | None = Field(None, description="local directory or s3://bucket/prefix mirroring runs")
    upload_checkpoints: bool = True


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
    _base: dict[str, Any] | None = PrivateAttr(None)  # the raw data before the overrides

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
        if "digest" not in self._base:  # validated once, when first asked (launch.json at submit)
            try:
                self._base["digest"] = validate(Recipe, self._base["data"], self._source).digest()
            except UserError:
                self._base["digest"] = None
        return self._base["digest"]


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
    recipe._base = None if base is None else {"data": base}
    return recipe


def read_resolved(run_dir: Path) -> Recipe:
    """The recipe a job reads from its run directory."""
    path = run_dir / "recipe.yaml"
    recipe = validate(Recipe, load_yaml(path), str(path))
    recipe._source = str(path)
    return recipe
