"""The recipe as the job-kind rules see it: a structural type, so that the kinds depend on the
recipe's sections (launcher/config/sections.py) and not on `Recipe`, which validates itself with them."""

from __future__ import annotations

from typing import Protocol

from launcher.config.kind_sections import ClassifySpec, SpacySpec
from launcher.config.sections import (
    DataSpec,
    DistributedSpec,
    EvalSpec,
    ModelSpec,
    QuantSpec,
    ResourcesSpec,
    TrainSpec,
)


class RecipeView(Protocol):
    """What a kind's rules read of a recipe (`launcher.config.recipe.Recipe` is one). `classify` is
    writable: the classify rules fill in its defaults."""

    classify: ClassifySpec | None

    @property
    def job(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def engine(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def model(self) -> ModelSpec: ...
    @property
    def quantization(self) -> QuantSpec: ...
    @property
    def distributed(self) -> DistributedSpec: ...
    @property
    def resources(self) -> ResourcesSpec: ...
    @property
    def data(self) -> DataSpec: ...
    @property
    def train(self) -> TrainSpec: ...
    @property
    def eval(self) -> EvalSpec: ...
    @property
    def spacy(self) -> SpacySpec | None: ...
