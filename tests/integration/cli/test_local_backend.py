"""The local backend's dry runs and files through the CLI: the command, redacted secrets, user recipes
and clusters from $LAUNCH_HOME, `launch show`, the supervisor module runnable directly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import Launch


def test_dry_run_prints_command_and_creates_nothing(launch: Launch, tmp_path: Path) -> None:
    proc = launch("recipe", "tiny_smoke", "--cluster", "local", "--dry-run", check=True)
    assert "-m jobs.smoke --run-dir" in proc.stdout
    assert "LAUNCH_RUN_ID=tiny_smoke-" in proc.stdout
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "home" / "registry.db").exists()


def test_dry_run_redacts_secrets(launch: Launch, launch_env: dict[str, str]) -> None:
    launch_env["WANDB_API_KEY"] = "wandb-secret-value-123"
    args = ["-c", "local", "--dry-run", "--set", "env={HF_HOME: /x}"]
    proc = launch("recipe", "tiny_smoke", *args, check=True)
    assert "wandb-secret-value-123" not in proc.stdout + proc.stderr
    assert "HF_HOME=/x" in proc.stdout


def test_user_recipes_and_clusters_from_launch_home(launch: Launch, launch_env: dict[str, str]) -> None:
    home = Path(launch_env["LAUNCH_HOME"])
    (home / "recipes").mkdir(parents=True)
    (home / "clusters").mkdir(parents=True)
    (home / "recipes" / "my_smoke.yaml").write_text(
        "# mine\n# launch recipe my_smoke --cluster mybox\nname: my_smoke\njob: smoke\n"
        "model: {name_or_path: none}\nresources: {gpus_per_node: 0}\ntrain: {max_steps: 2}\n"
    )
    (home / "clusters" / "mybox.yaml").write_text("# my box\nname: mybox\nbackend: local\n")
    assert "my_smoke" in launch("recipes", check=True).stdout
    assert "mybox" in launch("clusters", check=True).stdout
    proc = launch("recipe", "my_smoke", "--cluster", "mybox", "--follow", check=True)
    assert "step 2/2" in proc.stdout


def test_show_prints_the_resolved_recipe(launch: Launch) -> None:
    out = launch("show", "ds7b_fft", "--cluster", "a800", "--set", "train.lr=1e-5", check=True).stdout
    assert "lr: 1.0e-05" in out and "lora: null" in out and "zero_stage: 3" in out


def test_supervisor_module_is_runnable_directly() -> None:
    proc = subprocess.run([sys.executable, "-m", "launcher.backends.local", "--help"],
                          capture_output=True, text=True, env=os.environ)  # fmt: skip
    assert proc.returncode == 0 and "--run-dir" in proc.stdout
