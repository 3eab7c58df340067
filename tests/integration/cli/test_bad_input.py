"""Every user mistake: one line naming file or argument, key and valid choices; exit 2; nothing
created. Every problem of the machine (full disk, unusable $LAUNCH_HOME or registry): one line,
exit 1, nothing created. One table of cases, each a named test."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.cli import Launch

Setup = Callable[[Path], contextlib.AbstractContextManager[None]]


def _nothing_created(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), f"created: {sorted(runs.rglob('*'))}"
    db = tmp_path / "home" / "registry.db"
    if db.is_file():
        try:
            count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        except sqlite3.DatabaseError:
            return  # the damaged registry a case planted
        assert count == 0, "a registry row was written"
    assert not list(tmp_path.rglob("pwned")), "a hostile key ran a command"


@dataclass(frozen=True)
class Bad:
    """`launch ARGS` must fail with `code`, `lines` lines on stderr, each fragment in them and
    none of `absent`. `{tmp}` in args, files and fragments is the test's tmp_path; `files` are
    written there first (bytes as they are); `setup` prepares the world around the call."""

    args: tuple[str, ...]
    fragments: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    code: int = 2
    lines: int = 1
    setup: Setup | None = None


def case(
    name: str,
    args: list[str],
    *fragments: str,
    files: dict[str, str | bytes] | None = None,
    absent: tuple[str, ...] = (),
    code: int = 2,
    lines: int = 1,
    setup: Setup | None = None,
) -> object:
    bad = Bad(tuple(args), fragments, files or {}, absent, code, lines, setup)
    return pytest.param(bad, id=name)


GOOD = """\
# test recipe
# launch recipe x --cluster local
name: mine
job: smoke
model: {name_or_path: none}
resources: {gpus_per_node: 0}
"""
CPU_PROFILE = "# cpu\nname: cpu\nbackend: local\ngpu: null\nlocal: {gpu_ids: []}\n"
HOSTILE = "X;touch {tmp}/pwned;Y"
NOT_NAME = "is not a valid environment variable name; valid: letters, digits and _"


@contextlib.contextmanager
def _home_is_a_file(tmp: Path) -> Iterator[None]:
    (tmp / "home").write_text("not a directory\n")
    yield


@contextlib.contextmanager
def _damaged_registry(tmp: Path) -> Iterator[None]:
    (tmp / "home").mkdir()
    (tmp / "home" / "registry.db").write_bytes(b"this is not a SQLite database\n" * 200)
    yield


@contextlib.contextmanager
def _mounted(path: Path, options: str) -> Iterator[None]:
    """A tmpfs at `path` (root can ignore permissions, so read-only and full are mounts)."""
    assert os.geteuid() == 0, "these cases mount a tmpfs: run the tests as root (as CI does)"
    path.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _read_only_home(tmp: Path) -> contextlib.AbstractContextManager[None]:
    return _mounted(tmp / "home", "ro,size=64k")


def _full_runs_root(tmp: Path) -> contextlib.AbstractContextManager[None]:
    return _mounted(tmp / "runs", "size=4k")  # one page: the first file of a run fills it


SMOKE = ["recipe", "tiny_smoke", "-c", "local"]

CASES = [
    # ------------------------------------------------------------------ schema: keys and types
    case(
        "unknown_key",
        ["recipe", "{tmp}/bad.yaml", "--cluster", "local"],
        "{tmp}/bad.yaml: train.lrr: unknown key 'lrr' (did you mean 'lr'?); valid keys: epochs",
        files={"bad.yaml": GOOD + "train: {lrr: 1.0}\n"},
    ),
    case(
        "unknown_top_level_key",
        ["recipe", "{tmp}/bad.yaml", "-c", "local"],
        "traine: unknown key",
        "'train'",
        files={"bad.yaml": GOOD + "traine: {lr: 1.0}\n"},
    ),
    case(
        "wrong_type",
        ["recipe", "{tmp}/bad.yaml", "-c", "local"],
        "{tmp}/bad.yaml: train.micro_batch_size: Input should be a valid integer",
        "'two'",
        files={"bad.yaml": GOOD + "train: {micro_batch_size: two}\n"},
    ),
    case(
        "malformed_yaml",
        ["recipe", "{tmp}/bad.yaml", "-c", "local"],
        "{tmp}/bad.yaml: line",
        "malformed YAML",
        files={"bad.yaml": GOOD + "train: {lr: [1.0\n"},
    ),
    case(
        "duplicate_top_level_key",
        ["recipe", "{tmp}/bad.yaml", "-c", "local"],
        "{tmp}/bad.yaml: line 8",
        "malformed YAML: duplicate key 'train'",
        files={"bad.yaml": GOOD + "train: {lr: 1.0}\ntrain: {epochs: 2}\n"},
    ),
    case(
        "duplicate_nested_key",
        ["recipe", "{tmp}/bad.yaml", "-c", "local"],
        "duplicate key 'lr'",
        files={"bad.yaml": GOOD + "train: {lr: 1.0, lr: 2.0}\n"},
    ),
    case(
        "duplicate_key_in_cluster_profile",
        ["recipe", "tiny_smoke", "-c", "{tmp}/c.yaml"],
        "{tmp}/c.yaml: line",
        "duplicate key 'backend'",
        files={"c.yaml": CPU_PROFILE + "backend: slurm\n"},
    ),
    case(
        "not_utf8_recipe",
        ["recipe", "{tmp}/bad.yaml", "-c", "local"],
        "{tmp}/bad.yaml: not UTF-8 text (byte 0xff at offset",
        "save the file as UTF-8",
        files={"bad.yaml": GOOD.encode() + b"description: caf\xff\n"},
    ),
    case(
        "not_utf8_cluster_profile",
        ["recipe", "tiny_smoke", "-c", "{tmp}/c.yaml"],
        "{tmp}/c.yaml: not UTF-8",
        files={"c.yaml": b"# \xe9t\xe9\n" + CPU_PROFILE.encode()},
    ),
    case(
        "unknown_recipe",
        ["recipe", "ds7b_ff", "--cluster", "a800"],
        "unknown recipe 'ds7b_ff' (did you mean 'ds7b_fft'?)",
        "valid: ",
    ),
    case(
        "unknown_cluster",
        ["recipe", "tiny_smoke", "--cluster", "a80"],
        "unknown cluster 'a80' (did you mean 'a800'?)",
        "valid: 2080ti, a800",
    ),
    case(
        "unknown_key_in_cluster_profile",
        ["recipe", "tiny_smoke", "-c", "{tmp}/c.yaml"],
        "{tmp}/c.yaml: slurm.partiton: unknown key 'partiton' (did you mean 'partition'?)",
        files={"c.yaml": "name: c\nbackend: slurm\nslurm: {partiton: gpu}\n"},
    ),
    case(
        "misspelt_key_in_a_section_that_is_a_union",
        ["recipe", "tiny_smoke", "-c", "{tmp}/c.yaml"],
        "{tmp}/c.yaml: gpu.memry_gb: unknown key 'memry_gb' (did you mean 'memory_gb'?)",
        "valid keys: type, memory_gb",
        absent=("GpuSpec", "valid: auto"),
        files={"c.yaml": "name: c\nbackend: local\ngpu: {memry_gb: 8, per_node: 1}\n"},
    ),
    case(
        "bad_choice_for_a_union",
        ["recipe", "tiny_smoke", "-c", "{tmp}/c.yaml"],
        "{tmp}/c.yaml: gpu: 'autoo' is not valid (did you mean 'auto'?); valid: auto",
        files={"c.yaml": "name: c\nbackend: local\ngpu: autoo\n"},
    ),
    case(
        "bad_value_for_a_union_of_numbers",
        [*SMOKE, "--set", "data.validation_size=x"],
        "--set data.validation_size: Input should be a valid number",
    ),
    # ------------------------------------------------------------------ --set: blamed on the argument
    case(
        "set_on_missing_key",
        [*SMOKE, "--set", "train.learning_rate=1e-4"],
        "--set train.learning_rate: unknown key 'learning_rate'",
        "valid keys: epochs",
    ),
    case(
        "set_with_bad_value",
        [*SMOKE, "--set", "method=ftt"],
        "--set method: 'ftt' is not valid (did you mean 'fft'?); valid: fft, lora, qlora",
        absent=("tiny_smoke.yaml",),
    ),
    case(
        "set_with_wrong_type",
        [*SMOKE, "--set", "train.epochs=abc"],
        "--set train.epochs: Input should be a valid number",
        "(got 'abc')",
        absent=("tiny_smoke.yaml",),
    ),
    case(
        "set_every_error_shown",
        [*SMOKE, "--set", "train.epochs=abc", "--set", "train.lr=x"],
        "--set train.epochs: Input should be a valid number",
        "--set train.lr: Input should be a valid number",
        absent=("more error",),
        lines=2,
    ),
    case(
        "set_many_errors_capped",
        [
            *SMOKE,
            *[
                a
                for k in ("epochs", "lr", "grad_accum", "max_length", "save_steps", "seed", "logging_steps")
                for a in ("--set", f"train.{k}=zz")
            ],
        ],
        "--set train.epochs:",
        "--set train.save_steps:",
        "... and 2 more error(s)",
        lines=6,
    ),
    case(
        "set_section_blamed_on_the_argument",
        ["recipe", "ds7b_fft", "-c", "a800", "--set", "lora.r=8"],
        "--set lora.r: lora: settings given but method is fft",
    ),
    case(
        "file_value_still_blamed_on_the_file",
        ["recipe", "{tmp}/bad.yaml", "-c", "local", "--set", "train.lr=1"],
        "{tmp}/bad.yaml: train.epochs: Input should be a valid number",
        absent=("--set",),
        files={"bad.yaml": GOOD + "train: {epochs: abc}\n"},
    ),
    # ------------------------------------------------------------------ non-finite numbers
    case(
        "set_float_overflow",
        [*SMOKE, "--set", "train.epochs=1e309"],
        "--set train.epochs: Input should be a finite number",
    ),
    case(
        "set_infinite_memory",
        [*SMOKE, "--set", "resources.mem_gb=.inf"],
        "--set resources.mem_gb: Input should be a finite number",
    ),
    case("set_nan", [*SMOKE, "--set", "train.lr=.nan"], "--set train.lr: Input should be a finite number"),
    case(
        "infinite_value_in_recipe_file",
        ["recipe", "{tmp}/bad.yaml", "-c", "local"],
        "{tmp}/bad.yaml: train.lr: Input should be a finite number",
        files={"bad.yaml": GOOD + "train: {lr: .inf}\n"},
    ),
    case(
        "infinite_value_in_cluster_profile",
        ["recipe", "tiny_smoke", "-c", "{tmp}/c.yaml"],
        "{tmp}/c.yaml: node.mem_gb: Input should be a finite number",
        files={"c.yaml": CPU_PROFILE + "node: {cpus: 4, mem_gb: -.inf}\n"},
    ),
    # ------------------------------------------------------------------ env keys: names, never secrets
    case(
        "hostile_env_key_local",
        [*SMOKE, "--set", f"{'env.' + HOSTILE}=v"],
        f"--set env.{HOSTILE}: '{HOSTILE}' {NOT_NAME}",
    ),
    case(
        "hostile_env_key_dev_slurm",
        ["recipe", "tiny_smoke", "-c", "dev-slurm", "--set", f"env.{HOSTILE}=v"],
        f"--set env.{HOSTILE}: '{HOSTILE}' {NOT_NAME}",
    ),
    case("env_key_with_a_dash", [*SMOKE, "--set", "env.MY-VAR=1"], f"--set env.MY-VAR: 'MY-VAR' {NOT_NAME}"),
    case("env_key_starting_with_a_digit", [*SMOKE, "--set", "env.1X=1"], f"'1X' {NOT_NAME}"),
    case(
        "hostile_env_key_in_recipe_file",
        ["recipe", "{tmp}/bad.yaml", "-c", "local"],
        "{tmp}/bad.yaml: env.A=1; touch {tmp}/pwned; B:",
        NOT_NAME,
        files={"bad.yaml": GOOD + 'env: {"A=1; touch {tmp}/pwned; B": x}\n'},
    ),
    case(
        "hostile_env_key_in_cluster_profile",
        ["recipe", "tiny_smoke", "-c", "{tmp}/c.yaml"],
        "{tmp}/c.yaml: env.A;touch {tmp}/pwned;B: ",
        NOT_NAME,
        files={"c.yaml": CPU_PROFILE + 'env: {"A;touch {tmp}/pwned;B": x}\n'},
    ),
    case(
        "secret_in_recipe_env",
        [*SMOKE, "--set", "env.GOOGLE_CREDENTIALS=x"],
        "--set env.GOOGLE_CREDENTIALS: looks like a secret; secrets reach jobs through your environment only",
    ),
    case(
        "secret_in_cluster_profile_env",
        ["recipe", "tiny_smoke", "-c", "{tmp}/c.yaml"],
        "{tmp}/c.yaml: env.HF_TOKEN: looks like a secret",
        absent=("hf_planted",),
        files={"c.yaml": CPU_PROFILE + "env: {HF_TOKEN: hf_planted}\n"},
    ),
    # ------------------------------------------------------------------ the recipe against the cluster
    case(
        "too_many_gpus_per_node",
        ["recipe", "ds7b_fft", "-c", "a800", "--set", "resources.gpus_per_node=16"],
        "--set resources.gpus_per_node: 16 is more than the 8 GPUs per node",
        "valid: 0-8",
    ),
    case(
        "too_many_gpus_per_node_in_the_file",
        ["recipe", "{tmp}/bad.yaml", "-c", "a800"],
        "{tmp}/bad.yaml: resources.gpus_per_node: 16 is more than the 8 GPUs per node",
        files={"bad.yaml": GOOD.replace("gpus_per_node: 0", "gpus_per_node: 16")},
    ),
    case(
        "too_many_nodes",
        ["recipe", "ds7b_fft", "-c", "a800", "--set", "resources.nodes=6"],
        "--set resources.nodes: 6 is more than cluster 'a800' allows; valid: 1-5",
    ),
    case(
        "too_much_time",
        ["recipe", "ds7b_fft", "-c", "a800", "--set", "resources.time=300:00:00"],
        "resources.time: 300:00:00 is longer than the 240:00:00 limit of cluster 'a800'",
    ),
    case(
        "bf16_on_gpu_without_bf16",
        ["recipe", "ds1.5b_eval", "-c", "2080ti", "--set", "model.dtype=bf16"],
        "model.dtype: bf16 is not supported by the GPUs of cluster '2080ti'",
        "valid: fp16, fp32 or auto",
    ),
    case(
        "qlora_without_int4",
        ["recipe", "llama4_scout_qlora", "-c", "a800", "--set", "quantization.mode=none"],
        "llama4_scout_qlora.yaml: method: qlora needs quantization: int4 (got none)",
    ),
    case(
        "int4_with_fft",
        ["recipe", "ds7b_fft", "-c", "a800", "--set", "quantization=int4"],
        "--set quantization: int4 weights cannot be fully fine-tuned",
    ),
    case(
        "gpu_recipe_on_cpu_only_cluster",
        [*SMOKE[:3], "{tmp}/cpu.yaml", "--set", "resources.gpus_per_node=1"],
        "--set resources.gpus_per_node: 1 but cluster 'cpu' has no GPUs",
        "--set resources.gpus_per_node=0",
        files={"cpu.yaml": CPU_PROFILE},
    ),
    case("unknown_run_status", ["status", "nope"], "unknown run 'nope'"),
    case("unknown_run_logs", ["logs", "nope"], "unknown run 'nope'"),
    case("unknown_run_cancel", ["cancel", "nope"], "unknown run 'nope'"),
    # ------------------------------------------------------------------ files that are not what they say
    case(
        "score_deeply_nested_json",
        ["score", "{tmp}/p.jsonl"],
        "{tmp}/p.jsonl: line 1: JSON nested too deeply to read (format jsonl)",
        files={"p.jsonl": "[" * 200_000 + "\n"},
    ),
    # ------------------------------------------------------------------ the machine: exit 1
    case(
        "home_is_a_file_recipe",
        SMOKE,
        "{tmp}/home: $LAUNCH_HOME is not a directory",
        code=1,
        setup=_home_is_a_file,
    ),
    case(
        "home_is_a_file_status", ["status"], "$LAUNCH_HOME is not a directory", code=1, setup=_home_is_a_file
    ),
    case(
        "home_read_only",
        SMOKE,
        "{tmp}/home/registry.db: the run registry cannot be used",
        "$LAUNCH_HOME must be writable",
        code=1,
        setup=_read_only_home,
    ),
    case(
        "damaged_registry_recipe",
        SMOKE,
        "{tmp}/home/registry.db: the run registry cannot be used: it is damaged",
        code=1,
        setup=_damaged_registry,
    ),
    case(
        "damaged_registry_status",
        ["status"],
        "registry.db: the run registry cannot be used",
        code=1,
        setup=_damaged_registry,
    ),
    case(
        "full_disk_at_submit",
        SMOKE,
        "{tmp}/runs/.snapshots/",
        "cannot store the code snapshot: No space left on device",
        code=1,
        setup=_full_runs_root,
    ),
    case(
        "full_disk_at_submit_live_code",  # no snapshot: the run directory is the first thing written
        [*SMOKE, "--live-code"],
        "{tmp}/runs/tiny_smoke-",
        "cannot write the run directory: No space left on device",
        code=1,
        setup=_full_runs_root,
    ),
]


@pytest.mark.parametrize("bad", CASES)
def test_refused(bad: Bad, launch: Launch, tmp_path: Path) -> None:
    tmp = str(tmp_path)
    for name, content in bad.files.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("{tmp}", tmp))
    with bad.setup(tmp_path) if bad.setup else contextlib.nullcontext():
        proc = launch(*(a.replace("{tmp}", tmp) for a in bad.args))
        assert proc.returncode == bad.code, (proc.returncode, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == bad.lines, proc.stderr
        assert all(line.startswith("error: ") for line in lines), proc.stderr
        assert "Traceback" not in proc.stderr
        for fragment in bad.fragments:
            assert fragment.replace("{tmp}", tmp) in proc.stderr, proc.stderr
        for fragment in bad.absent:
            assert fragment not in proc.stderr, proc.stderr
        _nothing_created(tmp_path)


def test_job_without_module_yet(launch: Launch, tmp_path: Path) -> None:
    proc = launch("recipe", "agnews_zero_shot", "-c", "local")
    if proc.returncode == 2 and "has no job module" in proc.stderr:
        _nothing_created(tmp_path)
    else:  # the classify job exists: its recipe must at least get past validation
        assert "unknown key" not in proc.stderr
