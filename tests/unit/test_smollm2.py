"""The README's main model is pinned: the hub name resolves to the installed GGUF, and the main
job's pin is the packaged version that requirements/models.txt includes."""

from __future__ import annotations

from pathlib import Path

from launcher import packaged
from launcher.config.recipe import load_recipe
from tests.support.paths import ROOT

HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _pins(name: str) -> list[str]:
    text = (ROOT / "requirements" / name).read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_the_hub_name_resolves_to_the_installed_gguf() -> None:
    path = Path(packaged.resolve(HUB))
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert packaged.pretrained_source(str(path)) == (str(path.parent), {"gguf_file": path.name})
    assert packaged.pretrained_source("/some/dir") == ("/some/dir", {})
    assert load_recipe("smollm2_ner").model.name_or_path == HUB


def test_the_main_jobs_pin_is_the_packaged_version_and_models_txt_includes_it() -> None:
    (pin,) = _pins("smollm2.txt")
    assert pin == (
        f"{packaged.PACKAGED[HUB][0]} "
        "--hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    )
    assert "-r smollm2.txt" in _pins("models.txt")  # the test install gets it too
