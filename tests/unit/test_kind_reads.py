"""The job-kind table's `reads` (launcher/kinds/reads.py): a generic key a recipe gives explicitly is
taken when its kind reads it and refused in one line when it does not (issue 26 item 24:
`--set eval.max_samples=40` on a classify recipe classified 500 items)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from jobs.data.gmb import GmbSplit, Sentence, eval_sentences
from launcher.config.kind_sections import ClassifySpec, SpacySpec
from launcher.config.recipe import Recipe, load_recipe, read_resolved, recipe_from_data
from launcher.errors import UserError
from launcher.kinds import reads
from launcher.kinds.table import KINDS, accepted_keys
from tests.support.paths import ROOT

BASES: dict[str, dict[str, Any]] = {
    "train": {"job": "train", "model": {"name_or_path": "tiny://qwen2-gmb"}},
    "evaluate": {"job": "evaluate", "model": {"name_or_path": "tiny://qwen2-gmb"}},
    "spacy": {"job": "spacy", "model": {"name_or_path": "en_core_web_sm"}, "resources": {"gpus_per_node": 0}},
    "token_classification": {"job": "token_classification", "model": {"name_or_path": "tiny://electra-gmb"},
                             "train": {"packing": False}},  # its rules hold packing to false
    "classify": {"job": "classify", "task": "classification", "model": {"name_or_path": "gpt-4o-mini"}},
    "smoke": {"job": "smoke", "model": {"name_or_path": "none"}},
}  # fmt: skip
SOURCE = Path("recipes/walk.yaml")
API_URL = "http://127.0.0.1:9/v1"


def _field(key: str) -> Any:
    """The pydantic field of a generic leaf key (the top-level field for `method`)."""
    parts = key.split(".")
    model: type[BaseModel] | None = reads.GENERIC[parts[0]]
    if model is None:
        return Recipe.model_fields[parts[0]]
    for part in parts[1:-1]:
        model = reads._section(model.model_fields[part].annotation)
        assert model is not None
    return model.model_fields[parts[-1]]


def _default(key: str) -> Any:
    """The schema default of a generic leaf key, as plain data."""
    value = _field(key).get_default(call_default_factory=True)
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _other(key: str) -> Any:
    """A value of the key's own type other than its default (a key written out at its default
    counts as not given: a resolved recipe launched again passes)."""
    field, default = _field(key), _default(key)
    typed = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation  # type: ignore[misc]
    adapter: TypeAdapter[Any] = TypeAdapter(typed)
    choices: list[Any] = [not default] if isinstance(default, bool) else []
    for arg in get_args(field.annotation):
        choices += [a for a in get_args(arg)] if get_origin(arg) is Literal else [arg]
    choices += list(get_args(field.annotation)) if get_origin(field.annotation) is Literal else []
    if isinstance(default, int | float) and not isinstance(default, bool):
        choices += [default + 1, default * 2, default / 2, 1]
    choices += [1, 0.5, 2, "x", ["x"], {"x": "y"}, True, "00:10:00"]
    for choice in choices:
        if isinstance(choice, type) or choice == default:
            continue
        try:
            return adapter.validate_python(choice)
        except ValidationError:
            continue
    raise AssertionError(f"no other value for {key}")


def _put(data: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    node = data
    for part in path:
        node = node.setdefault(part, {})
    node.setdefault(last, value)  # a value the base holds (token_classification's packing) stays


def _companions(key: str) -> list[str]:
    """Keys a key cannot be given without: a LoRA setting needs method lora, an API setting its URL."""
    if key.startswith("lora."):
        return ["method"]
    if key.startswith("eval.api.") and key != "eval.api.base_url":
        return ["eval.api.base_url"]
    if key == "distributed.zero_stage":
        return ["distributed.strategy"]
    if key.startswith("distributed.") and key != "distributed.strategy":
        return ["distributed.strategy", "distributed.zero_stage"]  # offload needs ZeRO-3
    return []


COMPANION_VALUES = {
    "method": "lora", "eval.api.base_url": API_URL, "distributed.strategy": "deepspeed",
    "distributed.zero_stage": 3,
}  # fmt: skip


def _given(job: str, key: str) -> tuple[dict[str, Any], list[str]]:
    """The kind's base recipe with `key` (and its companions) given explicitly; the keys given."""
    data = {"name": "walk", **copy.deepcopy(BASES[job])}
    given = [*_companions(key), key]
    for k in given:
        _put(data, k, COMPANION_VALUES[k] if k != key and k in COMPANION_VALUES else _other(k))
    return data, given


CASES = [(job, key) for job in BASES for key in reads.generic_keys() if key != "model.name_or_path"]


