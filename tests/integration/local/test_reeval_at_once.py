"""Two `launch reeval` of one run at once evaluate each checkpoint once (issue 26, item 7): planning
and claiming are serialised per run, and the second says what it skipped. Before, both planned
before either had claimed, and each checkpoint was evaluated twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.cli import Launch


def test_two_reevals_at_once_evaluate_each_checkpoint_once(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    train = ["--set", "train.max_steps=4", "--set", "train.save_steps=2"]  # checkpoints 2 and 4
    run_id = launch("recipe", "tiny_smoke", "-c", "local", "--follow", *train, check=True).stdout.split()[0]
    command = [sys.executable, "-m", "launcher.cli", "reeval", run_id, "--cluster", "local"]
    reevals = [
        subprocess.Popen(
            command, env=launch_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in reevals]
    assert [p.returncode for p in reevals] == [0, 0], outs
    infos = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/launch.json")}
    evals = [name for name, info in infos.items() if info.get("parent") == run_id]
    assert len(evals) == 2, (evals, outs)
    first, second = sorted(outs, key=lambda o: o[0].startswith("nothing to do"))
    assert sorted(first[0].split()) == sorted(evals), outs  # the run ids of what it submitted
    assert second[0].startswith("nothing to do: 2 selected of 2 complete checkpoint(s)"), outs
    skipped = [line for line in second[1].splitlines() if line.startswith("skip checkpoint-")]
    assert len(skipped) == 2 and all("being evaluated" in s or "already scored" in s for s in skipped), second
