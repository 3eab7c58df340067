"""Which code a run runs: a snapshot of the packages the submitting process imported (or, with
`--live-code`, those packages where they are), the directory it runs in, and the git state.

The packages are `launcher` and `jobs` as this process finds them (`jobs` is located, never
imported) and the project's own packages a recipe's job names (`kinds.custom.project_packages`).
The job gets `PYTHONPATH=<snapshot>[:<the submitting $PYTHONPATH>]` and `PYTHONSAFEPATH=1` (the
working directory is never put on sys.path, so a checkout there is not imported, in torchrun's
workers neither) and `LAUNCH_CODE=<snapshot id>` (`live` with `--live-code`); it runs in the
submitting process's working directory (`workdir`, what Slurm's --chdir defaults to), against which
the recipe's relative paths were checked.

Git: the project is the git repository holding the working directory; its commit and whether
tracked files differ from it (`git status --untracked-files=no`), and when they do the file
`code.diff` in the run directory (`git diff HEAD --binary`, headed by the untracked files' names).
When the launcher itself runs from a git checkout other than the project, its commit too. Git is
asked once per process and repository (a sweep asks once).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.errors import SetupError
from launcher.runs import snapshot
from launcher.runs.launch_info import CodeInfo, GitInfo
from launcher.tracking.wandb_mode import redact_text

if TYPE_CHECKING:
    from launcher.kinds.view import RecipeView

DIFF_FILE = "code.diff"
DIFF_LIMIT = 20 * 1024 * 1024
"""A larger diff is cut there (with a last line that says so)."""
GIT_TIMEOUT_S = 10


@dataclass(frozen=True)
class GitState:
    root: Path
    commit: str | None
    dirty: bool
    diff: str | None = None
    """When dirty: what goes in code.diff."""

    def info(self, diff_file: str | None) -> GitInfo:
        return GitInfo(root=str(self.root), commit=self.commit, dirty=self.dirty, diff=diff_file)


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, timeout=GIT_TIMEOUT_S, check=True
    )
    return proc.stdout.decode("utf-8", "surrogateescape")


@cache
def git_state(directory: Path) -> GitState | None:
    """The git repository holding `directory`; None outside git (or without git)."""
    try:
        root = Path(_git(directory, "rev-parse", "--show-toplevel").strip())
        commit = _git(root, "rev-parse", "--verify", "-q", "HEAD").strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no").strip())
        diff = _diff(root, commit) if dirty else None
    except (OSError, subprocess.SubprocessError):
        return GitState(root, commit, False)
    return GitState(root, commit, dirty, diff)


def _diff(root: Path, commit: str | None) -> str:
    untracked = _git(root, "ls-files", "--others", "--exclude-standard").splitlines()
    head = [f"# uncommitted changes of {root} against {commit or 'no commit'}: git diff HEAD --binary"]
    if untracked:
        head.append(f"# untracked files (not in the diff): {' '.join(untracked)}")
    body = _git(root, "diff", "HEAD", "--binary") if commit else ""
    # an uncommitted edit may hold a key that is also in the environment: redacted before the cut,
    # which could otherwise leave part of one
    body = redact_text(body)
    if len(body) > DIFF_LIMIT:
        body = body[:DIFF_LIMIT] + f"\n# ... cut at {DIFF_LIMIT} characters\n"
    return "\n".join(head) + "\n" + body


def split_path(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.split(os.pathsep) if p)


def code_variables(search_path: Sequence[str], given: Sequence[str], code_id: str) -> dict[str, str]:
    """PYTHONPATH with the code first (then `given`), PYTHONSAFEPATH (the working directory is never
    imported) and LAUNCH_CODE: what a job, a chain or a supervisor runs its code with."""
    return {
        "PYTHONPATH": os.pathsep.join(dict.fromkeys([*search_path, *given])),
        "PYTHONSAFEPATH": "1",
        "LAUNCH_CODE": code_id,
    }


def live_search_path() -> list[str]:
    """The directories holding this process's launcher and jobs packages (what --live-code puts
    on PYTHONPATH)."""
    return list(dict.fromkeys(str(p.parent) for p in [_launcher_dir(), *_jobs_dirs()]))


def _launcher_dir() -> Path:
    import launcher

    return Path(launcher.__file__).resolve().parent


def _jobs_dirs() -> list[Path]:
    spec = importlib.util.find_spec("jobs")
    places = list(spec.submodule_search_locations or []) if spec else []
    if not places:
        raise SetupError("the `jobs` package cannot be found by this Python; reinstall recipe-launcher")
    return [Path(p).resolve() for p in places]


def packages(recipe: RecipeView) -> list[Path]:
    """The package directories a run of `recipe` runs: launcher, jobs, then the project's own."""
    from launcher.kinds.custom import project_packages

    return [_launcher_dir(), *_jobs_dirs(), *project_packages(recipe)]


