"""The NER fine-tuning job's bad inputs stop before training, through the CLI."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import Launch


def test_bad_inputs_stop_before_training(launch: Launch, tmp_path: Path) -> None:
    cases = [
        (["data.path=/nope/ner.csv"], "data.path: '/nope/ner.csv' is not a file"),
        (["model.name_or_path=./no-such-model"], "model.name_or_path: './no-such-model' does not exist"),
        (["data.dataset=conll"], "data.dataset: 'conll' is not valid; valid: gmb, ag_news"),
        (["data.dataset=ag_news"], "data.dataset: 'ag_news' does not suit task ner; valid: gmb"),
        (["quantization=int4"], "quantization: int4 weights cannot be fully fine-tuned"),
        (["lora.r=8"], "lora: settings given but method is fft"),
    ]
    for overrides, message in cases:
        args = [a for o in overrides for a in ("--set", o)]
        proc = launch("recipe", "tiny_ner", "-c", "local", *args)
        assert proc.returncode == 2 and message in proc.stderr, (overrides, proc.stderr)
    assert not (tmp_path / "runs").exists()
