"""The user's project (launcher/paths.py, launcher/config/project.py): the launch.toml marker found
from the working directory upward, its settings, the search order project -> $LAUNCH_HOME ->
built-ins with shadowing, and `launch init`'s files on this machine (the local profile; the Slurm
one is tests/unit/test_slurm_discover.py and tests/integration/slurm/test_init.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from launcher import paths
from launcher.config.cluster import ClusterProfile, GpuSpec, check_fit, load_cluster
from launcher.config.project import init_project, local_profile
from launcher.config.recipe import load_recipe
from launcher.config.schema import validate
from launcher.errors import UserError

TINY = "name: tiny_smoke\njob: smoke\ntask: ner\nmodel: {name_or_path: none}\n"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$HOME at tmp/home/me, $LAUNCH_HOME inside it, no $LAUNCH_RUNS."""
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LAUNCH_HOME", str(home / ".launch"))
    monkeypatch.delenv("LAUNCH_RUNS", raising=False)
    return tmp_path


def test_the_marker_is_found_upward_but_not_above_home(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = world / "home" / "me"
    deep = home / "lab" / "exp" / "a"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert paths.find_project_root() is None
    (world / "home" / paths.MARKER).write_text("")  # $HOME's parent: never searched
    assert paths.find_project_root() is None
    (home / paths.MARKER).write_text("")
    assert paths.find_project_root() == home.resolve()
    (home / "lab" / paths.MARKER).write_text("[project]\nname = 'lab'\n")
    assert paths.find_project_root() == (home / "lab").resolve()
    project = paths.current_project()
    assert project is not None and project.name == "lab" and project.runs is None


@pytest.mark.parametrize(
    "text,message",
    [
        ("[project]\nnmae = 'x'\n", "project.nmae: unknown key (did you mean 'name'?); valid: name, runs"),
        ("[runs]\n", "unknown table or key 'runs'; valid: [project]"),
        ("[project]\nruns = 3\n", "project.runs: 3 is not a text"),
        ("[project\n", "not valid TOML"),
        ("project = 'x'\n", "project must be a table"),
    ],
)
def test_a_bad_launch_toml_is_one_line(
    world: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    (world / paths.MARKER).write_text(text)
    monkeypatch.chdir(world)
    with pytest.raises(UserError, match=re.escape(message)):
        paths.catalog("recipes")


def test_the_runs_root(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = world / "proj" / "src"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert paths.runs_root() == (sub / "runs").resolve()  # no project: ./runs
    (world / "proj" / paths.MARKER).write_text("[project]\nruns = 'out/runs'\n")
    assert paths.runs_root() == (world / "proj" / "out" / "runs").resolve()
    monkeypatch.setenv("LAUNCH_RUNS", str(world / "elsewhere"))
    assert paths.runs_root() == (world / "elsewhere").resolve()


def test_project_then_home_then_built_in(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = world / "proj"
    (proj / "recipes").mkdir(parents=True)
    (proj / paths.MARKER).write_text("")
    (proj / "recipes" / "tiny_smoke.yaml").write_text(TINY)
    (proj / "recipes" / "mine.yaml").write_text(TINY.replace("tiny_smoke", "mine"))
    home_recipes = world / "home" / "me" / ".launch" / "recipes"
    home_recipes.mkdir(parents=True)
    (home_recipes / "mine.yaml").write_text(TINY.replace("tiny_smoke", "mine"))
    (home_recipes / "ours.yaml").write_text(TINY.replace("tiny_smoke", "ours"))
    monkeypatch.chdir(proj)
    found = paths.entries("recipes")
    builtin = paths.builtin_dir("recipes")
    assert found["tiny_smoke"].origin == "project"
    assert found["tiny_smoke"].shadows == builtin / "tiny_smoke.yaml"
    assert found["mine"].origin == "project" and found["mine"].shadows == home_recipes / "mine.yaml"
    assert found["ours"].origin == "home" and found["ours"].shadows is None
    assert found["tiny_ner"].origin == "built-in"
    assert paths.resolve("recipes", "tiny_smoke") == proj.resolve() / "recipes" / "tiny_smoke.yaml"
    assert [d.origin for d in paths.search_dirs("clusters")] == ["project", "home", "built-in"]
    with pytest.raises(UserError) as err:
        paths.resolve("clusters", "nope")
    assert f"looked in {proj.resolve()}/cluster (project); {world}/home/me/.launch/clusters (home); " in str(
        err.value
    )
    assert f"{paths.builtin_dir('clusters')} (built-in); valid: " in str(err.value)


def test_the_built_ins_are_the_repositorys_recipes_and_profiles() -> None:
    root = Path(__file__).resolve().parents[2]
    for kind, folder in (("recipes", "recipes"), ("clusters", "cluster")):
        shipped = {p.name: p.read_bytes() for p in paths.builtin_dir(kind).glob("*.yaml")}
        assert shipped == {p.name: p.read_bytes() for p in (root / folder).glob("*.yaml")}
        assert shipped


def test_init_writes_a_project_that_runs_here(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world)
    done = init_project(world / "lab", backend="local")
    lab = (world / "lab").absolute()
    assert done.written == [
        lab / "launch.toml",
        lab / "recipes" / "example.yaml",
        lab / "cluster" / "local.yaml",
    ]
    assert done.profile.next_command == "launch recipe example --cluster local --follow"
    monkeypatch.chdir(lab)
    project = paths.current_project()
    assert project is not None and (project.name, project.runs) == ("lab", "runs")
    profile = load_cluster("local")
    assert profile.source == str(lab / "cluster" / "local.yaml") and profile.backend == "local"
    assert profile.node is not None and profile.node.cpus >= 1
    recipe = load_recipe("example")
    assert recipe.name == "example" and recipe.source == str(lab / "recipes" / "example.yaml")
    check_fit(recipe, profile)
    assert paths.entries("clusters")["local"].shadows == paths.builtin_dir("clusters") / "local.yaml"
    assert yaml.safe_load((lab / "recipes" / "example.yaml").read_text())["job"] == "smoke"


def test_init_overwrites_nothing_without_force(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world)
    lab = (world / "lab").absolute()
    init_project(lab, backend="local")
    (lab / "recipes" / "example.yaml").write_text("mine\n")
    with pytest.raises(UserError, match=f"{lab}/cluster/local.yaml: exists; .* without --force"):
        init_project(lab, backend="local")
    again = init_project(lab, name="box", backend="local")  # a project already: only the profile
    assert (
        again.written == [lab / "cluster" / "box.yaml"]
        and (lab / "recipes" / "example.yaml").read_text() == "mine\n"
    )
    forced = init_project(lab, backend="local", force=True)
    assert len(forced.written) == 3 and "name: example" in (lab / "recipes" / "example.yaml").read_text()
    fresh = world / "fresh"
    (fresh / "cluster").mkdir(parents=True)
    (fresh / "cluster" / "local.yaml").write_text("kept\n")
    with pytest.raises(UserError, match=r"local\.yaml: exists"):
        init_project(fresh, backend="local")
    assert not (fresh / "launch.toml").exists(), "nothing written"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"backend": "ray"}, "--backend: 'ray' is not one launch init writes; valid: slurm, local"),
        ({"name": "a/b"}, "--name: 'a/b' is not a profile name"),
        ({"name": "x.yaml"}, "--name: 'x.yaml' is not a profile name"),
        ({"backend": "local", "partition": "gpu"}, "--partition: a Slurm partition, but --backend is local"),
    ],
)
def test_init_refuses_bad_options(world: Path, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        init_project(world / "x", **kwargs)  # type: ignore[arg-type]
    assert not (world / "x").exists()


@pytest.mark.parametrize(
    "gpu,line",
    [
        # as detect_local_gpus reads `0, NVIDIA H100 80GB HBM3, 81559, 9.0` (81559 MiB = 79.6 GB, sm_90)
        (GpuSpec(type="NVIDIA H100 80GB HBM3", memory_gb=79.6, per_node=1, bf16=True),
         "gpu: {type: h100, memory_gb: 79.6, per_node: 1, bf16: true}"),
        # two of `0, NVIDIA GeForce RTX 2080 Ti, 11264, 7.5` (11 GB, Turing: no bf16)
        (GpuSpec(type="NVIDIA GeForce RTX 2080 Ti", memory_gb=11, per_node=2, bf16=False),
         "gpu: {type: 2080ti, memory_gb: 11, per_node: 2, bf16: false}"),
        (GpuSpec(type="Some New Card", memory_gb=40, per_node=1, bf16=True),
         "gpu: {type: some-new-card, memory_gb: 40, per_node: 1, bf16: true}"),
        (None, "gpu: null  # nvidia-smi found no GPU: jobs run on CPU"),
    ],
)  # fmt: skip
def test_the_local_profile_of_a_machine(gpu: GpuSpec | None, line: str) -> None:
    profile = local_profile(None, gpu, 16, 128_900)
    assert profile.name == "local" and not profile.todos
    assert line in profile.text.splitlines()[5], profile.text
    assert "node: {cpus: 16, mem_gb: 125.8}" in profile.text  # 128900 MB / 1024, rounded down
    loaded = validate(ClusterProfile, yaml.safe_load(profile.text), "local.yaml")
    short = line.split("type: ")[1].split(",")[0] if gpu else None
    assert loaded.gpus == (gpu and gpu.model_copy(update={"type": short}))
