"""The one table of job kinds: what each `recipe.job` is, asked by every other module.

A new job kind is one module under `jobs/`, one row here, its recipes and its tests. Nothing else in
`launcher/` compares `recipe.job` to a string; it asks `kind_of(recipe)` instead.

A lab's own job kind needs no row: `job` may name a dotted module of the user's project
(`my_lab.jobs.probe`) or a name an installed distribution registers in the entry point group
`recipe_launcher.jobs` (`probe = "my_lab.jobs.probe"`). `kind_of` gives it a plain kind (`custom_kind`);
finding its file and checking it is launcher/kinds/custom.py's part, at submit.

Validation hooks take the recipe alone (no files, no scheduler) and raise ValueError with a message
that starts with the key at fault; `Recipe` turns it into the usual one-line error, so `launch recipe`
and `launch reeval` refuse the recipe before anything is queued.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from launcher.kinds import reads
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
    reads: the keys of the generic sections it reads (launcher/kinds/reads.py says which file reads
        each); one it does not read is refused when a recipe gives it (`accepted_keys`).
    rehearses: the kind it stands in for (smoke for train): it takes that kind's keys as well, so a
        sweep or chain of it is rehearsed without a model, though it reads only its own.
    inputs: checks of what the machine must hold (an installed pipeline), raising UserError; run by
        `launch` before anything is created and by the job on the node, like `checks.check_inputs`.
    validate: rules that need nothing but the recipe.
    entry: the module of a lab's own job kind (None: the built-in `jobs.<name>`).
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
    reads: frozenset[str] = frozenset()
    rehearses: str | None = None
    inputs: Callable[[RecipeView], None] | None = None
    validate: Callable[[RecipeView], None] | None = None
    entry: str | None = None

    @property
    def module(self) -> str:
        return self.entry or f"jobs.{self.name}"

    @property
    def custom(self) -> bool:
        """A lab's own job kind (a module of the user's project), not a row of this table."""
        return self.entry is not None

    @property
    def implemented(self) -> bool:
        """Whether the job module exists in this version (checked without importing it). A lab's own
        kind counts as implemented here; `launch` finds and checks its module at submit."""
        return self.custom or importlib.util.find_spec(self.module) is not None


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
        raise ValueError("eval.engine: openai is for the classify job; valid: hf, ct2, vllm")
    if e.engine == "vllm" and recipe.quantization.mode != "none":
        raise ValueError(
            f"eval.engine: vllm runs unquantized weights here; use engine hf for quantization: "
            f"{recipe.quantization.mode}"
        )
    if e.engine == "ct2" and recipe.quantization.mode == "int4":
        raise ValueError("eval.engine: ct2 runs fp32, fp16, bf16 or int8 weights, not int4; use engine hf")
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
                reads=reads.reads("train"), validate=_train_rules),
        JobKind("evaluate", trains=False, multi_node=False, torchrun=False, planner="generation",
                tasks=("ner",), reads=reads.reads("evaluate"), validate=_evaluate_rules),
        JobKind("spacy", trains=True, multi_node=False, torchrun=False, planner="cpu",
                tasks=("ner",), evaluator="spacy", validate=spacy_rules, reads=reads.reads("spacy"),
                owns=("spacy",), inputs=check_pipeline),
        JobKind("token_classification", trains=True, multi_node=True, torchrun=True,
                planner="training", tasks=("ner",), evaluator="token_classification",
                reads=reads.reads("token_classification"), validate=_token_classification_rules),
        JobKind("classify", trains=False, multi_node=False, torchrun=False, planner="none",
                tasks=("classification",), validate=classify_rules, owns=("classify",),
                reads=reads.reads("classify"), inputs=check_classify),
        JobKind("smoke", trains=True, multi_node=False, torchrun=False, planner="none",
                tasks=("ner", "classification"), evaluator="evaluate", reads_data=False,
                reads=reads.reads("smoke"), rehearses="train"),
    )
}  # fmt: skip
TASKS: tuple[str, ...] = ("ner", "classification")

ENTRY_POINTS = "recipe_launcher.jobs"
"""The entry point group where an installed distribution registers job names: `probe = "my_lab.probe"`."""
LAUNCHER_PACKAGES = ("jobs", "launcher")
"""The launcher's own packages: a dotted `job` inside them is not a lab's module."""
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def registered_jobs() -> dict[str, str]:
    """Job names registered through the entry point group ENTRY_POINTS by the distributions on
    sys.path, each with its module; read from their metadata, nothing imported. A name of a built-in
    kind stays the built-in's, a value that is not a dotted module of a lab's package is passed over,
    and of two registrations of one name the first on sys.path wins."""
    return dict(_registered(tuple(sys.path)))


@lru_cache(maxsize=8)
def _registered(search_path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from importlib.metadata import entry_points  # only when a recipe names no built-in kind

    found: dict[str, str] = {}
    for point in entry_points(group=ENTRY_POINTS):
        if point.name not in KINDS and dotted_module(point.module):
            found.setdefault(point.name, point.module)
    return tuple(found.items())


def dotted_module(job: str) -> bool:
    """`job` reads as a dotted module of the user's project (`my_lab.jobs.probe`), not the launcher's."""
    return bool(_DOTTED.fullmatch(job)) and job.split(".", 1)[0] not in LAUNCHER_PACKAGES


def custom_module(job: str) -> str | None:
    """The module a lab's own job kind runs (`python -m MODULE --run-dir DIR`); None for a built-in
    kind or a name that is neither a dotted module nor registered."""
    if job in KINDS:
        return None
    if dotted_module(job):
        return job
    return registered_jobs().get(job)


def custom_kind(name: str, module: str) -> JobKind:
    """A lab's own job kind: one process, no checkpoints to re-evaluate, nothing for the planner to size."""
    return JobKind(name, trains=False, multi_node=False, torchrun=False, planner="none", tasks=TASKS,
                   reads_data=False, entry=module)  # fmt: skip


def kind_named(job: str) -> JobKind | None:
    """The kind a recipe's `job` names: a row of the table, a lab's own kind, or None."""
    kind = KINDS.get(job)
    if kind is not None:
        return kind
    module = custom_module(job)
    return None if module is None else custom_kind(job, module)


def kind_of(recipe: RecipeView) -> JobKind:
    """The kind of a validated recipe (a KeyError for a `job` that names none)."""
    kind = kind_named(recipe.job)
    if kind is None:
        raise KeyError(recipe.job)
    return kind


def accepted_keys(kind: JobKind) -> frozenset[str]:
    """The generic keys a recipe of `kind` may give: those it reads, and those of the kind it rehearses."""
    rehearsed = KINDS[kind.rehearses].reads if kind.rehearses else frozenset()
    return kind.reads | rehearsed


def unread_key(kind: JobKind, given: list[str]) -> tuple[str, str] | None:
    """(the first key of `given` that `kind` does not take, why), or None. A lab's own kind is not
    asked: its recipe may not give the built-in kinds' sections at all."""
    if kind.custom:
        return None
    accepted = accepted_keys(kind)
    for key in given:
        why = reads.refusal(kind.name, key, accepted)
        if why is not None:
            return key, why
    return None


def implemented_jobs() -> list[str]:
    return [name for name, kind in KINDS.items() if kind.implemented]