def test_the_walk_covers_every_kind_and_every_generic_key() -> None:
    assert set(BASES) == set(KINDS) == set(reads.READERS)
    assert len(reads.generic_keys()) == len(set(reads.generic_keys())) > 60
    for job, kind in KINDS.items():
        assert kind.reads == reads.reads(job)
        recipe_from_data({"name": "walk", **copy.deepcopy(BASES[job])}, SOURCE)  # the base itself is taken


@pytest.mark.parametrize(("job", "key"), CASES, ids=[f"{j}:{k}" for j, k in CASES])
def test_a_given_key_is_taken_if_its_kind_reads_it_else_refused_naming_it(job: str, key: str) -> None:
    data, given = _given(job, key)
    accepted = accepted_keys(KINDS[job])
    refused = [k for k in reads.generic_keys() if k in given and k not in accepted]
    if not refused:
        try:
            recipe = recipe_from_data(data, SOURCE)
        except UserError as held:  # read, but the kind's rules hold it to its default (spacy's method)
            text = str(held)
            assert "\n" not in text and "does not read it" not in text, text
            section = key.split(".")[0]
            assert text.startswith((f"{SOURCE}: {key}", f"{SOURCE}: {section}")), text
            return
        assert key in reads.explicit_keys(recipe)
        return
    with pytest.raises(UserError) as err:
        recipe_from_data(data, SOURCE)
    text = str(err.value)
    assert "\n" not in text
    if "does not read it" not in text:  # a LoRA setting on spacy: its rules refuse the method it needs first
        assert any(text.startswith(f"{SOURCE}: {k}: ") for k in _companions(key)), text
        return
    assert text.startswith(f"{SOURCE}: {refused[0]}: job {job} does not read it"), text


def test_every_key_the_table_lists_is_named_by_the_file_said_to_read_it() -> None:
    generic = set(reads.generic_keys())
    for job, readers in reads.READERS.items():
        for key, reader in readers.items():
            assert key in generic, f"{job}: {key} is no generic key"
            source = (ROOT / reader).read_text()
            leaf = key.rsplit(".", 1)[-1]
            assert re.search(rf"\.{leaf}\b", source), f"{job}: {key}: {reader} does not read .{leaf}"


def test_every_hint_names_a_key_of_the_kinds_own_section_for_a_key_it_does_not_read() -> None:
    own = {"classify": ClassifySpec, "spacy": SpacySpec}
    for job, hints in reads.INSTEAD.items():
        for key, hint in hints.items():
            assert key not in accepted_keys(KINDS[job])
            for named in re.findall(rf"{job}\.(\w+)", hint):
                assert named in own[job].model_fields, hint


def test_the_generic_sections_and_the_keys_every_kind_takes_cover_the_recipe() -> None:
    owned = {section for kind in KINDS.values() for section in kind.owns}
    assert set(Recipe.model_fields) == {*reads.GENERIC, *reads.ALWAYS, *owned, "params"}


def test_the_reported_case_names_the_key_classify_reads_instead() -> None:
    with pytest.raises(UserError) as err:
        load_recipe("agnews_zero_shot", ["eval.max_samples=40"])
    assert str(err.value) == "--set eval.max_samples: job classify does not read it; use classify.sample"
    assert load_recipe("agnews_zero_shot", ["classify.sample=40"]).classify.sample == 40  # type: ignore[union-attr]


def test_a_recipe_file_is_blamed_and_a_section_names_what_the_kind_reads_of_it(tmp_path: Path) -> None:
    path = tmp_path / "cls.yaml"
    path.write_text("name: cls\njob: classify\ntask: classification\nmodel: {name_or_path: m}\n"
                    "eval: {split: validation}\n")  # fmt: skip
    with pytest.raises(UserError) as err:
        load_recipe(str(path))
    assert str(err.value) == (
        f"{path}: eval.split: job classify does not read it (of eval it reads only max_new_tokens, engine, "
        "shots, confidence, api.*, cache, results_dir)"
    )
    with pytest.raises(UserError, match=r"^--set train: train.lr: job classify does not read it \(it reads "
                       r"nothing under train\)$"):  # fmt: skip
        load_recipe("agnews_zero_shot", ["train={lr: 1.0e-4}"])
    with pytest.raises(UserError, match=r"^--set method: job evaluate does not read it$"):
        load_recipe("tiny_ner_eval", ["method=lora"])
    assert load_recipe("tiny_ner_eval", ["method=fft"]).method == "fft"  # its default: changes nothing


