"""`launch logs`: labelled stdout/stderr, --merged by time, library noise left out of the view
(never out of the files), and Ctrl-C while following. Unit tests with hand-checked values for the
pure parts; the CLI in a subprocess on real runs (local smoke and tiny_ner, the job wrapper the Ray
backend runs, one Slurm smoke job)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.runs import logtimes
from launcher.views.logs import Line, NoiseFilter, merge, merged_backlog, stamp, tidy
from tests.conftest import Launch, cli_runner, isolated_env

# A stretch of real task0.err files (tiny_ner on the local backend with W&B offline, a Ray eval,
# two lines of the job's own) and, hand-checked line by line, what `launch logs` shows of it.
FIXTURES = Path(__file__).parent / "fixtures" / "logs"


def _shown(text: str) -> list[str]:
    noise = NoiseFilter()
    return [tidy(line) for line in text.rstrip("\n").split("\n") if not noise.is_noise(line)]


def test_noise_filter_on_a_real_log() -> None:
    text = (FIXTURES / "tiny_ner.err").read_bytes().decode()
    assert _shown(text) == (FIXTURES / "tiny_ner.shown").read_text().splitlines()


def test_noise_filter_keeps_a_line_after_a_warning_that_is_not_its_source() -> None:
    text = "/x/site-packages/torch/a.py:3: DeprecationWarning: old\nstep 1/4\n"
    assert _shown(text) == ["step 1/4"]


def test_tidy_keeps_what_a_terminal_shows() -> None:
    assert tidy("\rLoading:   0%|\rLoading: 100%|") == "Loading: 100%|"
    assert tidy("plain") == "plain"
    assert tidy("done\r") == "done"


def test_stamp_takes_the_first_sample_that_reached_the_line_end() -> None:
    # lines of 4, 4 and 6 bytes (with newlines): ends at 4, 8, 14
    samples = [(10.0, 4), (10.2, 4), (10.4, 8), (10.6, 12)]
    assert stamp([4, 8, 14], samples, after=11.5) == [10.0, 10.4, 11.5]
    assert stamp([4], [], after=3.0) == [3.0]


def test_merge_orders_by_time_each_stream_in_its_order_stdout_first_on_ties() -> None:
    out = [Line("out", "o1", 1.0), Line("out", "o2", 2.0), Line("out", "o3", 2.0)]
    err = [Line("err", "e1", 0.5), Line("err", "e2", 2.0), Line("err", "e3", 1.5)]
    # e3 is earlier than e2 but stays after it: one stream's order is never changed
    assert [x.text for x in merge(out, err)] == ["e1", "o1", "o2", "o3", "e2", "e3"]


def test_merged_backlog_from_files_and_index(tmp_path: Path) -> None:
    out, err = tmp_path / "task0.out", tmp_path / "task0.err"
    out.write_text("a\nbb\n")  # ends 2, 5
    err.write_text("E1\nE2\npartial")  # ends 3, 6; the last line is still being written
    (tmp_path / "task0.times").write_text("100.0 2 0\n100.2 2 3\n100.4 5 3\n100.6 5 6\ntorn 1")
    lines = [(out, "a"), (out, "bb"), (err, "E1"), (err, "E2"), (err, "partial")]
    merged, read = merged_backlog(lines)
    assert [(x.stream, x.text) for x in merged] == [("out", "a"), ("err", "E1"), ("out", "bb"), ("err", "E2")]
    assert read == {out: 2, err: 2}


# ---------------------------------------------------------------- the CLI on real runs

# 1.2 s steps: stdout and stderr lines 0.6 s apart, more than the index's 0.2 s samples and the
# 0.5 s polls of a follow, so their order is known
SMOKE_BOTH = ["--set", "train.max_steps=3", "--set", "env={SMOKE_STEP_SECONDS: '1.2', SMOKE_STDERR: '1'}"]
EXPECTED_MERGED = [
    "out| smoke job tiny_smoke: 3 steps, resuming from step 0",
    "out| CUDA_VISIBLE_DEVICES=",
    "out| step 1/3",
    "err| stderr after step 1",
    "out| step 2/3",
    "err| stderr after step 2",
    "out| step 3/3",
    "err| stderr after step 3",
    "out| saved checkpoint-3",
    "out| done",
]


def test_labels_and_merged_on_a_local_run(launch: Launch, tmp_path: Path) -> None:
    run_id = launch(
        "recipe", "tiny_smoke", "-c", "local", "--follow", *SMOKE_BOTH, check=True
    ).stdout.split()[0]
    logs = tmp_path / "runs" / run_id / "logs"
    assert (logs / "task0.out").read_text().startswith("smoke job tiny_smoke")  # the file as written
    assert (logs / "task0.times").exists()
    proc = launch("logs", run_id, check=True)
    assert "out| step 1/3\n" in proc.stdout and "err|" not in proc.stdout
    assert proc.stderr.splitlines() == [f"err| stderr after step {i}" for i in (1, 2, 3)]
    assert "\033[" not in proc.stdout + proc.stderr  # piped: plain text
    merged = launch("logs", run_id, "--merged", check=True)
    assert merged.stdout.splitlines() == EXPECTED_MERGED and merged.stderr == ""


def test_merged_follow_shows_the_backlog_then_new_lines(launch: Launch, launch_env: dict[str, str]) -> None:
    run_id = launch("recipe", "tiny_smoke", "-c", "local", *SMOKE_BOTH, check=True).stdout.split()[0]
    proc = launch("logs", run_id, "--merged", "-f", check=True, timeout=60)
    assert proc.stdout.splitlines() == EXPECTED_MERGED


def test_ray_job_wrapper_indexes_the_logs_it_tees(tmp_path: Path) -> None:
    """The Ray backend's job wrapper (what every Ray job runs) writes the index for its files."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "recipe.yaml").write_text("name: x\n")
    script = (
        "import sys, time\nprint('o1', flush=True); time.sleep(0.6)\n"
        "print('e1', file=sys.stderr, flush=True); time.sleep(0.6)\nprint('o2', flush=True)\n"
    )
    subprocess.run(
        [sys.executable, "-m", "launcher.backends.ray.agent", "job", "--run-dir", str(run_dir),
         "--time-limit", "0", "--", sys.executable, "-c", script],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    logs = run_dir / "logs"
    assert logtimes.read(logs / "task0.times")
    lines = [(logs / "task0.out", "o1"), (logs / "task0.out", "o2"), (logs / "task0.err", "e1")]
    assert [x.text for x in merged_backlog(lines)[0]] == ["o1", "e1", "o2"]


@pytest.fixture(scope="module")
def tiny_ner(tmp_path_factory: pytest.TempPathFactory) -> tuple[Launch, Path]:
    """One real tiny_ner training run on the local backend (W&B offline): its real library noise."""
    root = tmp_path_factory.mktemp("logs-tiny-ner")
    env = {**isolated_env(root), "WANDB_MODE": "offline"}
    launch = cli_runner(env)
    proc = launch(
        "recipe", "tiny_ner", "-c", "local", "--follow", "--set", "data.max_train_samples=80",
        "--set", "train.max_steps=4", "--set", "train.save_steps=4", "--set", "train.logging_steps=2",
        "--set", "tracking.wandb.mode=offline",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return launch, root / "runs" / proc.stdout.split()[0]


@pytest.mark.slow
def test_real_training_log_noise_is_left_out_of_the_view_only(tiny_ner: tuple[Launch, Path]) -> None:
    launch, run_dir = tiny_ner
    err_file = (run_dir / "logs" / "task0.err").read_text()
    assert "FutureWarning" in err_file and "wandb: Tracking run with wandb version" in err_file
    shown = launch("logs", run_dir.name)
    assert shown.returncode == 0, shown.stderr
    assert "FutureWarning" not in shown.stderr and "warnings.warn(" not in shown.stderr
    assert "Tracking run with wandb version" not in shown.stderr and "Run history:" not in shown.stderr
    assert "err| wandb: Run data is saved locally in" in shown.stderr
    assert "out| data: 80 samples" in shown.stdout
    raw = launch("logs", run_dir.name, "--raw")
    assert "err| " + err_file.splitlines()[0] in raw.stderr.splitlines()
    assert len(raw.stderr.splitlines()) == len(err_file.splitlines())
    assert (run_dir / "logs" / "task0.err").read_text() == err_file  # the file never changes


# ---------------------------------------------------------------- Ctrl-C while following


def _interrupt(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.CompletedProcess:
    follower = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", *cmd], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and "step 2/" in log.read_text()):
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    return subprocess.CompletedProcess(cmd, follower.returncode, out, err)


def _state(launch: Launch, run_id: str) -> str:
    detail = launch("status", run_id, check=True).stdout
    return "running" if "running" in detail else detail


def test_ctrl_c_while_following_leaves_the_run_running(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    slow = ["--set", "train.max_steps=200", "--set", "env={SMOKE_STEP_SECONDS: '0.2'}"]
    run_id = launch("recipe", "tiny_smoke", "-c", "local", *slow, check=True).stdout.split()[0]
    log = tmp_path / "runs" / run_id / "logs" / "task0.out"
    try:
        proc = _interrupt(["logs", run_id, "-f"], launch_env, tmp_path, log)
        assert proc.returncode == 130, proc.stderr
        assert f"{run_id} goes on" in proc.stderr
        assert f"launch logs {run_id} -f" in proc.stderr and f"launch cancel {run_id}" in proc.stderr
        assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr
        assert _state(launch, run_id) == "running"
    finally:
        launch("cancel", run_id, check=True)


def test_ctrl_c_during_launch_recipe_follow(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    slow = ["--set", "train.max_steps=200", "--set", "env={SMOKE_STEP_SECONDS: '0.2'}"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "recipe", "tiny_smoke", "-c", "local", "--follow", *slow],
        env=launch_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    run_id = ""
    try:
        assert follower.stdout is not None
        run_id = follower.stdout.readline().strip()
        log = tmp_path / "runs" / run_id / "logs" / "task0.out"
        deadline = time.monotonic() + 60
        while not (log.exists() and "step 2/" in log.read_text()):
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
        assert follower.returncode == 130, err
        assert f"launch logs {run_id} -f" in err and f"launch cancel {run_id}" in err
        assert _state(launch, run_id) == "running"
    finally:
        follower.kill()
        if run_id:
            launch("cancel", run_id)


# ---------------------------------------------------------------- Slurm


@pytest.mark.slurm
def test_labels_and_merged_on_slurm(launch: Launch, tmp_path: Path) -> None:
    from tests.test_slurm_cluster import require_slurm

    require_slurm()
    proc = launch("recipe", "tiny_smoke", "-c", "dev-slurm", "--follow", *SMOKE_BOTH, check=True, timeout=180)
    run_id = proc.stdout.split()[0]
    job_id = json.loads((tmp_path / "runs" / run_id / "launch.json").read_text())["job_ids"][0]
    assert (tmp_path / "runs" / run_id / "logs" / f"{job_id}.times").exists()
    merged = launch("logs", run_id, "--merged", check=True).stdout.splitlines()
    steps = [line for line in merged if "step" in line and "smoke job" not in line]
    assert steps == [line for line in EXPECTED_MERGED if "step" in line and "smoke job" not in line]


def test_interrupted_names_every_run_with_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from launcher.views.logs import interrupted

    assert interrupted(["ev-1", "ev-2"], "evaluation") == 130
    assert capsys.readouterr().err.splitlines() == [
        "",
        "interrupted: stopped following; the 2 evaluations go on (Ctrl-C does not cancel)",
        "  follow again: launch logs ev-1 -f",
        "  cancel:       launch cancel ev-1",
        "  follow again: launch logs ev-2 -f",
        "  cancel:       launch cancel ev-2",
    ]
