"""Which generic recipe keys each built-in job kind reads, and the file that reads each one.

The generic sections (`GENERIC`: model, method, lora, quantization, distributed, data, train, eval)
are shared by every kind, but no kind reads all of them: classify draws `classify.sample` items, not
`eval.max_samples`. A key a recipe gives explicitly (in its file, by `--set` or by `--grid`) that its
kind does not read is refused when the recipe loads (launcher/config/recipe.py), never ignored.
`ALWAYS` keys are read by the launcher for every kind; `task` and `engine` are held to the kind's own
`tasks` and `engines` by the table. The kinds' own sections (`spacy:`, `classify:`) are the table's
`owns`.

A key counts as read when something changes with its value for that kind: the job's own code, the
shared helpers it calls (jobs/modeling.py, jobs/trainer.py, jobs/data/gmb.py, jobs/results.py), the
launcher on its behalf (the planner, the rendered deepspeed.json and axolotl.yaml, launcher/runs/results.py),
the evaluator that scores its checkpoints with its own settings (`launch reeval`, `--then reeval`
without an eval recipe: launcher/runs/results.py `default_eval_recipe`), or the kind's rules when
they refuse every value but the ones it runs with (token_classification's `method: fft`). Each key
is listed with that file; tests/unit/test_kind_reads.py checks that the file names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel

from launcher.config.sections import (
    DataSpec,
    DistributedSpec,
    EvalSpec,
    LoraSpec,
    ModelSpec,
    QuantSpec,
    TrainSpec,
)

ALWAYS = ("name", "description", "job", "task", "engine", "resources", "tracking", "artifacts", "env",
          "sweep")  # fmt: skip
"""Top-level keys every built-in kind takes (the launcher reads them, or the table checks them)."""
GENERIC: dict[str, type[BaseModel] | None] = {
    "model": ModelSpec, "method": None, "lora": LoraSpec, "quantization": QuantSpec,
    "distributed": DistributedSpec, "data": DataSpec, "train": TrainSpec, "eval": EvalSpec,
}  # fmt: skip
"""The generic sections (None: a plain top-level key) whose keys a kind may or may not read."""


def _leaves(model: type[BaseModel], prefix: str) -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        sub = _section(field.annotation)
        out += _leaves(sub, f"{prefix}{name}.") if sub is not None else [f"{prefix}{name}"]
    return out


def _section(annotation: object) -> type[BaseModel] | None:
    """The section class of `X` or `X | None` (eval.api), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def generic_keys() -> list[str]:
    """Every leaf key of the generic sections in schema order: `model.name_or_path`, ..., `eval.api.*`."""
    out: list[str] = []
    for name, model in GENERIC.items():
        out += _leaves(model, f"{name}.") if model is not None else [name]
    return out


def explicit_keys(recipe: BaseModel) -> list[str]:
    """The generic keys `recipe` was given explicitly with a value other than their default
    (pydantic's fields_set, section by section), in schema order. A key written out at its default
    changes nothing, so a resolved recipe (`launch show RUN` saved and launched again) passes. A
    section given as null where it has a default is its own key (`lora`)."""
    return _given(recipe, "", list(GENERIC))


def _given(value: BaseModel, prefix: str, names: list[str]) -> list[str]:
    out: list[str] = []
    fields = type(value).model_fields
    for name in names:
        if name not in value.model_fields_set:
            continue
        given, default = getattr(value, name), fields[name].get_default(call_default_factory=True)
        if given == default:
            continue
        if isinstance(given, BaseModel):
            out += _given(given, f"{prefix}{name}.", list(type(given).model_fields))
        else:
            out.append(f"{prefix}{name}")
    return out


