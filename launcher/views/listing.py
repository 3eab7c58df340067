"""Rich tables for `launch recipes` and `launch clusters`: one row per name, where it comes from
(project, home or built-in), and the directories searched under the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from launcher import paths
from launcher.config.yamlio import Loader
from launcher.kinds.table import kind_named


def header_comment(path: Path) -> str:
    """The first sentence of a YAML file's header comment: its purpose."""
    words: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#") or line.lstrip("# ").startswith("launch "):
                break
            words.append(line.lstrip("#").strip())
    text = " ".join(words)
    end = text.find(": ") if 0 < text.find(": ") < text.find(". ") else text.find(". ")
    return text if end < 0 else text[:end]


def _quick(path: Path) -> dict[str, Any]:
    """The file's top-level keys, or `_error` saying why it cannot be read (the row shows it)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
    except UnicodeDecodeError:
        return {"_error": "error: not UTF-8 text"}
    except OSError as err:
        return {"_error": f"error: cannot read: {err.strerror}"}
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None)
        return {"_error": f"error: malformed YAML{f' ({problem})' if problem else ''}"}
    return data if isinstance(data, dict) else {"_error": "error: not a mapping"}


def _origin(entry: paths.Entry, verbose: bool) -> str:
    """`project`, `home` or `built-in` (a `*` when it hides a file of the same name further down
    the search); with `verbose`, the file's path after it."""
    text = entry.origin + ("*" if entry.shadows else "")
    return f"{text} {entry.path}" if verbose else text


def _searched(kind: str, found: dict[str, paths.Entry], verbose: bool) -> str:
    """The caption: the project and $LAUNCH_HOME directories searched (the built-ins' with
    `verbose`), and what a `*` means when a row has one."""
    lines = []
    if paths.find_project_root() is None:
        lines.append(f"project: none (no {paths.MARKER} here or above: launch init makes one)")
    for where in paths.search_dirs(kind):
        if where.origin != "built-in" or verbose:
            missing = "" if where.path.is_dir() else " (none)"
            lines.append(f"{where.origin}: {where.path}{missing}")
    if any(entry.shadows for entry in found.values()):
        lines.append("*: hides the file of the same name further down (project, home, built-in)")
    return "\n".join(lines)


def _table(title: str, columns: list[str], rows: list[list[str]], caption: str | None = None) -> Table:
    """Every column as wide as its longest cell, but the last, which is cut to fit the terminal."""
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    used = 1
    for i, col in enumerate(columns[:-1]):
        width = max([len(col)] + [len(r[i]) for r in rows])
        table.add_column(col, no_wrap=True, min_width=width)
        used += width + 3
    room = max(12, Console().width - used - 4)
    table.add_column(columns[-1], no_wrap=True, overflow="ellipsis", max_width=room)
    for row in rows:
        table.add_row(*row)
    return table


def recipe_table(verbose: bool = False) -> Table:
    rows = []
    found = paths.entries("recipes")
    for name, entry in sorted(found.items()):
        path = entry.path
        data = _quick(path)
        res = data.get("resources") or {}
        per_node = res.get("gpus_per_node", 1)
        gpus = f"{res.get('nodes', 1)}x{per_node}" if per_node else "cpu"
        model = str((data.get("model") or {}).get("name_or_path", "")).rsplit("/", 1)[-1]
        model = model if len(model) <= 24 else model[:23] + "…"  # every column still fits 80
        job = str(data.get("job", "?"))
        kind = kind_named(job)
        if kind is not None and kind.custom and kind.module != job:  # a registered name: its module too
            job = f"{job} ({kind.module})"
        if kind is not None and kind.methods:
            job = f"{job}/{data.get('method', 'fft')}"
        if kind is not None and not kind.implemented:
            job += " (not yet)"
        if "_error" in data:
            job = gpus = ""
        what = data.get("_error") or header_comment(path)
        rows.append([name, _origin(entry, verbose), job, gpus, model, what])
    columns = ["name", "from", "job", "GPUs", "model", "what"]
    return _table("recipes", columns, rows, _searched("recipes", found, verbose))


def cluster_table(verbose: bool = False) -> Table:
    rows = []
    found = paths.entries("clusters")
    for name, entry in sorted(found.items()):
        path = entry.path
        data = _quick(path)
        gpu = data.get("gpu")
        if isinstance(gpu, dict):
            gpus = f"{gpu.get('per_node')}x {gpu.get('type') or 'GPU'} {gpu.get('memory_gb')} GB"
        else:
            gpus = "detected" if gpu == "auto" else "none"
        backend = str(data.get("backend", "?"))
        if "_error" in data:
            backend = gpus = ""
        what = data.get("_error") or header_comment(path)
        rows.append([name, _origin(entry, verbose), backend, gpus, what])
    columns = ["name", "from", "backend", "GPUs per node", "what"]
    return _table("clusters", columns, rows, _searched("clusters", found, verbose))
