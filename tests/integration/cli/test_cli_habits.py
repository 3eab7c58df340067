"""CLI habits: `launch --version`, shell completion, and the `--set KEY=VALUE` metavar.

Completion runs the installed `launch` console script (completion scripts call the program by
name, as a user's shell does), with the scratch HOME it installs into."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from tests.support.cli import Launch

LAUNCH = str(Path(sys.executable).parent / "launch")


def _help(launch: Launch, *args: str) -> str:
    proc = launch(*args, "--help", check=True)
    return proc.stdout


def test_version_comes_from_the_package_metadata(launch: Launch) -> None:
    proc = launch("--version", check=True)
    assert proc.stdout == f"launch (recipe-launcher) {version('recipe-launcher')}\n"


def test_every_set_option_reads_key_value(launch: Launch, launch_env: dict[str, str]) -> None:
    launch_env["COLUMNS"] = "200"
    commands = [
        line.split()[0]
        for line in _help(launch).split("Commands:")[1].splitlines()
        if line.startswith("  ") and line.split()
    ]
    with_set = [c for c in commands if "--set" in _help(launch, c)]
    assert {"recipe", "plan", "show", "reeval"} <= set(with_set)
    for command in with_set:
        assert "--set KEY=VALUE" in _help(launch, command), command


def test_completion_installs_and_completes(tmp_path: Path, launch_env: dict[str, str]) -> None:
    env = {**launch_env, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    shown = subprocess.run([LAUNCH, "--show-completion", "bash"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and "complete -o default -F _launch_completion launch" in shown.stdout
    installed = subprocess.run(
        [LAUNCH, "--install-completion", "bash"], env=env, capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "launch.sh"
    assert script.read_text().strip() == shown.stdout.strip()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()

    def complete(words: str) -> list[str]:
        cword = str(len(words.split()) - 1)
        asked = {**env, "_LAUNCH_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
        return subprocess.run([LAUNCH], env=asked, capture_output=True, text=True).stdout.split()

    assert complete("launch lo") == ["logs"]
    assert complete("launch logs --m") == ["--merged"]
    assert "--wandb" in complete("launch sync --w")


def test_help_still_starts_without_heavy_imports(launch_env: dict[str, str]) -> None:
    """Completion and --version must not pull torch, W&B or the backends into `launch --help`."""
    code = (
        "import sys; sys.argv = ['launch', '--help']\n"
        "from launcher.cli.common import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'transformers', 'ray', 'wandb', 'launcher.backends.base', 'launcher.views.logs')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    env = {k: v for k, v in launch_env.items() if k != "_LAUNCH_COMPLETE"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=os.getcwd()
    )
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
