"""Rich tables for `launch recipes` and `launch clusters`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from launcher import paths
from launcher.config.yamlio import Loader
from launcher.kinds.table import KINDS


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


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    """Every column as wide as its longest cell, but the last, which is cut to fit the terminal."""
    table = Table(title=title, title_justify="left")
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


def recipe_table() -> Table:
    rows = []
    for name, path in sorted(paths.catalog("recipes").items()):
        data = _quick(path)
        res = data.get("resources") or {}
        per_node = res.get("gpus_per_node", 1)
        gpus = f"{res.get('nodes', 1)}x{per_node}" if per_node else "cpu"
        model = str((data.get("model") or {}).get("name_or_path", "")).rsplit("/", 1)[-1]
        model = model if len(model) <= 24 else model[:23] + "…"  # every column still fits 80
        job = str(data.get("job", "?"))
        kind = KINDS.get(job)
        if kind is not None and kind.methods:
            job = f"{job}/{data.get('method', 'fft')}"
        if kind is not None and not kind.implemented:
            job += " (not yet)"
        if "_error" in data:
            job = gpus = ""
        rows.append([name, job, gpus, model, data.get("_error") or header_comment(path)])
    return _table("recipes", ["name", "job", "GPUs", "model", "what"], rows)


def cluster_table() -> Table:
    rows = []
    for name, path in sorted(paths.catalog("clusters").items()):
        data = _quick(path)
        gpu = data.get("gpu")
        if isinstance(gpu, dict):
            gpus = f"{gpu.get('per_node')}x {gpu.get('type') or 'GPU'} {gpu.get('memory_gb')} GB"
        else:
            gpus = "detected" if gpu == "auto" else "none"
        backend = str(data.get("backend", "?"))
        if "_error" in data:
            backend = gpus = ""
        rows.append([name, backend, gpus, data.get("_error") or header_comment(path)])
    return _table("clusters", ["name", "backend", "GPUs per node", "what"], rows)
