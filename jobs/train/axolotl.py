"""Training through axolotl: write the data as input_output segments, run `axolotl train`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from launcher.config.recipe import Recipe
from launcher.runs.checkpoints import checkpoint_dir, complete_checkpoints, mark_complete, step_of


def write_segments(recipe: Recipe, run_dir: Path) -> Path:
    """The train split as axolotl `input_output` rows: the prompt unlearned, the answer learned."""
    from jobs.data.ner import ner_examples
    from jobs.modeling import load_tokenizer

    tokenizer = load_tokenizer(recipe)
    train, _ = ner_examples(recipe, tokenizer)
    out = run_dir / "data" / "train.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    eos = tokenizer.eos_token or ""
    with open(out, "w") as fh:
        for ex in train:
            row = {
                "segments": [{"label": False, "text": ex.prompt}, {"label": True, "text": ex.answer + eos}]
            }
            fh.write(json.dumps(row) + "\n")
    return out


def run_axolotl(recipe: Recipe, run_dir: Path) -> int:
    if shutil.which("axolotl") is None:
        print(
            "error: engine axolotl needs the axolotl package: pip install 'recipe-launcher[axolotl]'",
            file=sys.stderr,
        )
        return 2
    write_segments(recipe, run_dir)
    code = subprocess.call(["axolotl", "train", str(run_dir / "axolotl.yaml")])
    done = set(complete_checkpoints(run_dir))
    for path in (run_dir / "checkpoints").glob("checkpoint-*"):
        step = step_of(path)
        finished = (path / "trainer_state.json").exists()
        if step is not None and path == checkpoint_dir(run_dir, step) and path not in done and finished:
            mark_complete(path, step=step)
    return code