@pytest.mark.parametrize(
    ("recipe", "key", "taken"),
    [
        ("tiny_ner", "eval.only=true", False),  # train trains whatever eval.only says
        ("tiny_ner", "eval.shots=2", False),
        ("tiny_ner", "eval.max_samples=9", True),  # its checkpoints' evaluation reads it
        ("tiny_ner_eval", "data.max_train_samples=9", False),
        ("tiny_ner_eval", "distributed.strategy=ddp", False),
        ("electra_base", "train.save_step0=true", False),
        ("electra_base", "model.attn_implementation=sdpa", False),
        ("spacy_sm", "eval.batch_size=8", False),
        ("spacy_sm", "train.save_steps=8", False),
        ("spacy_sm", "eval.split=validation", True),
        ("tiny_smoke", "train.lr=1e-5", True),  # it rehearses train: a sweep of lr runs without a model
        ("tiny_smoke", "eval.cache=false", False),
        ("agnews_zero_shot", "data.seed=1", False),
        ("agnews_zero_shot", "eval.api.timeout_s=5", True),
    ],
)
def test_siblings_of_the_reported_case(recipe: str, key: str, taken: bool) -> None:
    if taken:
        load_recipe(recipe, [key])
        return
    with pytest.raises(UserError, match=rf"^--set {re.escape(key.split('=')[0])}: job \w+ does not read it"):
        load_recipe(recipe, [key])


def test_a_grid_point_is_checked_like_a_set() -> None:
    from launcher.loop.sweep import prepare

    with pytest.raises(UserError, match=r"^sweep point 0 \(eval.max_samples=4\): --set eval.max_samples: job "
                       r"classify does not read it; use classify.sample$"):  # fmt: skip
        prepare("agnews_zero_shot", "local", grid=["eval.max_samples=4,5"])


def test_every_recipe_loads_and_its_resolved_recipe_is_read_back(tmp_path: Path) -> None:
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        recipe = load_recipe(path.stem)
        run_dir = tmp_path / path.stem
        run_dir.mkdir()
        (run_dir / "recipe.yaml").write_text(recipe.to_yaml())
        assert read_resolved(run_dir).digest() == recipe.digest()  # every key explicit: not asked


def test_a_lab_kind_is_not_asked() -> None:
    recipe = recipe_from_data({"name": "p", "job": "my_lab.probe", "params": {"a": 1}}, SOURCE)
    assert reads.explicit_keys(recipe) == ["model.name_or_path"] and KINDS.get(recipe.job) is None


def test_the_final_score_of_a_training_takes_eval_split_like_the_eval_only_scoring() -> None:
    """jobs/spacy scores its last checkpoint with `eval_sentences(recipe, split)` (it took the test
    split whatever eval.split said, and wrote `split: validation` beside test scores)."""
    split = GmbSplit(
        train=[Sentence(i, ["w"], ["O"]) for i in range(3)],
        validation=[Sentence(i, ["v"], ["O"]) for i in range(10, 14)],
        test=[Sentence(i, ["t"], ["O"]) for i in range(20, 26)],
    )
    pick = lambda *sets: [s.id for s in eval_sentences(load_recipe("spacy_sm", list(sets)), split)]  # noqa: E731
    assert pick() == [20, 21, 22, 23, 24, 25]
    assert pick("eval.split=validation") == [10, 11, 12, 13]
    assert pick("eval.split=validation", "eval.max_samples=2") == [10, 11]
    assert pick("data.max_eval_samples=3") == [20, 21, 22]


def test_a_reeval_set_is_checked_against_the_eval_recipe_it_makes() -> None:
    """`launch reeval RUN --set` builds its eval recipe from the run's resolved recipe (every key
    explicit): only the keys the overrides set are asked."""
    from launcher.runs.results import default_eval_recipe, self_eval_recipe

    assert default_eval_recipe(load_recipe("tiny_ner"), ["eval.max_samples=3"]).eval.max_samples == 3
    with pytest.raises(UserError, match=r"^--set eval.shots: job evaluate does not read it \(of eval"):
        default_eval_recipe(load_recipe("tiny_ner"), ["eval.shots=2"])
    with pytest.raises(UserError, match=r"^--set eval: eval.cache: job evaluate does not read it"):
        default_eval_recipe(load_recipe("tiny_ner"), ["eval={cache: false}"])
    assert self_eval_recipe(load_recipe("spacy_sm"), ["eval.max_samples=5"]).eval.only
    with pytest.raises(UserError, match=r"^--set eval.batch_size: job spacy does not read it"):
        self_eval_recipe(load_recipe("spacy_sm"), ["eval.batch_size=8"])


def test_a_resolved_recipe_saved_and_launched_again_is_taken(tmp_path: Path) -> None:
    """`launch show RUN > again.yaml; launch recipe again.yaml`: every key is written out, at the
    value the kind ran with, so none counts as given against the kind."""
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        again = tmp_path / f"{path.stem}.yaml"
        again.write_text(load_recipe(str(path)).to_yaml())
        assert load_recipe(str(again)).digest() == load_recipe(str(path)).digest(), path.name
