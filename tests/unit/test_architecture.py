"""The architecture of launcher/ and jobs/, read from the source with `ast` (nothing is imported).

The rules (issue #21): no import cycle between files; the layers (views and the research loop talk
to backends only through their contract, nothing imports the CLI, launcher/ never imports jobs/,
jobs/ never imports the control plane's upper layers, no job kind imports another's modules); no
module over 600 lines; at most a dozen top-level modules in launcher/; every package's docstring
names its modules.

An import is an edge from the importing file to the file of the module it names: the deepest
module that exists (`from launcher.cli import common` is launcher/cli/common.py, `from launcher.cli
import app` is launcher/cli/__init__.py). Parent packages that Python also runs on the way are not
edges: they are not what the file asked for. Every import counts wherever it is written: at the
top, inside a function (a deferred import is still a dependency, only a later one), and under
`if TYPE_CHECKING:` (mypy resolves it, so the layering must allow it just the same).
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("launcher", "jobs")
JOB_KINDS = ("train", "evaluate", "classify", "spacy", "token_classification", "smoke", "bench")
BACKEND_CONTRACT = frozenset({"launcher.backends.base", "launcher.backends.spec"})
JOBS_NEVER_IMPORT = ("launcher.cli", "launcher.backends", "launcher.loop", "launcher.views")
MAX_LINES = 600
MAX_TOP_LEVEL = 12

Graph = dict[str, set[str]]


@dataclass(frozen=True)
class Module:
    name: str  # dotted: launcher.cli.common; a package is its __init__: launcher.cli
    path: Path
    is_package: bool


# --- reading the tree ----------------------------------------------------------------------------


def module_name(root: Path, path: Path) -> str:
    """`launcher/cli/common.py` -> `launcher.cli.common`; `launcher/cli/__init__.py` -> `launcher.cli`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Module]:
    """Every .py file under root/<package>, by module name."""
    found: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(root, path)
            found[name] = Module(name, path, path.name == "__init__.py")
    return found


