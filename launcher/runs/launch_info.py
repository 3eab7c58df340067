"""launch.json: what a run was launched with, the one typed reader and writer of the file.

Written whole when the run is created (`Run.create`), then merged into: the launcher adds the job
ids and the cluster profile after the submit, `--then` its chain, jobs their W&B runs. Every
top-level key is a field; keys this version does not know (an older or newer launcher's) are kept
as they are and written back, so a merge never loses one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from launcher.jsonio import atomic_write_json, read_object

FILE = "launch.json"


class ChainStep(BaseModel):
    """One `--then` step as the chain process reads it back (launcher.loop.chain.Step)."""

    model_config = ConfigDict(extra="allow")
    text: str
    kind: str
    recipe: str | None = None
    cluster: str | None = None


class ChainInfo(BaseModel):
    """`chain`: where a run's `--then` chain runs; `job_id` is None until it started."""

    model_config = ConfigDict(extra="allow")
    backend: str
    job_id: str | None = None
    steps: list[ChainStep] = Field(default_factory=list)


class GitInfo(BaseModel):
    """A git repository's state at submit: `diff` names the run's file of its uncommitted changes."""

    model_config = ConfigDict(extra="allow")
    root: str
    commit: str | None = None
    dirty: bool = False
    diff: str | None = None


class CodeInfo(BaseModel):
    """`code`: which code the run runs (launcher.runs.code). `snapshot` is the snapshot id and `path`
    its directory, both None with `live` (--live-code: `packages` where they were, not a copy)."""

    model_config = ConfigDict(extra="allow")
    snapshot: str | None = None
    path: str | None = None
    live: bool = False
    files: int | None = None
    bytes: int | None = None
    packages: list[str] = Field(default_factory=list)
    workdir: str | None = None
    git: GitInfo | None = Field(None, description="the project: the git repository holding `workdir`")
    launcher_git: GitInfo | None = Field(
        None, description="the launcher's own checkout, when it runs from one other than the project"
    )


class LaunchInfo(BaseModel):
    """The content of launch.json. Every field has a default, so a file written by an older version
    (or a partial one) reads; the file holds only the keys that were ever given."""

    model_config = ConfigDict(extra="allow")

    run_id: str = ""
    recipe: str = ""
    recipe_source: str = ""
    recipe_hash: str = ""
    cluster: str = ""
    backend: str = ""
    job: str = ""
    created_at: str = ""
    git_commit: str | None = None
    git_dirty: bool = False
    job_ids: list[str] = Field(default_factory=list)
    parent: str | None = None
    wandb: dict[str, Any] = Field(
        default_factory=dict,
        description="per job type (`train`, `evaluate`, ...) its W&B run {id, mode, project, url or "
        "offline_dir}, and the latest one's `url` / `offline_dir` (jobs write it)",
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="`profile`: the cluster profile the run was submitted with"
    )
    overrides: list[str] = Field(default_factory=list, description="the `--set` strings as given, in order")
    recipe_hash_base: str | None = Field(None, description="recipe_hash of the recipe before the overrides")
    sweep: str | None = Field(None, description="the sweep id of a sweep point")
    sweep_point: dict[str, Any] | None = Field(None, description='its varied keys: {"train.lr": 1e-05}')
    then: list[str] = Field(default_factory=list, description="the `--then` strings as given")
    chain: ChainInfo | None = None
    code: CodeInfo | None = Field(None, description="the code the run runs; absent from older files")

    @classmethod
    def read(cls, run_dir: Path) -> LaunchInfo:
        """The run's launch.json; all defaults when it is missing, unreadable or not a JSON object.
        A key whose value is not of its field's type reads as missing."""
        return cls._tolerant(read_object(run_dir / FILE) or {})

    @classmethod
    def _tolerant(cls, data: dict[str, Any]) -> LaunchInfo:
        while True:
            try:
                return cls.model_validate(data)
            except ValidationError as err:
                bad = {e["loc"][0] for e in err.errors() if e["loc"]}
                if not bad & data.keys():
                    return cls()
                data = {k: v for k, v in data.items() if k not in bad}

    def write(self, run_dir: Path) -> None:
        """Write launch.json atomically, with the keys that were given (and every unknown key)."""
        atomic_write_json(run_dir / FILE, self.model_dump(mode="json", exclude_unset=True))

    @classmethod
    def update(cls, run_dir: Path, **changes: Any) -> LaunchInfo:
        """Merge `changes` into launch.json and return the result. A key that is no field is a
        TypeError and a value of the wrong type a ValidationError; either way nothing is written."""
        unknown = sorted(changes.keys() - cls.model_fields.keys())
        if unknown:
            raise TypeError(f"launch.json has no field {', '.join(unknown)}")
        current = cls.read(run_dir).model_dump(exclude_unset=True)
        info = cls.model_validate({**current, **changes})
        info.write(run_dir)
        return info