def refusal(job: str, key: str, accepted: Iterable[str]) -> str | None:
    """Why a kind that takes the keys `accepted` refuses `key` given explicitly (None: it takes it).
    A section given as null (`lora`) is taken when the kind reads some key under it."""
    taken = set(accepted)
    if key in taken or any(k.startswith(key + ".") for k in taken):
        return None
    hint = INSTEAD.get(job, {}).get(key)
    if hint:
        return f"job {job} does not read it; use {hint}"
    section = key.rsplit(".", 1)[0] if "." in key else None
    if section is None:
        return f"job {job} does not read it"
    leaves = [k.removeprefix(section + ".") for k in generic_keys() if k.startswith(section + ".")]
    under = [k for k in leaves if f"{section}.{k}" in taken]
    if not under:
        return f"job {job} does not read it (it reads nothing under {section})"
    shown: list[str] = []
    for k in under:  # a sub-section read whole is shown once: api.*
        head = k.split(".")[0]
        whole = "." in k and all(u in under for u in leaves if u.startswith(head + "."))
        item = f"{head}.*" if whole else k
        if item not in shown:
            shown.append(item)
    return f"job {job} does not read it (of {section} it reads only {', '.join(shown)})"


# --- what each kind reads, and where ----------------------------------------------------------------

Readers = Mapping[str, str]
"""key -> the file (from the repository root) that reads it for the kind."""

MODELING = "jobs/modeling.py"
GMB = "jobs/data/gmb.py"
TRAINER = "jobs/trainer.py"
PLANNER_ARCH = "launcher/plan/architecture.py"
CHECKS = "launcher/config/checks.py"  # data.dataset: the task's dataset (gmb for ner), checked at launch
RESULTS_DIR = "launcher/runs/results.py"
DEEPSPEED = "launcher/kinds/deepspeed.py"

_HF_MODEL: Readers = {
    "model.name_or_path": MODELING, "model.config": PLANNER_ARCH, "model.revision": MODELING,
    "model.tokenizer": MODELING, "model.trust_remote_code": MODELING, "model.attn_implementation": MODELING,
    "model.model_type": MODELING, "model.linearized_experts": MODELING, "model.special_tokens": MODELING,
}  # fmt: skip
_QUANT: Readers = {f"quantization.{k}": MODELING for k in ("mode", "quant_type", "double_quant",
                                                             "compute_dtype")}  # fmt: skip
_SPLIT: Readers = {"data.dataset": CHECKS, **{f"data.{k}": GMB for k in ("path", "test_size", "seed",
                                                                         "validation_size")}}  # fmt: skip
_DEEPSPEED: Readers = {
    "distributed.strategy": TRAINER,
    **{f"distributed.{k}": DEEPSPEED for k in ("zero_stage", "offload_optimizer", "offload_params")},
}
_TRAINER: Readers = {f"train.{k}": TRAINER for k in (
    "epochs", "max_steps", "lr", "micro_batch_size", "grad_accum", "gradient_checkpointing", "optim",
    "save_steps", "save_total_limit", "logging_steps", "warmup_ratio", "weight_decay", "lr_scheduler", "seed",
    "deterministic",
)}  # fmt: skip
_SCORED: Readers = {"eval.split": GMB, "eval.max_samples": GMB, "data.max_eval_samples": GMB,
                    "eval.level": "jobs/results.py", "eval.results_dir": RESULTS_DIR}  # fmt: skip

EVALUATE: Readers = {
    **_HF_MODEL, "model.dtype": "jobs/engines/hf.py", **_QUANT, **_SPLIT, **_SCORED,
    "train.max_length": "launcher/plan/workload.py",  # the planner's prompt length for generation
    "eval.batch_size": "jobs/evaluate/job.py", "eval.max_new_tokens": "jobs/evaluate/job.py",
    "eval.engine": "jobs/evaluate/job.py",
}  # fmt: skip

