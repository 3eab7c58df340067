"""Every user mistake: one line naming file, key and valid choices; exit 2; nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Launch


def _nothing_created(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a run directory was created"
    db = tmp_path / "home" / "registry.db"
    if db.exists():
        import sqlite3

        assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _expect_error(launch: Launch, tmp_path: Path, args: list[str], *fragments: str) -> str:
    proc = launch(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    _nothing_created(tmp_path)
    return lines[0]


GOOD = """\
# test recipe
# launch recipe x --cluster local
name: mine
job: smoke
model: {name_or_path: none}
resources: {gpus_per_node: 0}
"""


def test_unknown_key(launch: Launch, tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", GOOD + "train: {lrr: 1.0}\n")
    _expect_error(
        launch, tmp_path, ["recipe", path, "--cluster", "local"],
        f"{path}: train.lrr: unknown key 'lrr' (did you mean 'lr'?); valid keys: epochs",
    )  # fmt: skip


def test_unknown_top_level_key(launch: Launch, tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", GOOD + "traine: {lr: 1.0}\n")
    _expect_error(launch, tmp_path, ["recipe", path, "-c", "local"], "traine: unknown key", "'train'")


def test_wrong_type(launch: Launch, tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", GOOD + "train: {micro_batch_size: two}\n")
    _expect_error(
        launch, tmp_path, ["recipe", path, "-c", "local"],
        f"{path}: train.micro_batch_size: Input should be a valid integer", "'two'",
    )  # fmt: skip


def test_malformed_yaml(launch: Launch, tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", GOOD + "train: {lr: [1.0\n")
    _expect_error(launch, tmp_path, ["recipe", path, "-c", "local"], f"{path}: line", "malformed YAML")


def test_unknown_recipe(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "ds7b_ff", "--cluster", "a800"],
        "unknown recipe 'ds7b_ff' (did you mean 'ds7b_fft'?)", "valid: ",
    )  # fmt: skip


def test_unknown_cluster(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "tiny_smoke", "--cluster", "a80"],
        "unknown cluster 'a80' (did you mean 'a800'?)", "valid: 2080ti, a800",
    )  # fmt: skip


def test_set_on_missing_key(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "tiny_smoke", "-c", "local", "--set", "train.learning_rate=1e-4"],
        "--set train.learning_rate: unknown key 'learning_rate'", "valid keys: epochs",
    )  # fmt: skip


def test_set_with_bad_value(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "tiny_smoke", "-c", "local", "--set", "method=ftt"],
        "method: 'ftt' is not valid (did you mean 'fft'?); valid: fft, lora, qlora",
    )  # fmt: skip


def test_too_many_gpus_per_node(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "ds7b_fft", "-c", "a800", "--set", "resources.gpus_per_node=16"],
        "ds7b_fft.yaml: resources.gpus_per_node: 16 is more than the 8 GPUs per node", "valid: 0-8",
    )  # fmt: skip


def test_too_many_nodes(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "ds7b_fft", "-c", "a800", "--set", "resources.nodes=6"],
        "resources.nodes: 6 is more than cluster 'a800' allows; valid: 1-5",
    )  # fmt: skip


def test_too_much_time(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "ds7b_fft", "-c", "a800", "--set", "resources.time=300:00:00"],
        "resources.time: 300:00:00 is longer than the 240:00:00 limit of cluster 'a800'",
    )  # fmt: skip


def test_bf16_on_gpu_without_bf16(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "ds1.5b_eval", "-c", "2080ti", "--set", "model.dtype=bf16"],
        "model.dtype: bf16 is not supported by the GPUs of cluster '2080ti'", "valid: fp16, fp32 or auto",
    )  # fmt: skip


def test_qlora_without_int4(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path,
        ["recipe", "llama4_scout_qlora", "-c", "a800", "--set", "quantization.mode=none"],
        "llama4_scout_qlora.yaml: method: qlora needs quantization: int4 (got none)",
    )  # fmt: skip


def test_int4_with_fft(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "ds7b_fft", "-c", "a800", "--set", "quantization=int4"],
        "quantization: int4 weights cannot be fully fine-tuned",
    )  # fmt: skip


def test_lora_settings_without_lora(launch: Launch, tmp_path: Path) -> None:
    _expect_error(
        launch, tmp_path, ["recipe", "ds7b_fft", "-c", "a800", "--set", "lora.r=8"],
        "lora: settings given but method is fft",
    )  # fmt: skip


def test_gpu_recipe_on_cpu_only_cluster(launch: Launch, tmp_path: Path) -> None:
    profile = _write(
        tmp_path, "cpu.yaml", "# cpu\nname: cpu\nbackend: local\ngpu: null\nlocal: {gpu_ids: []}\n"
    )
    _expect_error(
        launch, tmp_path, ["recipe", "tiny_smoke", "-c", profile, "--set", "resources.gpus_per_node=1"],
        "resources.gpus_per_node: 1 but cluster 'cpu' has no GPUs", "--set resources.gpus_per_node=0",
    )  # fmt: skip


def test_unknown_key_in_cluster_profile(launch: Launch, tmp_path: Path) -> None:
    profile = _write(tmp_path, "c.yaml", "name: c\nbackend: slurm\nslurm: {partiton: gpu}\n")
    _expect_error(
        launch, tmp_path, ["recipe", "tiny_smoke", "-c", profile],
        f"{profile}: slurm.partiton: unknown key 'partiton' (did you mean 'partition'?)",
    )  # fmt: skip


def test_job_without_module_yet(launch: Launch, tmp_path: Path) -> None:
    proc = launch("recipe", "agnews_zero_shot", "-c", "local")
    if proc.returncode == 2 and "has no job module" in proc.stderr:
        _nothing_created(tmp_path)
    else:  # the classify job exists: its recipe must at least get past validation
        assert "unknown key" not in proc.stderr


@pytest.mark.parametrize("verb", [["status", "nope"], ["logs", "nope"], ["cancel", "nope"]])
def test_unknown_run(launch: Launch, tmp_path: Path, verb: list[str]) -> None:
    _expect_error(launch, tmp_path, verb, "unknown run 'nope'")