def working_directory() -> Path:
    try:
        return Path.cwd()
    except FileNotFoundError:
        raise SetupError("the working directory was deleted; cd into an existing one") from None


@dataclass(frozen=True)
class Code:
    """What a run runs: the snapshot it was planned (`snapshot`), or the live packages (`live`)."""

    workdir: Path
    packages: tuple[Path, ...]
    snapshot: snapshot.Planned | None
    git: GitState | None = None
    launcher_git: GitState | None = None
    inherited: tuple[str, ...] = ()
    """The submitting process's PYTHONPATH entries: they follow the code on the job's."""

    @property
    def live(self) -> bool:
        return self.snapshot is None

    @property
    def id(self) -> str:
        """The snapshot id, `live` without one (what $LAUNCH_CODE says)."""
        return self.snapshot.id if self.snapshot else "live"

    @property
    def search_path(self) -> list[str]:
        """The PYTHONPATH entries that hold the code: the snapshot, or the live packages' parents."""
        if self.snapshot is not None:
            return [str(self.snapshot.path)]
        return list(dict.fromkeys(str(p.parent) for p in self.packages))

    def env(self, pythonpath: str | None = None) -> dict[str, str]:
        """The job's code variables; `pythonpath` (default: the submitting one) follows the code."""
        given = self.inherited if pythonpath is None else split_path(pythonpath)
        return code_variables(self.search_path, given, self.id)

    def store(self) -> None:
        """Write the snapshot (nothing for live code); a SetupError when it cannot be."""
        if self.snapshot is not None:
            snapshot.store(self.snapshot)

    @property
    def dirty_diff(self) -> str | None:
        """code.diff's text, when the project's tracked files differ from its commit."""
        return self.git.diff if self.git and self.git.dirty else None

    def info(self) -> CodeInfo:
        """launch.json's `code`."""
        snap = self.snapshot
        diff = DIFF_FILE if self.dirty_diff is not None else None
        return CodeInfo(
            snapshot=snap.id if snap else None,
            path=str(snap.path) if snap else None,
            live=snap is None,
            files=snap.files if snap else None,
            bytes=snap.bytes if snap else None,
            packages=[str(p) for p in self.packages],
            workdir=str(self.workdir),
            git=self.git.info(diff) if self.git else None,
            launcher_git=self.launcher_git.info(None) if self.launcher_git else None,
        )


def plan(recipe: RecipeView, runs_root: Path, live: bool = False) -> Code:
    """The code a run of `recipe` will run (hashed, nothing written; see the module docstring)."""
    workdir = working_directory()
    found = packages(recipe)
    planned = None if live else snapshot.plan(found, runs_root)
    project = git_state(workdir)
    tool = git_state(found[0].parent)
    checkout = tool is not None and tool.root == found[0].parent  # not a snapshot inside some repository
    own = tool if checkout and (not project or project.root != found[0].parent) else None
    inherited = split_path(os.environ.get("PYTHONPATH", ""))
    return Code(workdir, tuple(found), planned, project, own, inherited)