_TRAIN_OWN: Readers = {
    **_HF_MODEL, "model.dtype": "jobs/train/job.py", "model.chat_template": "launcher/kinds/axolotl.py",
    "method": MODELING,
    **{f"lora.{k}": MODELING for k in ("r", "alpha", "dropout", "target_modules", "bias")},
    **_QUANT, **_DEEPSPEED, **_SPLIT, "data.max_train_samples": "jobs/data/ner.py", **_TRAINER,
    "train.max_length": "jobs/train/job.py", "train.packing": "jobs/train/job.py",
    "train.save_step0": "jobs/train/job.py", "train.cut_cross_entropy": "launcher/kinds/axolotl.py",
}  # fmt: skip
TRAIN: Readers = {
    **_TRAIN_OWN,
    # its checkpoints' evaluation takes the training recipe's model, data and eval settings
    **{k: v for k, v in EVALUATE.items() if k not in _TRAIN_OWN and k != "eval.results_dir"},
}

TOKEN_CLASSIFICATION: Readers = {
    **{f"model.{k}": "jobs/token_classification/job.py" for k in (
        "name_or_path", "dtype", "revision", "tokenizer", "trust_remote_code")},
    "model.config": PLANNER_ARCH, "method": "launcher/kinds/table.py",
    "quantization.mode": "launcher/kinds/table.py", **_DEEPSPEED, **_SPLIT, **_SCORED,
    "data.max_train_samples": "jobs/token_classification/job.py", **_TRAINER,
    "train.max_length": "jobs/token_classification/job.py", "train.packing": TRAINER,
    "eval.batch_size": "jobs/token_classification/job.py", "eval.only": "jobs/token_classification/job.py",
    "eval.engine": "launcher/kinds/table.py",
}  # fmt: skip

_SPACY_RULES = "launcher/kinds/spacy.py"  # settings held to the CPU values spaCy runs with
SPACY: Readers = {
    "model.name_or_path": "jobs/spacy/job.py", "model.dtype": _SPACY_RULES, "method": _SPACY_RULES,
    "quantization.mode": _SPACY_RULES, "distributed.strategy": _SPACY_RULES, **_SPLIT, **_SCORED,
    **{f"data.{k}": "jobs/spacy/job.py" for k in ("max_train_samples", "max_eval_samples")},
    **{f"train.{k}": "jobs/spacy/job.py" for k in ("epochs", "max_steps", "lr", "seed", "save_total_limit")},
    "train.gradient_checkpointing": _SPACY_RULES, "eval.only": "jobs/spacy/job.py",
    "eval.engine": _SPACY_RULES,
}  # fmt: skip

_CLASSIFY_JOB = "jobs/classify/job.py"
CLASSIFY: Readers = {
    "model.name_or_path": _CLASSIFY_JOB, "data.dataset": "jobs/data/classification.py",
    "data.path": "jobs/data/classification.py",
    **{f"eval.{k}": _CLASSIFY_JOB for k in ("max_new_tokens", "engine", "shots", "confidence", "cache")},
    **{f"eval.api.{k}": _CLASSIFY_JOB for k in ("base_url", "key_env", "timeout_s", "max_concurrency")},
    "eval.results_dir": RESULTS_DIR,
}  # fmt: skip

SMOKE: Readers = {"train.max_steps": "jobs/smoke/job.py", "train.save_steps": "jobs/smoke/job.py"}

READERS: dict[str, Readers] = {
    "train": TRAIN, "evaluate": EVALUATE, "spacy": SPACY, "token_classification": TOKEN_CLASSIFICATION,
    "classify": CLASSIFY, "smoke": SMOKE,
}  # fmt: skip

INSTEAD: dict[str, dict[str, str]] = {
    "classify": {"eval.max_samples": "classify.sample", "data.max_eval_samples": "classify.sample",
                 "data.seed": "classify.seed"},
    "spacy": {"train.micro_batch_size": "spacy.batch_start and spacy.batch_stop"},
}  # fmt: skip
"""The key a kind reads in place of a generic key it does not (named in the refusal)."""


def reads(job: str) -> frozenset[str]:
    """The generic keys the built-in kind `job` reads."""
    return frozenset(READERS[job])
