"""Where things live: the project, $LAUNCH_HOME, the runs root; finding recipes and profiles by name."""

from __future__ import annotations

import os
from pathlib import Path

from launcher.errors import UserError, choices_text, did_you_mean, require_file
from launcher.shell import control_character

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _path_variable(name: str) -> str | None:
    """The value of the path variable `name`; a UserError when it holds a control character (the
    path goes into job scripts, where a newline splits a line)."""
    value = os.environ.get(name)
    char = value and control_character(value)
    if char:
        raise UserError(
            f"${name}: {value!r} holds the control character {char!r}; valid: a path of printable characters"
        )
    return value


def launch_home() -> Path:
    """$LAUNCH_HOME, default ~/.launch: the registry and user recipes/clusters."""
    return Path(_path_variable("LAUNCH_HOME") or Path.home() / ".launch").expanduser()


def runs_root() -> Path:
    """$LAUNCH_RUNS, default ./runs: the local root of run directories."""
    return Path(_path_variable("LAUNCH_RUNS") or "runs").expanduser().resolve()


def search_dirs(kind: str) -> list[Path]:
    """Directories searched for `kind` ('recipes' or 'clusters'), project first."""
    project = PROJECT_ROOT / ("recipes" if kind == "recipes" else "cluster")
    return [project, launch_home() / kind]


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def catalog(kind: str) -> dict[str, Path]:
    """Every YAML of `kind` by name (file stem); a project file wins over a $LAUNCH_HOME one."""
    found: dict[str, Path] = {}
    for directory in search_dirs(kind):
        for path in _yaml_files(directory):
            found.setdefault(path.stem, path)
    return found


def looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or os.sep in ref


def resolve(kind: str, ref: str) -> Path:
    """Find a recipe or cluster profile by name or path; an unknown one is a UserError."""
    if looks_like_path(ref):
        path = Path(ref).expanduser()
        require_file(path, ref)
        return path
    items = catalog(kind)
    if ref in items:
        return items[ref]
    noun = "recipe" if kind == "recipes" else "cluster"
    where = " or ".join(str(d) for d in search_dirs(kind))
    raise UserError(
        f"unknown {noun} '{ref}'{did_you_mean(ref, items)}; looked in {where}; "
        f"valid: {choices_text(sorted(items))}"
    )