def _in(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def resolve(name: str, modules: dict[str, Module]) -> str | None:
    """The deepest known module that `name` is or lies in (`pkg.mod.func` -> `pkg.mod`); None outside."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _absolute(node: ast.ImportFrom, module: Module) -> str:
    """The package a `from ... import` reads from, relative levels made absolute against `module`."""
    if not node.level:
        return node.module or ""
    package = module.name.split(".")
    if not module.is_package:
        package.pop()
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package)


def imports_of(module: Module, modules: dict[str, Module]) -> set[str]:
    """The known modules `module` imports, itself excluded. `ast.walk` visits every node, so imports
    inside functions and `if TYPE_CHECKING:` blocks count. `import a.b.c` is the deepest of those
    that is a module; `from pkg import x` is `pkg.x` when that is a module, else `pkg` (its __init__)."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
    asked: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            asked.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module)
            asked.extend(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    targets = {target for name in asked if (target := resolve(name, modules)) is not None}
    targets.discard(module.name)
    return targets


def import_graph(modules: dict[str, Module]) -> Graph:
    return {name: imports_of(module, modules) for name, module in modules.items()}


# --- (a) cycles ----------------------------------------------------------------------------------


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's components with more than one module, each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def shortest_cycle_through(graph: Graph, start: str, within: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside `within` (breadth first), as its modules."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, set()) & within):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise ValueError(f"no cycle through {start}")


def cycles(graph: Graph) -> list[str]:
    """Every module in a cycle, with the shortest cycle through it, as `a -> b -> a`; one line per
    distinct cycle (a rotation of one already listed is the same cycle)."""
    found: dict[tuple[str, ...], str] = {}
    for component in strongly_connected(graph):
        for start in component:
            chain = shortest_cycle_through(graph, start, set(component))
            ring = chain[:-1]
            turn = ring.index(min(ring))
            key = tuple(ring[turn:] + ring[:turn])
            found.setdefault(key, " -> ".join([*key, key[0]]))
    return sorted(found.values())


# --- (b) layers ----------------------------------------------------------------------------------


def layer_violations(graph: Graph, job_kinds: Iterable[str] = JOB_KINDS) -> list[str]:
    """Each import that crosses a layer, as `importer -> imported: rule`."""
    kinds = tuple(job_kinds)
    out = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            rule = _broken_rule(source, target, kinds)
            if rule:
                out.append(f"{source} -> {target}: {rule}")
    return out


def _job_kind(name: str, kinds: tuple[str, ...]) -> str | None:
    return next((kind for kind in kinds if _in(name, f"jobs.{kind}")), None)


def _broken_rule(source: str, target: str, kinds: tuple[str, ...]) -> str | None:
    upper = _in(source, "launcher.views") or _in(source, "launcher.loop")
    if upper and _in(target, "launcher.backends") and target not in BACKEND_CONTRACT:
        return "views and the loop reach backends only through launcher.backends.base/spec"
    if _in(target, "launcher.cli") and not _in(source, "launcher.cli"):
        return "nothing imports the CLI"
    if _in(source, "launcher") and _in(target, "jobs"):
        return "launcher/ never imports jobs/"
    if _in(source, "jobs") and any(_in(target, layer) for layer in JOBS_NEVER_IMPORT):
        return "jobs/ never imports launcher.cli, .backends, .loop or .views"
    mine, theirs = _job_kind(source, kinds), _job_kind(target, kinds)
    if mine and theirs and mine != theirs:
        return "a job kind never imports another's modules (shared code lives in jobs' helpers)"
    return None


# --- (c) to (e) ----------------------------------------------------------------------------------


def oversized(root: Path, modules: dict[str, Module], limit: int = MAX_LINES) -> list[str]:
    """Each module over `limit` lines, as `path: N lines` (path relative to root)."""
    out = []
    for module in modules.values():
        lines = len(module.path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            out.append(f"{module.path.relative_to(root)}: {lines} lines")
    return sorted(out)


def top_level_modules(package_dir: Path) -> list[str]:
    """The modules directly in a package: its .py files (not __init__) and its sub-packages."""
    files = [p.stem for p in package_dir.glob("*.py") if p.name != "__init__.py"]
    packages = [p.name for p in package_dir.iterdir() if (p / "__init__.py").is_file()]
    return sorted(files + packages)


def undocumented_modules(package_dir: Path) -> list[str]:
    """The modules of a package (`__main__` aside: it is the entry point, not a part) that the
    package's docstring does not name as a word."""
    doc = ast.get_docstring(ast.parse((package_dir / "__init__.py").read_text(encoding="utf-8"))) or ""
    return [
        name
        for name in top_level_modules(package_dir)
        if name != "__main__" and not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", doc)
    ]


def package_docstring_gaps(root: Path, packages: Iterable[str] = PACKAGES) -> list[str]:
    """Each package __init__ whose docstring leaves out some of its modules, as `path: does not name ...`."""
    out = []
    for package in packages:
        for init in sorted((root / package).rglob("__init__.py")):
            missing = undocumented_modules(init.parent)
            if missing:
                out.append(f"{init.relative_to(root)}: does not name {', '.join(missing)}")
    return out


# --- the checks on this repository ---------------------------------------------------------------

MODULES = discover(ROOT)
GRAPH = import_graph(MODULES)


def _listed(title: str, items: list[str]) -> str:
    return f"{title} ({len(items)}):\n" + "\n".join(f"  {item}" for item in items)


def test_no_import_cycles() -> None:
    found = cycles(GRAPH)
    assert not found, _listed("import cycles between files", found)


def test_layers() -> None:
    found = layer_violations(GRAPH)
    assert not found, _listed("imports across layers", found)


def test_no_module_over_600_lines() -> None:
    found = oversized(ROOT, MODULES)
    assert not found, _listed(f"modules over {MAX_LINES} lines", found)


def test_launcher_has_at_most_a_dozen_top_level_modules() -> None:
    """The issue's rule: a dozen modules at the top (errors, paths and the like), the rest in packages
    by concern. Packages are counted apart: each has its own docstring naming its modules (below)."""
    found = [
        name for name in top_level_modules(ROOT / "launcher") if (ROOT / "launcher" / f"{name}.py").is_file()
    ]
    assert len(found) <= MAX_TOP_LEVEL, _listed(
        f"launcher/ top-level modules, {MAX_TOP_LEVEL} at most", found
    )


def test_every_package_docstring_names_its_modules() -> None:
    found = package_docstring_gaps(ROOT)
    assert not found, _listed("package docstrings that do not name their modules", found)


def test_the_walk_sees_every_file_and_real_edges() -> None:
    """A guard against a checker that passes because it reads nothing."""
    assert {"launcher.cli", "launcher.cli.common", "launcher.backends.base", "jobs.train.job"} <= set(MODULES)
    assert "launcher.cli.common" in GRAPH["launcher.cli"]


# --- the checker itself, on a tiny tree checked by hand ------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_on_a_synthetic_tree(tmp_path: Path) -> None:
    """launcher.a imports launcher.b at the top; launcher.b imports launcher.a inside a function: a
    cycle. launcher.views.v imports launcher.backends (the package: a name from its __init__), its
    contract module base (allowed) and, under TYPE_CHECKING, launcher.backends.slurm (not allowed).
    launcher.c imports jobs/. jobs.train.job imports, relatively, its own helper and another kind's
    job. launcher.big has 601 lines. launcher/__init__ names a, b and views, not backends, big or c."""
    _write(tmp_path, {
        "launcher/__init__.py": '"""a and b; views."""\n',
        "launcher/a.py": "import launcher.b\n",
        "launcher/b.py": "def f():\n    from launcher import a\n    return a\n",
        "launcher/c.py": "from jobs.train.job import run\n",
        "launcher/big.py": "x = 1\n" * 601,
        "launcher/views/__init__.py": '"""v."""\n',
        "launcher/views/v.py": (
            "from typing import TYPE_CHECKING\n"
            "from launcher.backends import get_backend\n"
            "from launcher.backends import base\n"
            "if TYPE_CHECKING:\n    from launcher.backends.slurm import SlurmBackend\n"
        ),
        "launcher/backends/__init__.py": '"""base, slurm."""\ndef get_backend(): ...\n',
        "launcher/backends/base.py": "",
        "launcher/backends/slurm.py": "class SlurmBackend: ...\n",
        "jobs/__init__.py": '"""train, classify."""\n',
        "jobs/train/__init__.py": '"""job, helper."""\n',
        "jobs/train/job.py": "from . import helper\nfrom ..classify import job\ndef run(): ...\n",
        "jobs/train/helper.py": "",
        "jobs/classify/__init__.py": '"""job."""\n',
        "jobs/classify/job.py": "",
    })  # fmt: skip
    modules = discover(tmp_path)
    graph = import_graph(modules)

    assert graph["launcher.a"] == {"launcher.b"}
    assert graph["launcher.b"] == {"launcher.a"}  # `from launcher import a` is the module, not __init__
    backends = {"launcher.backends", "launcher.backends.base", "launcher.backends.slurm"}
    assert graph["launcher.views.v"] == backends
    assert graph["jobs.train.job"] == {"jobs.train.helper", "jobs.classify.job"}
    assert cycles(graph) == ["launcher.a -> launcher.b -> launcher.a"]
    assert layer_violations(graph, job_kinds=("train", "classify")) == [
        "jobs.train.job -> jobs.classify.job: a job kind never imports another's modules (shared code "
        "lives in jobs' helpers)",
        "launcher.c -> jobs.train.job: launcher/ never imports jobs/",
        "launcher.views.v -> launcher.backends: views and the loop reach backends only through "
        "launcher.backends.base/spec",
        "launcher.views.v -> launcher.backends.slurm: views and the loop reach backends only through "
        "launcher.backends.base/spec",
    ]
    assert oversized(tmp_path, modules) == ["launcher/big.py: 601 lines"]
    assert top_level_modules(tmp_path / "launcher") == ["a", "b", "backends", "big", "c", "views"]
    assert undocumented_modules(tmp_path / "launcher") == ["backends", "big", "c"]
    assert package_docstring_gaps(tmp_path) == ["launcher/__init__.py: does not name backends, big, c"]


def test_a_longer_cycle_is_one_chain_from_its_smallest_module() -> None:
    graph = {"x": {"y"}, "y": {"z"}, "z": {"x", "w"}, "w": set()}
    assert cycles(graph) == ["x -> y -> z -> x"]
