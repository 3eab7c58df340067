"""A run: its id, its directory and launch.json, written only once everything validated."""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from launcher import paths
from launcher.config.cluster import ClusterProfile
from launcher.config.recipe import Recipe
from launcher.runs.launch_info import LaunchInfo


def new_run_id(recipe_name: str, now: datetime | None = None) -> str:
    """`<recipe>-<YYYYmmdd-HHMM>-<4 hex>`."""
    now = now or datetime.now()
    return f"{recipe_name}-{now:%Y%m%d-%H%M}-{secrets.token_hex(2)}"


def git_state(root: Path = paths.PROJECT_ROOT) -> tuple[str | None, bool]:
    """(commit, dirty) of the project checkout; (None, False) outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        return None, False
    return commit, dirty


@dataclass(frozen=True)
class RunFile:
    """One file a run writes into its directory when it is created (besides launch.json)."""

    name: str
    text: str
    executable: bool = False


@dataclass
class Run:
    """A run to be (or already) launched; nothing touches disk until `create()`."""

    run_id: str
    run_dir: Path
    recipe: Recipe
    profile: ClusterProfile
    parent: str | None = None
    sweep: str | None = None
    sweep_point: dict[str, Any] | None = None

    @classmethod
    def new(
        cls,
        recipe: Recipe,
        profile: ClusterProfile,
        root: Path | None = None,
        parent: str | None = None,
    ) -> Run:
        """A run of `recipe` on `profile` under a fresh run id (under `root`, the runs root by default)."""
        run_id = new_run_id(recipe.name)
        return cls(run_id, (root or paths.runs_root()) / run_id, recipe, profile, parent)

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    def rendered_files(self) -> dict[str, str]:
        """Configs rendered from the recipe that the job reads beside recipe.yaml."""
        files: dict[str, str] = {}
        if self.recipe.distributed.strategy == "deepspeed":
            from launcher.kinds.deepspeed import deepspeed_config

            files["deepspeed.json"] = json.dumps(deepspeed_config(self.recipe), indent=2) + "\n"
        if self.recipe.engine == "axolotl":
            from launcher.kinds.axolotl import axolotl_config_text

            files["axolotl.yaml"] = axolotl_config_text(self.recipe, self.run_dir)
        return files

    def files(self, script: str) -> list[RunFile]:
        """Every file `create(script)` writes: the resolved recipe, the script, the rendered configs.

        `--dry-run` prints this same list, so what it shows is what a submit writes."""
        files = [RunFile("recipe.yaml", self.recipe.to_yaml()), RunFile("submit.sh", script, executable=True)]
        files += [RunFile(name, text) for name, text in self.rendered_files().items()]
        return files

    def info(self) -> LaunchInfo:
        """launch.json as created: every key but `then` and `chain` (a run without a chain has none)."""
        commit, dirty = git_state()
        return LaunchInfo(
            run_id=self.run_id,
            recipe=self.recipe.name,
            recipe_source=self.recipe.source,
            recipe_hash=self.recipe.digest(),
            cluster=self.profile.name,
            backend=self.profile.backend,
            job=self.recipe.job,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            git_commit=commit,
            git_dirty=dirty,
            job_ids=[],
            parent=self.parent,
            wandb={},
            extra={},
            overrides=self.recipe.overrides,
            recipe_hash_base=self.recipe.base_digest(),
            sweep=self.sweep,
            sweep_point=self.sweep_point,
        )

    def create(self, script: str) -> LaunchInfo:
        """Write `files(script)`, launch.json and logs/; the directory must not exist."""
        self.run_dir.mkdir(parents=True, exist_ok=False)
        self.logs_dir.mkdir()
        for f in self.files(script):
            path = self.run_dir / f.name
            path.write_text(f.text)
            if f.executable:
                path.chmod(0o755)
        info = self.info()
        info.write(self.run_dir)
        return info


def files_text(run: Run, script: str) -> str:
    """For --dry-run, after the script: the list of files the run will write, then each one's
    content except the script itself (printed above)."""
    files = run.files(script)
    lines = [f"# files the run will write in {run.run_dir}:"]
    lines += [f"#   {f.name}" + (" (the script above)" if f.name == "submit.sh" else "") for f in files]
    lines.append("#   launch.json (at submit: run id, recipe hash, git commit, job ids)")
    parts = ["\n".join(lines) + "\n"]
    parts += [f"\n# ---- {f.name} ----\n{f.text.rstrip()}\n" for f in files if f.name != "submit.sh"]
    return "".join(parts)
