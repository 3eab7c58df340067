"""A lab's own job kinds (launcher/kinds/custom.py): a recipe's `job` naming a module of the user's
project or a name registered through an entry point, found and checked without running user code,
and its recipe keeping the generic sections plus `params` as written."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from launcher.config.recipe import BUILTIN_KEYS, read_resolved, recipe_from_data
from launcher.errors import UserError
from launcher.kinds.custom import check_job_module, find_job_module, project_packages
from launcher.kinds.table import KINDS, kind_of, registered_jobs

PROBE = "import sys\nfrom jobs.entry import read_run_params\nsys.exit(read_run_params(None, 'p') is None)\n"
BOOM = "raise RuntimeError('user code ran at submit')\n"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project (launch.toml), the working directory one folder below its root. Its package's
    __init__ raises: a check that imported it would fail."""
    root = _write(tmp_path / "lab", {
        "launch.toml": "", "my_lab/__init__.py": BOOM, "my_lab/probe.py": PROBE,
        "my_lab/jobs/__init__.py": BOOM, "my_lab/jobs/sweep/__main__.py": "from .run import main\nmain()\n",
        "my_lab/jobs/sweep/__init__.py": "", "my_lab/jobs/sweep/run.py": "ARG = '--run-dir'\n",
        "my_lab/jobs/nomain/__init__.py": "", "my_lab/jobs/blind.py": "print('no contract')\n",
    })  # fmt: skip
    (root / "notes").mkdir()
    monkeypatch.chdir(root / "notes")
    return root


def _recipe(data: dict[str, Any], overrides: list[str] | None = None) -> Any:
    return recipe_from_data({"name": "probe", **data}, Path("recipes/probe.yaml"), overrides)


# --- finding the module ----------------------------------------------------------------------------


def test_a_module_file_of_the_project_is_found_without_importing_it(project: Path) -> None:
    found = check_job_module("my_lab.probe")
    assert (found.package, found.main) == (project / "my_lab", project / "my_lab" / "probe.py")
    assert project_packages(_recipe({"job": "my_lab.probe"})) == [project / "my_lab"]


def test_a_package_with_main_is_found_and_its_own_files_carry_the_contract(project: Path) -> None:
    found = check_job_module("my_lab.jobs.sweep")
    assert found.main == project / "my_lab" / "jobs" / "sweep" / "__main__.py"
    assert {p.name for p in found.sources} == {"__init__.py", "__main__.py", "run.py"}


def test_builtin_kinds_need_no_project_package(project: Path) -> None:
    assert project_packages(_recipe({"job": "smoke", "model": {"name_or_path": "tiny://qwen2-gmb"}})) == []


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("other_lab.probe", "job: module 'other_lab.probe' not found: no package 'other_lab' in the project"),
        ("my_lab.nope", "job: module 'my_lab.nope' not found: no 'nope' in package 'my_lab' ("),
        ("my_lab.probe.deeper", "no 'deeper' in 'my_lab.probe' ("),
        ("my_lab.jobs.nomain", "job: 'my_lab.jobs.nomain' is a package without __main__.py ("),
        ("my_lab.jobs.blind", "blind.py does not take --run-dir (the launcher runs python -m my_lab.jobs"),
    ],
)
def test_a_module_that_cannot_run_as_a_job_is_refused_in_one_line(
    project: Path, module: str, message: str
) -> None:
    with pytest.raises(UserError) as err:
        check_job_module(module)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_namespace_spread_over_two_directories_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for half in ("a", "b"):
        _write(tmp_path / half, {f"ns_lab/{half}.py": "# --run-dir\n"})
        monkeypatch.syspath_prepend(str(tmp_path / half))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"package 'ns_lab' is spread over several directories"):
        find_job_module("ns_lab.a")


def test_a_top_level_module_is_no_package_to_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"solo.py": "# --run-dir\n"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"'solo' is a single module \(.*solo.py\), not a package"):
        find_job_module("solo.main")


