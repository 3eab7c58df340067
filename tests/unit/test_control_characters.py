"""Control characters in what users write (issue 26, item 22): every string of a recipe or a cluster
profile, and $LAUNCH_HOME / $LAUNCH_RUNS, may reach a line of a job script (`#SBATCH --account=...`),
so none of \\x00-\\x1f, \\x7f (nor C1 controls, U+2028/U+2029) is accepted; only a `description` may
span lines (newlines and tabs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher import paths
from launcher.config.cluster import load_cluster
from launcher.config.recipe import load_recipe
from launcher.errors import UserError

PROFILE = """\
name: hostile
backend: slurm
gpu: {type: a800, memory_gb: 80, per_node: 8, bf16: true}
slurm:
  partition: gpu
"""


def _profile(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(PROFILE + extra)
    return path


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('  account: "acct\\n#SBATCH --x \'y"\n', "slurm.account"),
        ('  qos: "normal\\r"\n', "slurm.qos"),
        ('  constraint: "a\\tb"\n', "slurm.constraint"),
        ('  python: "python\\x00"\n', "slurm.python"),
        ('  setup: ["module load cuda", "echo a\\necho b"]\n', "slurm.setup"),
        ('  extra: {"exclusive\\n#SBATCH --mem": 1}\n', "slurm.extra"),
        ('  extra: {comment: "x\\x7fy"}\n', "slurm.extra"),
        ('env: {FOO: "a\\nb"}\n', "env"),
        ('description: "a\\x1bb"\n', "description"),
    ],
)
def test_a_control_character_in_a_profile_is_refused_naming_the_key(
    tmp_path: Path, extra: str, key: str
) -> None:
    path = _profile(tmp_path, extra)
    with pytest.raises(UserError) as err:
        load_cluster(path)
    text = str(err.value)
    assert len(text.splitlines()) == 1, text
    assert text.startswith(f"{path}: {key}: ") and "control character" in text, text


def test_a_partition_with_a_newline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE.replace("partition: gpu", 'partition: "gpu\\n"'))
    with pytest.raises(UserError, match=r"slurm\.partition: .*control character"):
        load_cluster(path)


def test_a_multi_line_description_is_text_and_allowed(tmp_path: Path) -> None:
    profile = load_cluster(_profile(tmp_path, "description: |\n  two\n  \tlines\n"))
    assert profile.description == "two\n\tlines\n"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.name_or_path=a\x01b", "model.name_or_path"),
        ("tracking.wandb.group=g\x1b[31m", "tracking.wandb.group"),
        ('tracking.wandb.tags=["ok", "b\\tad"]', "tracking.wandb.tags"),
        ('env.X="a\\nb"', "env"),
        ('artifacts.uri="s3://b/x\\ny"', "artifacts.uri"),
    ],
)
def test_a_control_character_in_a_recipe_override_is_refused(override: str, key: str) -> None:
    with pytest.raises(UserError) as err:
        load_recipe("tiny_smoke", [override])
    text = str(err.value)
    assert len(text.splitlines()) == 1 and f"--set {key}" in text and "control character" in text, text


def test_a_control_character_in_a_recipe_file_names_the_file(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    text = (paths.builtin_dir("recipes") / "tiny_smoke.yaml").read_text()
    text = text.replace("{mode: disabled}", '{mode: disabled, entity: "lab\\n"}')
    recipe.write_text(text + 'description: "fine\\nhere"\n')
    with pytest.raises(UserError, match=rf"^{recipe}: tracking\.wandb\.entity: .*control character"):
        load_recipe(recipe)


def test_the_shipped_recipes_and_profiles_hold_no_control_characters() -> None:
    for path in sorted(paths.builtin_dir("recipes").rglob("*.yaml")):
        load_recipe(path)
    for path in sorted(paths.builtin_dir("clusters").glob("*.yaml")):
        load_cluster(path)


@pytest.mark.parametrize("variable", ["LAUNCH_HOME", "LAUNCH_RUNS"])
@pytest.mark.parametrize("value", ["/tmp/ru\nns", "/tmp/a\tb", "/tmp/x\x1b"])
def test_a_control_character_in_a_path_variable_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(UserError) as err:
        paths.launch_home() if variable == "LAUNCH_HOME" else paths.runs_root()
    text = str(err.value)
    assert len(text.splitlines()) == 1 and text.startswith(f"${variable}: ") and "control character" in text
