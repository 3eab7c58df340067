"""The Ray backend's job wrapper (what every Ray job runs, here without Ray) indexes the logs it tees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from launcher.runs import logtimes
from launcher.views.logs import merged_backlog


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