def test_an_installed_package_on_sys_path_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _write(tmp_path / "site", {"inst_lab/__init__.py": BOOM, "inst_lab/probe.py": "# read_run\n"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    assert check_job_module("inst_lab.probe").package == site / "inst_lab"


# --- the recipe ------------------------------------------------------------------------------------


def test_a_custom_recipe_keeps_generic_sections_and_params_as_written(project: Path, tmp_path: Path) -> None:
    params = {"lr": 1e-5, "layers": [0, 12], "probe": {"kind": "linear", "bias": True}, "note": None}
    recipe = _recipe({"job": "my_lab.probe", "params": params, "resources": {"gpus_per_node": 0},
                      "env": {"OMP_NUM_THREADS": 2}}, ["params.probe.kind=mlp"])  # fmt: skip
    resolved = yaml.safe_load(recipe.to_yaml())
    generic = ["name", "description", "job", "resources", "tracking", "artifacts", "env", "params"]
    assert list(resolved) == generic
    assert resolved["params"] == {**params, "probe": {"kind": "mlp", "bias": True}}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "recipe.yaml").write_text(recipe.to_yaml())
    again = read_resolved(tmp_path / "run")
    assert again.params == resolved["params"] and again.digest() == recipe.digest()
    kind = kind_of(recipe)
    got = (kind.module, kind.custom, kind.trains, kind.multi_node, kind.torchrun, kind.planner)
    assert got == ("my_lab.probe", True, False, False, False, "none")
    assert (kind.evaluator, kind.reads_data, kind.implemented) == (None, False, True)


def test_a_custom_recipe_takes_assignments_like_any_other() -> None:
    """Assignment validates the whole recipe again (validate_assignment): the placeholder model and
    the defaults it holds are not taken for sections the user gave."""
    recipe = _recipe({"job": "my_lab.probe", "params": {"a": 1}})
    recipe.params = {"a": 2}
    recipe.description = "second try"
    assert yaml.safe_load(recipe.to_yaml())["params"] == {"a": 2}


def test_a_builtin_recipe_writes_no_params_key() -> None:
    recipe = _recipe({"job": "smoke", "model": {"name_or_path": "tiny://qwen2-gmb"}})
    assert "params" not in yaml.safe_load(recipe.to_yaml())


@pytest.mark.parametrize("key", BUILTIN_KEYS)
def test_a_builtin_kinds_section_is_refused_with_a_custom_job(key: str) -> None:
    value = {"model": {"name_or_path": "x"}, "method": "fft", "task": "ner", "engine": "hf"}.get(key, {})
    with pytest.raises(UserError) as err:
        _recipe({"job": "my_lab.probe", key: value})
    assert str(err.value) == (
        f"recipes/probe.yaml: {key}: is for the built-in job kinds, and job my_lab.probe is a module of "
        "your project; put its settings under params"
    )


def test_params_are_refused_with_a_builtin_job() -> None:
    with pytest.raises(UserError, match=r"^recipes/probe.yaml: params: settings given but job is smoke"):
        _recipe({"job": "smoke", "model": {"name_or_path": "tiny://qwen2-gmb"}, "params": {"a": 1}})


def test_params_refuse_control_characters() -> None:
    with pytest.raises(UserError, match=r"params: .*holds the control character '\\n'"):
        _recipe({"job": "my_lab.probe", "params": {"deep": ["ok", {"bad": "a\nb"}]}})


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ("trian", "'trian' is not a job kind (did you mean 'train'?); valid: train, evaluate, spacy, "),
        ("jobs.smoke", "'jobs.smoke' is not a job kind (jobs.* and launcher.* are the launcher's own"),
        ("launcher.cli", "(jobs.* and launcher.* are the launcher's own modules)"),
        ("my lab.probe", "'my lab.probe' is not a job kind"),
    ],
)
def test_an_unknown_job_is_one_line_naming_the_key_and_what_is_valid(job: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        _recipe({"job": job})
    text = str(err.value)
    assert text.startswith("recipes/probe.yaml: job: ") and message in text and "\n" not in text
    assert text.endswith("or a dotted module of your project (my_lab.jobs.probe)")


# --- entry points ----------------------------------------------------------------------------------


def test_a_name_registered_by_an_installed_distribution_is_a_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """importlib.metadata finds distributions by their *.dist-info directories on sys.path."""
    site = _write(tmp_path / "site", {
        "lab_jobs-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: lab-jobs\nVersion: 1.0\n",
        "lab_jobs-1.0.dist-info/entry_points.txt":
            "[recipe_launcher.jobs]\nprobe = inst_lab.jobs.probe\ntrain = inst_lab.train\n"
            "blurb = inst_lab.blurb:main\n\n[console_scripts]\nother = inst_lab.cli:main\n",
        "inst_lab/__init__.py": BOOM, "inst_lab/jobs/__init__.py": "", "inst_lab/jobs/probe.py": PROBE,
    })  # fmt: skip
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    assert registered_jobs() == {"probe": "inst_lab.jobs.probe", "blurb": "inst_lab.blurb"}
    recipe = _recipe({"job": "probe", "params": {"n": 3}})
    assert (kind_of(recipe).module, kind_of(recipe).name) == ("inst_lab.jobs.probe", "probe")
    assert project_packages(recipe) == [site / "inst_lab"]
    assert kind_of(_recipe({"job": "train", "model": {"name_or_path": "tiny://qwen2-gmb"}})) is KINDS["train"]
    with pytest.raises(UserError, match=r"valid: train, .*, smoke, blurb, probe, or a dotted module"):
        _recipe({"job": "prob3"})


class _EditableFinder:
    """What an editable install (setuptools' `__editable__` finder) adds to sys.meta_path: a
    top-level package mapped to its directory, with nothing on sys.path."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name, self.directory = name, directory

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(
            fullname, self.directory / "__init__.py", submodule_search_locations=[str(self.directory)]
        )


def test_a_package_an_editable_install_provides_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = _write(tmp_path / "elsewhere", {"hook_lab/__init__.py": BOOM, "hook_lab/probe.py": PROBE})
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, _EditableFinder("hook_lab", lab / "hook_lab")])
    monkeypatch.chdir(tmp_path)
    assert check_job_module("hook_lab.probe").main == lab / "hook_lab" / "probe.py"
