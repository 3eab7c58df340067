"""A run: its id, its directory and launch.json, written only once everything validated."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher import paths
from launcher.runs.code import DIFF_FILE, Code
from launcher.runs.code import plan as plan_code
from launcher.runs.launch_info import LaunchInfo

if TYPE_CHECKING:
    from launcher.config.cluster import ClusterProfile
    from launcher.config.recipe import Recipe


def new_run_id(recipe_name: str, now: datetime | None = None) -> str:
    """`<recipe>-<YYYYmmdd-HHMM>-<4 hex>`."""
    now = now or datetime.now()
    return f"{recipe_name}-{now:%Y%m%d-%H%M}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RunFile:
    """One file a run writes into its directory when it is created (besides launch.json)."""

    name: str
    text: str
    executable: bool = False
    about: str | None = None
    """What --dry-run prints instead of the content (a long file such as code.diff)."""


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
    code: Code | None = None
    """The code it runs (launcher.runs.code); planned on first use of `planned_code` when not given."""

    @classmethod
    def new(
        cls,
        recipe: Recipe,
        profile: ClusterProfile,
        root: Path | None = None,
        parent: str | None = None,
        code: Code | None = None,
    ) -> Run:
        """A run of `recipe` on `profile` under a fresh run id (under `root`, the runs root by default)."""
        run_id = new_run_id(recipe.name)
        return cls(run_id, (root or paths.runs_root()) / run_id, recipe, profile, parent, code=code)

    @property
    def planned_code(self) -> Code:
        """`code`, planned as a snapshot beside the runs when it was not given."""
        if self.code is None:
            self.code = plan_code(self.recipe, self.run_dir.parent)
        return self.code

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
        diff = self.planned_code.dirty_diff
        if diff is not None:
            git = self.planned_code.git
            about = f"the uncommitted changes of {git.root if git else '?'}, {len(diff.splitlines())} lines"
            files.append(RunFile(DIFF_FILE, diff, about=about))
        return files

    def info(self, recipe_text: str | None = None) -> LaunchInfo:
        """launch.json as created: every key but `then` and `chain` (a run without a chain has none);
        `recipe_text`: the recipe's `to_yaml()`, when known (a YAML dump less per run of a sweep)."""
        code = self.planned_code
        digest = self.recipe.digest(recipe_text)
        git = code.git or code.launcher_git  # git_commit/git_dirty as older readers know them
        return LaunchInfo(
            run_id=self.run_id,
            recipe=self.recipe.name,
            recipe_source=self.recipe.source,
            recipe_hash=digest,
            cluster=self.profile.name,
            backend=self.profile.backend,
            job=self.recipe.job,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            git_commit=git.commit if git else None,
            git_dirty=git.dirty if git else False,
            job_ids=[],
            parent=self.parent,
            wandb={},
            extra={"profile": self.profile.model_dump(mode="json")},  # status and cancel read it back
            overrides=self.recipe.overrides,
            recipe_hash_base=self.recipe.base_digest(digest),
            sweep=self.sweep,
            sweep_point=self.sweep_point,
            code=code.info(),
        )

    def create(self, script: str) -> LaunchInfo:
        """Write `files(script)`, launch.json and logs/; the directory must not exist."""
        self.run_dir.mkdir(parents=True, exist_ok=False)
        self.logs_dir.mkdir()
        files = self.files(script)
        for f in files:
            path = self.run_dir / f.name
            path.write_text(f.text, errors="surrogateescape")  # a diff holds what the files hold
            if f.executable:
                path.chmod(0o755)
        info = self.info(files[0].text)  # recipe.yaml
        info.write(self.run_dir)
        return info


def files_text(run: Run, script: str) -> str:
    """For --dry-run, after the script: the list of files the run will write, then each one's
    content except the script itself (printed above)."""
    files = run.files(script)
    lines = [f"# files the run will write in {run.run_dir}:"]
    for f in files:
        note = "the script above" if f.name == "submit.sh" else f.about
        lines.append(f"#   {f.name}" + (f" ({note})" if note else ""))
    lines.append("#   launch.json (at submit: run id, recipe hash, code, git commit, job ids)")
    lines.append(f"# code: {code_line(run.planned_code)}")
    parts = ["\n".join(lines) + "\n"]
    shown = [f for f in files if f.name != "submit.sh" and not f.about]
    parts += [f"\n# ---- {f.name} ----\n{f.text.rstrip()}\n" for f in shown]
    return "".join(parts)


def code_line(code: Code) -> str:
    """The dry run's line on the code: the snapshot a submit stores, or the live packages."""
    if code.snapshot is None:
        return f"LIVE packages {', '.join(str(p) for p in code.packages)} (--live-code: not a snapshot)"
    snap = code.snapshot
    there = "stored already" if (snap.path / "SNAPSHOT.json").is_file() else "stored at submit"
    return f"snapshot {snap.id} ({snap.files} files, {snap.bytes / 1e6:.1f} MB) at {snap.path}, {there}"
