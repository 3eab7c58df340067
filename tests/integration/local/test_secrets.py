"""A secret pasted into `--set` is redacted in the dry run and written nowhere by a real local run."""

from __future__ import annotations

from pathlib import Path

from launcher.tracking.wandb_mode import REDACTED
from tests.support.cli import Launch


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_secret_given_through_set_is_written_nowhere(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """A value equal to a secret of the environment, pasted into `--set`, is redacted in the dry
    run, recipe.yaml, submit.sh and launch.json (it reaches the job through the environment)."""
    secret = "sk-planted-0123456789abcdef"
    launch_env["MY_SERVICE_API_KEY"] = secret
    sets = [
        "--set",
        f"env.FOO={secret}",
        "--set",
        f"model.revision=rev-{secret}",
        "--set",
        "env.SMOKE_STEP_SECONDS=0",
    ]
    dry = launch("recipe", "tiny_smoke", "-c", "local", *sets, "--dry-run", check=True)
    assert secret not in dry.stdout + dry.stderr
    assert f"FOO={REDACTED}" in dry.stdout or f"FOO='{REDACTED}'" in dry.stdout, dry.stdout
    proc = launch("recipe", "tiny_smoke", "-c", "local", *sets, "--follow", check=True)
    run_dir = tmp_path / "runs" / proc.stdout.split()[0]
    for name in ("recipe.yaml", "submit.sh", "launch.json"):
        text = (run_dir / name).read_text()
        assert secret not in text, name
    assert f"rev-{REDACTED}" in (run_dir / "recipe.yaml").read_text()
    leaks = [
        p for p in _files(tmp_path / "runs") + _files(tmp_path / "home") if secret.encode() in p.read_bytes()
    ]
    assert not leaks, leaks
