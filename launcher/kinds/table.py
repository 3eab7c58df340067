"""The one table of job kinds: what each `recipe.job` is, asked by every other module.

A new job kind is one module under `jobs/`, one row here, its recipes and its tests. Nothing else in
`launcher/` compares `recipe.job` to a string; it asks `kind_of(recipe)` instead.

Validation hooks take the recipe alone (no files, no scheduler) and raise ValueError with a message
that starts with the key at fault; `Recipe` turns it into the usual one-line error, so `launch recipe`
and `launch reeval` refuse the recipe before anything is queued.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from launcher.kinds.classify import check_classify, classify_rules
from launcher.kinds.spacy import check_pipeline, spacy_rules
from launcher.kinds.view import RecipeView

PlannerModel = Literal["training", "generation", "cpu", "none"]


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    trains: writes `checkpoints/checkpoint-<step>/` that `launch reeval` can evaluate.
    multi_node: may span several nodes (one launcher per node).
    torchrun: several GPUs (or DeepSpeed) start it under torchrun, one process per GPU.
    planner: the memory model `launch plan` uses (training, generation) or none to size.
    tasks: the recipe tasks it accepts.
    evaluator: the kind that scores one checkpoint of this kind in `launch reeval`.
    engines: the values of the recipe's top-level `engine` it runs with.
    methods: `method` (fft, lora, qlora) means something to it (shown in `launch recipes`).
    reads_data: it reads `data.dataset`, which must then suit the task.
    owns: recipe sections only this kind reads (a recipe of another kind may not set them).
    inputs: checks of what the machine must hold (an installed pipeline), raising UserError; run by
        `launch` before anything is created and by the job on the node, like `checks.check_inputs`.
    validate: rules that need nothing but the recipe.
    """

    name: str
    trains: bool
    multi_node: bool
    torchrun: bool
    planner: PlannerModel
    tasks: tuple[str, ...]
    evaluator: str | None = None
    engines: tuple[str, ...] = ("hf",)
    methods: bool = False
    reads_data: bool = True
    owns: tuple[str, ...] = ()
    inputs: Callable[[RecipeView], None] | None = None
    validate: Callable[[RecipeView], None] | None = None

    @property
    def module(self) -> str:
        return f"jobs.{self.name}"

    @property
    def implemented(self) -> bool:
        """Whether the job module exists in this version (checked without importing it)."""
        return importlib.util.find_spec(self.module) is not None


def _train_rules(recipe: RecipeView) -> None:
    q, t = recipe.quantization.mode, recipe.train
    if recipe.engine == "hf" and t.cut_cross_entropy:
        raise ValueError("train.cut_cross_entropy: true needs engine: axolotl (its CutCrossEntropyPlugin)")
    if recipe.method == "fft" and q != "none":
        raise ValueError(
            f"quantization: {q} weights cannot be fully fine-tuned (method: fft); "
            "use method: qlora with int4, or quantization: none"
        )


def _evaluate_rules(recipe: RecipeView) -> None:
    e = recipe.eval
    if e.engine == "openai":
        raise ValueError("eval.engine: openai is for the classify job; valid: hf, vllm")
    if e.engine == "vllm" and recipe.quantization.mode != "none":
        raise ValueError(
            f"eval.engine: vllm runs unquantized weights here; use engine hf for quantization: "
            f"{recipe.quantization.mode}"
        )
    if e.engine == "vllm" and recipe.method in ("lora", "qlora"):
        raise ValueError(f"eval.engine: vllm takes full checkpoints here, not method {recipe.method}; use hf")


def _token_classification_rules(recipe: RecipeView) -> None:
    if recipe.method != "fft":
        raise ValueError(
            f"method: token_classification fine-tunes every weight of the encoder (got {recipe.method}); "
            "valid: fft"
        )
    if recipe.quantization.mode != "none":
        raise ValueError(
            f"quantization: token_classification trains full-precision weights (got "
            f"{recipe.quantization.mode}); valid: none"
        )
    if recipe.train.packing:
        raise ValueError("train.packing: token_classification trains one sentence per row; valid: false")
    if recipe.eval.engine != "hf":
        raise ValueError(
            f"eval.engine: token_classification scores with hf (got {recipe.eval.engine}); valid: hf"
        )


KINDS: dict[str, JobKind] = {
    k.name: k
    for k in (
        JobKind("train", trains=True, multi_node=True, torchrun=True, planner="training",
                tasks=("ner",), evaluator="evaluate", engines=("hf", "axolotl"), methods=True,
                validate=_train_rules),
        JobKind("evaluate", trains=False, multi_node=False, torchrun=False, planner="generation",
                tasks=("ner",), validate=_evaluate_rules),
        JobKind("spacy", trains=True, multi_node=False, torchrun=False, planner="cpu",
                tasks=("ner",), evaluator="spacy", validate=spacy_rules,
                owns=("spacy",), inputs=check_pipeline),
        JobKind("token_classification", trains=True, multi_node=False, torchrun=True,
                planner="training", tasks=("ner",), evaluator="token_classification",
                validate=_token_classification_rules),
        JobKind("classify", trains=False, multi_node=False, torchrun=False, planner="none",
                tasks=("classification",), validate=classify_rules, owns=("classify",),
                inputs=check_classify),
        JobKind("smoke", trains=True, multi_node=False, torchrun=False, planner="none",
                tasks=("ner", "classification"), evaluator="evaluate", reads_data=False),
    )
}  # fmt: skip
JOB_NAMES: tuple[str, ...] = tuple(KINDS)


def kind_of(recipe: RecipeView) -> JobKind:
    return KINDS[recipe.job]


def implemented_jobs() -> list[str]:
    return [name for name, kind in KINDS.items() if kind.implemented]
