"""A lab's own job kinds: the module a recipe's `job` names in the user's project, found and checked
at submit without importing it (nothing of the user's code runs in `launch`).

A custom job is `python -m MODULE --run-dir DIR`, like a built-in one. Its module is looked for in the
project root (the directory with launch.toml, searched from the working directory upward), then the
working directory, then sys.path (an installed lab package, or one an editable install's import
hook provides), with `importlib.machinery.PathFinder`: the top-level package first, then down one
name at a time, never running an `__init__.py`.

What submit checks (`check_job_module`):
- the module is a source file (`probe.py`) or a package with `__main__.py`, so `python -m` runs it;
- its top-level package is one directory (an `__init__.py` package, or a namespace in one place), so
  the code snapshot can copy it whole (`project_packages`);
- it honours the run-directory contract. Short of running it, the check is textual: the module's
  source (for a package, any of its own .py files) mentions `--run-dir`, which it parses itself, or
  `read_run`, the job helpers of jobs/entry.py (`read_run`, `read_run_params`) that parse it.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path

from launcher import paths
from launcher.errors import SetupError, UserError
from launcher.kinds.table import custom_module
from launcher.kinds.view import RecipeView

CONTRACT_WORDS = ("--run-dir", "read_run")
"""A module's source naming one of these honours `--run-dir DIR` (see the module docstring)."""


@dataclass(frozen=True)
class JobModule:
    """Where a custom job's module lives: `package` is its top-level package's directory (what the
    snapshot copies), `main` the file `python -m` runs, `sources` the files the contract is read in."""

    module: str
    package: Path
    main: Path
    sources: tuple[Path, ...]


def search_path() -> list[str]:
    """Where a job module is looked for, in order: project root, working directory, sys.path."""
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the working directory was deleted
        raise SetupError("the working directory was deleted; cd into an existing one") from None
    root = paths.find_project_root()
    entries = [str(root)] if root else []
    entries.append(str(cwd))
    entries += [str((cwd / p).resolve()) if p else str(cwd) for p in sys.path if isinstance(p, str)]
    return list(dict.fromkeys(entries))


def _where() -> str:
    root = paths.find_project_root()
    return f"the project ({root}), " if root else f"no project (no {paths.MARKER} above here), "


def _installed(top: str) -> ModuleSpec | None:
    """A top-level package an import hook provides (an editable install's finder): asking for a
    top-level name runs no package code; below it, `find_job_module` walks the directories itself."""
    try:
        return importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None


def find_job_module(module: str, at: str = "job") -> JobModule:
    """Find `module` without importing it; a UserError (prefixed `at`) when `python -m module` could
    not run it from a snapshot: missing, not runnable, or its top-level package not one directory."""
    parts = module.split(".")
    top = parts[0]
    spec = PathFinder.find_spec(top, search_path()) or _installed(top)
    if spec is None:
        raise UserError(
            f"{at}: module '{module}' not found: no package '{top}' in {_where()}the working directory "
            f"or sys.path; valid: a module of your project, run as python -m {module} --run-dir DIR"
        )
    places = list(spec.submodule_search_locations or [])
    if not places:
        raise UserError(
            f"{at}: '{top}' is a single module ({spec.origin}), not a package; valid: a job module "
            f"inside a package directory (the code snapshot copies the package)"
        )
    if len(places) > 1:
        raise UserError(
            f"{at}: package '{top}' is spread over several directories ({', '.join(places)}); valid: "
            "one directory with an __init__.py (the code snapshot copies the package)"
        )
    package = Path(places[0])
    found: ModuleSpec = spec
    for depth in range(1, len(parts)):
        name = ".".join(parts[: depth + 1])
        inside = list(found.submodule_search_locations or [])
        nxt = PathFinder.find_spec(name, inside) if inside else None
        if nxt is None:
            where = (
                f"package '{'.'.join(parts[:depth])}' ({', '.join(inside)})"
                if inside
                else (f"'{'.'.join(parts[:depth])}' ({found.origin}), a module, not a package")
            )
            raise UserError(f"{at}: module '{module}' not found: no '{parts[depth]}' in {where}")
        found = nxt
    return _runnable(module, package, found, at)


def _runnable(module: str, package: Path, spec: ModuleSpec, at: str) -> JobModule:
    inside = list(spec.submodule_search_locations or [])
    if inside:
        main = Path(inside[0], "__main__.py")
        if not main.is_file():
            raise UserError(
                f"{at}: '{module}' is a package without __main__.py ({inside[0]}); valid: a module file "
                f"or a package with __main__.py, run as python -m {module} --run-dir DIR"
            )
        sources = tuple(sorted(Path(inside[0]).glob("*.py")))
        return JobModule(module, package, main, sources)
    origin = Path(spec.origin or "")
    if origin.suffix != ".py":
        raise UserError(f"{at}: '{module}' is not a Python source file ({origin}); valid: MODULE.py")
    return JobModule(module, package, origin, (origin,))


def check_contract(job: JobModule, at: str = "job") -> None:
    """The module takes `--run-dir DIR` (read from its source, see the module docstring)."""
    for source in job.sources:
        try:
            text = source.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise UserError(f"{at}: cannot read {source}: {err.strerror}") from None
        if any(word in text for word in CONTRACT_WORDS):
            return
    raise UserError(
        f"{at}: {job.main} does not take --run-dir (the launcher runs python -m {job.module} --run-dir "
        "DIR); parse --run-dir, or start with jobs.entry.read_run_params(argv, description)"
    )


def check_job_module(module: str, at: str = "job") -> JobModule:
    """Everything submit checks of a custom job's module (see the module docstring)."""
    job = find_job_module(module, at)
    check_contract(job, at)
    return job


def project_packages(recipe: RecipeView) -> list[Path]:
    """The directories of the user's packages a recipe's job runs from, for the code snapshot: [] for
    a built-in kind (the launcher's own `launcher/` and `jobs/` go in every snapshot), else the
    top-level package of its module as found from here (a UserError when it cannot be)."""
    module = custom_module(recipe.job)
    if module is None:
        return []
    return [find_job_module(module).package.resolve()]
