"""`launch sync --wandb` when W&B cannot be reached (issue 26, item 12): it ran `wandb sync` with a
30-minute timeout and said nothing meanwhile. Now W&B's base URL (WANDB_BASE_URL) must answer a
short probe first: a closed port, an unknown host or a server that accepts and never answers give
one line naming the URL and exit 1, before `wandb sync` starts. Loopback addresses only (the unknown
host is under `.invalid`, which never resolves)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.runs.registry import Registry
from tests.support.cli import isolated_env
from tests.support.dead_endpoints import closed_port, hanging_server

RUN_ID = "tiny_ner-20261201-1200-ab12"
BOUND_S = 30
"""The probe's bound (10 s) and the CLI's start-up."""
METRICS = '{"strict": {"precision": 0.5, "recall": 0.25, "f1": 0.3333}, "step": 10, "sentences": 3}'


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with one real offline W&B run (written by jobs/wandb_run.py) and results."""
    root = tmp_path_factory.mktemp("wandb-bound")
    env = {**isolated_env(root), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    run_dir = root / "runs" / RUN_ID
    (run_dir / "results" / "checkpoint-10").mkdir(parents=True)
    (run_dir / "results" / "checkpoint-10" / "metrics.json").write_text(METRICS)
    shown = subprocess.run([sys.executable, "-m", "launcher.cli", "show", "tiny_ner"], env=env, cwd=root,
                           capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    (run_dir / "recipe.yaml").write_text(shown.stdout)
    code = (
        "import sys\nfrom pathlib import Path\nfrom jobs.wandb_run import start\n"
        "from launcher.config.recipe import read_resolved\nd = Path(sys.argv[1])\n"
        "run = start(read_resolved(d), d, 'train')\nrun.log({'loss': 1.0})\nrun.finish()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(run_dir)], env=env, check=True, timeout=300, cwd=root)
    (run_dir / "launch.json").write_text(f'{{"run_id": "{RUN_ID}"}}')  # not naming this template's path
    return run_dir


def _world(tmp_path: Path, template: Path) -> dict[str, str]:
    """A registered copy of the template run, its W&B run not yet synced; the environment of `launch`."""
    env = isolated_env(tmp_path)
    run_dir = tmp_path / "runs" / RUN_ID
    shutil.copytree(template, run_dir)
    registry = Registry(tmp_path / "home" / "registry.db")
    registry.add(RUN_ID, "tiny_ner", "local", "local", "train", run_dir, [], "completed")
    registry.close()
    return {**env, "WANDB_API_KEY": "k" * 40, "WANDB_MODE": "online"}


def _sync(env: dict[str, str], base_url: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "sync", RUN_ID, "--wandb"], cwd=cwd, capture_output=True,
        env={**env, "WANDB_BASE_URL": base_url}, text=True, timeout=BOUND_S + 60,
    )  # fmt: skip
    return proc, time.monotonic() - started


def _assert_one_line(proc: subprocess.CompletedProcess, url: str, took: float, tmp_path: Path) -> str:
    assert took < BOUND_S, f"launch sync --wandb took {took:.0f} s"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert url in lines[0] and "W&B" in lines[0], lines[0]
    assert "k" * 40 not in proc.stderr and proc.stdout == ""
    (offline,) = (tmp_path / "runs" / RUN_ID / "wandb").glob("offline-run-*")
    assert not list(offline.glob("*.synced")), "wandb sync must not have run"
    return lines[0]


def test_a_closed_port_is_one_line_and_exit_1(tmp_path: Path, template: Path) -> None:
    env = _world(tmp_path, template)
    url = f"http://127.0.0.1:{closed_port()}"
    proc, took = _sync(env, url, tmp_path)
    assert "connection refused" in _assert_one_line(proc, url, took, tmp_path)
    status = subprocess.run([sys.executable, "-m", "launcher.cli", "status"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    (line,) = [line for line in status.splitlines() if "W&B not synced" in line]  # nothing was lost:
    assert line.strip().startswith(f"W&B not synced: W&B at {url} cannot be reached"), status  # why


def test_a_server_that_never_answers_is_one_line_within_the_bound(tmp_path: Path, template: Path) -> None:
    env = _world(tmp_path, template)
    with hanging_server() as port:
        url = f"http://127.0.0.1:{port}"
        proc, took = _sync(env, url, tmp_path)
    assert "did not answer within" in _assert_one_line(proc, url, took, tmp_path)


def test_an_unknown_host_is_one_line_and_exit_1(tmp_path: Path, template: Path) -> None:
    env = _world(tmp_path, template)
    url = "http://wandb.example.invalid:8080"
    proc, took = _sync(env, url, tmp_path)
    line = _assert_one_line(proc, url, took, tmp_path)
    assert "unknown host" in line or "did not answer" in line, line


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://127.0.0.1/x", "http://"])
def test_a_base_url_that_is_not_one_is_refused_naming_the_variable(
    tmp_path: Path, template: Path, url: str
) -> None:
    env = _world(tmp_path, template)
    proc, _ = _sync(env, url, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: WANDB_BASE_URL: ") and repr(url) in line, line


def test_bench_online_with_w_and_b_unreachable_is_one_line_not_minutes(
    tmp_path: Path, template: Path
) -> None:
    """The sibling: `launch bench` logging its table online waited out wandb.init's retries (104 s),
    then a traceback."""
    env = {**_world(tmp_path, template), "WANDB_BASE_URL": (url := f"http://127.0.0.1:{closed_port()}")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "bench", RUN_ID, "-o", str(tmp_path / "bench")], env=env,
        cwd=tmp_path, capture_output=True, text=True, timeout=BOUND_S + 60,
    )  # fmt: skip
    assert time.monotonic() - started < BOUND_S and proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert last.startswith(f"error: W&B at {url} cannot be reached (connection refused)"), proc.stderr
