"""Bad spaCy recipes are one line, exit 2, nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Launch


@pytest.mark.parametrize(
    ("recipe", "overrides", "message"),
    [
        ("spacy_lg", [], "model.name_or_path: spaCy pipeline en_core_web_lg is not installed here; install "
                         "it with: python -m spacy download en_core_web_lg"),
        ("spacy_sm", ["resources.gpus_per_node=1"], "resources.gpus_per_node: 1 is a GPU setting"),
        ("spacy_sm", ["method=lora"], "method: lora is a GPU setting"),
        ("spacy_sm", ["model.dtype=bf16"], "model.dtype: bf16 is a GPU setting"),
        ("spacy_sm", ["quantization.mode=int8"], "quantization: int8 is a GPU setting"),
        ("spacy_sm", ["model.name_or_path=en_core_web_xl"], "'en_core_web_xl' is not a spaCy pipeline"),
        ("spacy_sm", ["model.name_or_path=./nowhere"], "'./nowhere' does not exist"),
        ("spacy_sm", ["train.epochs=1.5"], "train.epochs: spaCy trains whole epochs"),
        ("spacy_sm", ["spacy.exclude=[ner]"], "spacy.exclude: ner is the pipe being trained"),
        ("spacy_sm", ["spacy.droput=0.2"], "spacy.droput"),
        ("tiny_ner", ["spacy.dropout=0.2"], "spacy: settings given but job is train"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_created(
    launch: Launch, tmp_path: Path, recipe: str, overrides: list[str], message: str
) -> None:
    args = [a for o in overrides for a in ("--set", o)]
    proc = launch("recipe", recipe, "--cluster", "local", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
