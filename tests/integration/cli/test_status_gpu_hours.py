"""`launch status`' sweep line states the GPU-hours its ended points used (their usage.json, read
once into the registry's facts cache): `at least` while some point's are not known."""

from __future__ import annotations

import json
from pathlib import Path

from launcher.runs.registry import Registry
from tests.support.cli import Launch

SWEEP = "sweep-tiny_ner-20261201-0000-beef"


def _sweep(runs: Path, used: list[float | None], states: list[str]) -> list[str]:
    """A sweep the registry knows, one point per state; `used`: each point's usage.json (None: none)."""
    registry = Registry()
    registry.add_sweep(SWEEP, "tiny_ner", "dev-slurm", ["train.lr"])
    ids = []
    for i, (hours, state) in enumerate(zip(used, states, strict=True)):
        run_id = f"tiny_ner-20261201-000{i}-swp{i}"
        run_dir = runs / run_id
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "launch.json").write_text(json.dumps({"run_id": run_id}))
        if hours is not None:
            (run_dir / "usage.json").write_text(json.dumps({"gpu_hours": hours, "source": "slurm"}))
        registry.add(run_id, "tiny_ner", "dev-slurm", "slurm", "train", run_dir, [str(100 + i)], state, SWEEP)
        ids.append(run_id)
    registry.close()
    return ids


def _sweep_line(launch: Launch, *args: str) -> str:
    out = launch("status", *args, check=True).stdout
    (line,) = [x for x in out.splitlines() if x.startswith(SWEEP)]
    return line


def test_the_sweep_line_states_gpu_hours_used(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    launch_env["COLUMNS"] = "120"
    ids = _sweep(tmp_path / "runs", [0.25, 1.5, None], ["completed", "completed", "failed"])
    expected = f"{SWEEP}: 3 points: 2 completed, 1 failed; at least 1.8 GPU-hours used"
    assert _sweep_line(launch) == expected
    assert _sweep_line(launch) == expected  # the second time from the facts cache
    assert _sweep_line(launch, "--all") == expected
    (group,) = json.loads(launch("status", "--json", check=True).stdout)["entries"]
    assert group["summary"] == expected and group["total"] == 3

    # the last point's usage is recorded (as `launch status SWEEP` does): the cache sees it
    (tmp_path / "runs" / ids[2] / "usage.json").write_text(json.dumps({"gpu_hours": 0.5, "source": "slurm"}))
    assert _sweep_line(launch) == f"{SWEEP}: 3 points: 2 completed, 1 failed; 2.2 GPU-hours used"


def test_no_gpu_hours_known_no_gpu_hours_said(launch: Launch, tmp_path: Path) -> None:
    _sweep(tmp_path / "runs", [None, None], ["completed", "cancelled"])
    assert _sweep_line(launch) == f"{SWEEP}: 2 points: 1 completed, 1 cancelled"
