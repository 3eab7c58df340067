"""Where things live: the project, $LAUNCH_HOME, the runs root; finding recipes and profiles by name.

Recipes and cluster profiles are searched in order: the current project (the `recipes/` and
`cluster/` beside the nearest `launch.toml`, from the working directory upward), $LAUNCH_HOME's
`recipes/` and `clusters/`, then the built-ins shipped inside the package (`launcher/builtin/`).
The first file of a name wins, so a project's recipe shadows a built-in of the same name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from launcher.errors import SetupError, UserError, choices_text, did_you_mean, require_file
from launcher.shell import control_character

MARKER = "launch.toml"
"""The file that makes a directory a project: its `recipes/` and `cluster/` are searched first."""

Origin = Literal["project", "home", "built-in"]
_PROJECT_DIR: dict[str, str] = {"recipes": "recipes", "clusters": "cluster"}
_PROJECT_KEYS = {"name": "the project's name", "runs": "the runs root, relative to launch.toml"}


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


@dataclass(frozen=True)
class Project:
    """A directory with a `launch.toml` and what that file says (`[project] name`, `runs`)."""

    root: Path
    name: str | None = None
    runs: str | None = None

    @property
    def marker(self) -> Path:
        return self.root / MARKER


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest directory holding a `launch.toml`, from `start` (default: the working directory)
    upward; the search stops at the filesystem root and never reaches $HOME's parent."""
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:  # the working directory was deleted
        return None
    try:
        stop: Path | None = Path.home().resolve().parent
    except (RuntimeError, KeyError):
        stop = None
    for directory in (here, *here.parents):
        if directory == stop:
            break
        if (directory / MARKER).is_file():
            return directory
    return None


def read_project(root: Path) -> Project:
    """`root/launch.toml` read and checked: only a `[project]` table with `name` and `runs` strings;
    anything else is a UserError naming the file."""
    import tomllib  # here: most verbs read no launch.toml

    marker = root / MARKER
    try:
        data = tomllib.loads(marker.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{marker}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{marker}: not valid TOML ({err})") from None
    except OSError as err:
        raise SetupError(f"{marker}: cannot read: {err.strerror or err}") from None
    unknown = sorted(set(data) - {"project"})
    if unknown:
        raise UserError(f"{marker}: unknown table or key '{unknown[0]}'; valid: [project]")
    table = data.get("project", {})
    if not isinstance(table, dict):
        raise UserError(
            f"{marker}: project must be a table ([project]); valid keys: {choices_text(_PROJECT_KEYS)}"
        )
    for key, value in table.items():
        if key not in _PROJECT_KEYS:
            raise UserError(
                f"{marker}: project.{key}: unknown key{did_you_mean(key, _PROJECT_KEYS)}; "
                f"valid: {choices_text(_PROJECT_KEYS)}"
            )
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{marker}: project.{key}: {value!r} is not a text; valid: {_PROJECT_KEYS[key]}")
        char = control_character(value)
        if char:
            raise UserError(f"{marker}: project.{key}: {value!r} holds the control character {char!r}")
    return Project(root, table.get("name"), table.get("runs"))


def current_project() -> Project | None:
    """The project the working directory is in, read from its `launch.toml`; None outside a project."""
    root = find_project_root()
    return read_project(root) if root is not None else None


def launch_home() -> Path:
    """$LAUNCH_HOME, default ~/.launch: the registry and user recipes/clusters."""
    return Path(_path_variable("LAUNCH_HOME") or Path.home() / ".launch").expanduser()


def runs_root() -> Path:
    """$LAUNCH_RUNS; else the project's `runs` (relative to its launch.toml); else ./runs."""
    chosen = _path_variable("LAUNCH_RUNS")
    if chosen:
        return Path(chosen).expanduser().resolve()
    project = current_project()
    if project is not None and project.runs:
        return (project.root / Path(project.runs).expanduser()).resolve()
    return Path("runs").resolve()


def builtin_dir(kind: str) -> Path:
    """The package's own directory of `kind` (launcher/builtin/recipes or /cluster)."""
    from importlib import resources

    root = resources.files("launcher.builtin")
    if not isinstance(root, Path):
        raise SetupError(f"launcher is installed as an archive ({root}); install it from a wheel with pip")
    return root / _PROJECT_DIR[kind]


@dataclass(frozen=True)
class SearchDir:
    """One place searched for recipes or profiles, and which of the three it is."""

    origin: Origin
    path: Path


def search_dirs(kind: str) -> list[SearchDir]:
    """The directories searched for `kind`, first wins: the project's, $LAUNCH_HOME's, the built-ins."""
    found = []
    project = current_project()  # a launch.toml it cannot read is refused here, before its recipes are used
    if project is not None:
        found.append(SearchDir("project", project.root / _PROJECT_DIR[kind]))
    found.append(SearchDir("home", launch_home() / kind))
    found.append(SearchDir("built-in", builtin_dir(kind)))
    return found


@dataclass(frozen=True)
class Entry:
    """A recipe or profile found by name: its file, where it was found, and whether it hides a file
    of the same name further down the search (a project recipe over a built-in one)."""

    name: str
    path: Path
    origin: Origin
    shadows: Path | None = None


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def entries(kind: str) -> dict[str, Entry]:
    """Every YAML of `kind` by name (file stem), the first found in the search order. The same file
    reached twice (the dev clone's built-ins link to its own recipes/) is one entry, not a shadow."""
    found: dict[str, Entry] = {}
    for where in search_dirs(kind):
        for path in _yaml_files(where.path):
            first = found.get(path.stem)
            if first is None:
                found[path.stem] = Entry(path.stem, path, where.origin)
            elif first.shadows is None and not _same_file(first.path, path):
                found[path.stem] = Entry(first.name, first.path, first.origin, path)
    return found


def catalog(kind: str) -> dict[str, Path]:
    """Every YAML of `kind` by name: the file each name resolves to."""
    return {name: entry.path for name, entry in entries(kind).items()}


def looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or os.sep in ref


def searched_text(kind: str) -> str:
    """Where a name of `kind` is looked for, in words, for an error message."""
    places = [f"{d.path} ({d.origin})" for d in search_dirs(kind)]
    if find_project_root() is None:
        places.append(f"no project: no {MARKER} in the working directory or above")
    return "; ".join(places)


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
    raise UserError(
        f"unknown {noun} '{ref}'{did_you_mean(ref, items)}; looked in {searched_text(kind)}; "
        f"valid: {choices_text(sorted(items))}"
    )
