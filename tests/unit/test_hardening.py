"""Hostile input past validation, in-process (issue 11): one quoting function for the scripts, backends
that refuse a bad key even past validation, one list of secret names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from launcher.config.cluster import load_cluster
from launcher.config.recipe import load_recipe
from launcher.runs import service as launching
from launcher.shell import export_line, quote


# ---------------------------------------------------------------- item 1: one quoting function
@pytest.mark.parametrize("key", ["A=1; touch /tmp/pwned; B", "MY-VAR", "1X", "", "A B", "A\nB", "$X"])
def test_export_line_refuses_a_key_that_is_not_a_name(key: str) -> None:
    with pytest.raises(ValueError, match="is not a valid environment variable name"):
        export_line(key, "v")


def test_export_line_quotes_the_value() -> None:
    assert export_line("A_1", "x'; rm -rf / #") == "export A_1='x'\"'\"'; rm -rf / #'"
    out = subprocess.run(
        ["bash", "-c", f"{export_line('V', '$(id) `id` ${HOME}')}; printf %s \"$V\""],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out == "$(id) `id` ${HOME}"
    assert quote(3) == "3"


@pytest.mark.parametrize("cluster", ["local", "dev-slurm"])
def test_backends_refuse_a_bad_key_even_past_validation(
    cluster: str, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """A recipe whose env was set without validation (model_construct) never reaches a script."""
    prepared = launching.prepare("tiny_smoke", cluster)
    recipe = prepared.run.recipe
    recipe.__dict__["env"] = {"A=1; touch /tmp/pwned; B": "x"}  # bypasses validate_assignment
    with pytest.raises(ValueError, match="not a valid environment variable name"):
        prepared.backend.dryrun(prepared.run)


# ---------------------------------------------------------------- item 4: one list of secret names
def test_one_list_of_secret_names() -> None:
    import launcher.config.recipe
    from launcher.tracking.wandb_mode import is_secret

    assert not hasattr(launcher.config.recipe, "SECRET_HINTS")
    for name in ("HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DB_PASSWORD",
                 "GOOGLE_CREDENTIALS"):  # fmt: skip
        assert is_secret(name), name
        recipe = load_recipe("tiny_smoke")
        with pytest.raises(Exception, match="looks like a secret"):
            type(recipe).model_validate({**recipe.model_dump(), "env": {name: "x"}})
        profile = load_cluster("local")
        with pytest.raises(Exception, match="looks like a secret"):
            type(profile).model_validate({**profile.model_dump(), "env": {name: "x"}})
