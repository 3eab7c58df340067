"""A secret-looking env key is refused in recipes and cluster profiles, its value printed nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Launch


@pytest.mark.parametrize("where", ["recipe", "profile"])
def test_a_secret_looking_env_key_is_refused_in_recipes_and_profiles(
    launch: Launch, tmp_path: Path, where: str
) -> None:
    profile = tmp_path / "c.yaml"
    planted = "hf_planted_value_123"
    env_line = f"env: {{HF_TOKEN: {planted}}}\n"
    profile.write_text("name: c\nbackend: local\ngpu: null\n" + (env_line if where == "profile" else ""))
    extra = ["--set", f"env.HF_TOKEN={planted}"] if where == "recipe" else []
    proc = launch("recipe", "tiny_smoke", "-c", str(profile), *extra, "--dry-run")
    assert proc.returncode == 2, proc.stderr
    assert "env.HF_TOKEN: looks like a secret" in proc.stderr
    assert planted not in proc.stdout + proc.stderr
