"""Jobs over the dev cluster's two nodes (dev-n1, dev-n2: two slurmd on this machine), for real.

One torchrun per node, c10d rendezvous on the first node, gloo between CPU ranks. The losses of a
two-node run (one rank per node) must equal a one-node run with two ranks: same seed, data and
global batch; gloo sums two gradients the same way in either order, so they agree to the bit (the
test allows 1e-6). Faults: a USR2 and a node set DOWN under one run, which resumes on two nodes
both times; a rendezvous port taken on the first node fails the job at once with one line.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from launcher.backends.slurm.render import RDZV_PROBE
from tests.support.cli import Launch, require_slurm, run_state, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SMALL = ["data.max_train_samples=64", "train.max_steps=6", "train.logging_steps=1", "train.save_steps=3",
         "resources.cpus_per_gpu=1"]  # fmt: skip


def _sets(*settings: str) -> list[str]:
    return [a for s in settings for a in ("--set", s)]


def _submit(launch: Launch, recipe: str, *settings: str, cluster: str = "dev-slurm") -> str:
    return str(
        launch("recipe", recipe, "--cluster", cluster, *_sets(*settings), check=True).stdout.split()[0]
    )


def _job_id(runs: Path, run_id: str) -> str:
    return str(json.loads((runs / run_id / "launch.json").read_text())["job_ids"][0])


def _out(runs: Path, run_id: str) -> str:
    path = runs / run_id / "logs" / f"{_job_id(runs, run_id)}.out"
    return path.read_text(errors="replace") if path.exists() else ""


def _sacct_nodes(job_id: str) -> list[tuple[str, str, str]]:
    """(state, node list, node count) of every start of the job, oldest first."""
    out = subprocess.run(["sacct", "-n", "-P", "-X", "-D", "-o", "State,NodeList,NNodes", "-j", job_id],
                         capture_output=True, text=True, timeout=30, check=True).stdout  # fmt: skip
    return [tuple(line.split("|")) for line in out.splitlines() if line]  # type: ignore[misc]


def _losses(run_dir: Path, step: int) -> list[float]:
    state = json.loads((run_dir / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return [row["loss"] for row in state["log_history"] if "loss" in row]


def _ended(launch: Launch, run_id: str) -> bool:
    return run_state(launch, run_id) in ("completed", "failed", "cancelled", "timeout")


def test_two_nodes_train_as_one_node_with_two_ranks(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    runs = tmp_path / "runs"
    two_nodes = _submit(launch, "tiny_ner", "resources.nodes=2", *SMALL, "tracking.wandb.mode=offline")
    two_ranks = _submit(launch, "tiny_ner", "resources.ranks_per_node=2", *SMALL)
    minilm = _submit(launch, "minilm_ner", "resources.nodes=2", "resources.cpus_per_gpu=1",
                     "data.max_train_samples=32", "train.max_steps=2", "train.save_steps=2",
                     "eval.max_samples=8")  # fmt: skip
    for run_id in (two_nodes, two_ranks, minilm):
        wait_for(lambda r=run_id: _ended(launch, r), timeout=420, every=2)  # type: ignore[misc]
        assert run_state(launch, run_id) == "completed", _out(runs, run_id)[-3000:]

    for run_id in (two_nodes, minilm):
        assert _sacct_nodes(_job_id(runs, run_id))[-1][1:] == ("dev-n[1-2]", "2")
        assert "on dev-n[1-2]" in _out(runs, run_id)
    assert _sacct_nodes(_job_id(runs, two_ranks))[-1][2] == "1"

    run_dir = runs / two_nodes
    out = _out(runs, two_nodes)
    assert out.count("starting from scratch") == 2  # one rank on each node
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-6"]
    for ckpt in ("checkpoint-3", "checkpoint-6"):  # written once, by rank 0, with both ranks' RNG state
        files = {p.name for p in (run_dir / "checkpoints" / ckpt).iterdir()}
        assert {"COMPLETE", "model.safetensors", "rng_state_0.pth", "rng_state_1.pth"} <= files
    assert re.findall(r"^step (\d+)/6 ", out, re.M) == [str(i) for i in range(1, 7)]  # logged once
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1  # one W&B run

    one, two = _losses(runs / two_ranks, 6), _losses(run_dir, 6)
    assert len(one) == len(two) == 6
    assert all(abs(a - b) <= 1e-6 for a, b in zip(one, two, strict=True)), (one, two)
    assert (runs / minilm / "results" / "checkpoint-2").is_dir()


def test_usr2_and_a_lost_node_requeue_and_resume_on_two_nodes(launch: Launch, tmp_path: Path) -> None:
    """USR2 to the batch shell: both ranks checkpoint once, the job requeues and resumes on two nodes.
    Then dev-n2 is set DOWN under it: Slurm ends the start NODE_FAIL and requeues it (the profile's
    `requeue: true`); `launch status` says which node and why; it resumes from the last complete
    checkpoint on two nodes again and completes."""
    require_slurm()
    runs = tmp_path / "runs"
    run_id = _submit(launch, "tiny_ner", "resources.nodes=2", "resources.cpus_per_gpu=1",
                     "data.max_train_samples=400", "train.max_steps=24", "train.logging_steps=1",
                     "train.save_steps=4", "tracking.wandb.mode=disabled")  # fmt: skip
    job_id = _job_id(runs, run_id)
    wait_for(lambda: re.search(r"^step 5/24 ", _out(runs, run_id), re.M) is not None, timeout=240, every=1)
    subprocess.run(["scancel", "--batch", "--signal=USR2", job_id], check=True, timeout=30)
    wait_for(lambda: "restart 1, on dev-n[1-2]" in _out(runs, run_id), timeout=120, every=1)
    wait_for(
        lambda: re.search(r"^step (9|1\d)/24 ", _out(runs, run_id), re.M) is not None, timeout=240, every=1
    )

    reason = "test: dev-n2 lost"
    subprocess.run(["scontrol", "update", "nodename=dev-n2", "state=down", f"reason={reason}"], check=True)
    try:
        # sacct (slurmdbd) learns of the NODE_FAIL start a moment after the controller requeued it
        lost = "node failure (dev-n2 DOWN: test: dev-n2 lost)"
        wait_for(
            lambda: "restart 2" in _why(launch, run_id) and lost in _why(launch, run_id), timeout=120, every=1
        )
    finally:
        subprocess.run(["scontrol", "update", "nodename=dev-n2", "state=resume"], capture_output=True)
    wait_for(lambda: _ended(launch, run_id), timeout=420, every=2)
    out = _out(runs, run_id)
    assert run_state(launch, run_id) == "completed", out[-3000:]

    starts = _sacct_nodes(job_id)
    assert [s[0] for s in starts] == ["REQUEUED", "NODE_FAIL", "COMPLETED"], starts
    assert all(s[1:] == ("dev-n[1-2]", "2") for s in starts), starts
    stopped = [int(n) for n in re.findall(r"stopped by signal 12 at step (\d+)", out)]
    assert len(stopped) == 2 and stopped[0] == stopped[1]  # both ranks, one checkpoint
    resumed = [int(n) for n in re.findall(r"^resuming from checkpoint-(\d+)$", out, re.M)]
    assert len(resumed) == 4 and resumed[:2] == stopped, (resumed, stopped)  # 2 ranks x 2 restarts
    assert resumed[2] == resumed[3] and resumed[2] % 4 == 0 and resumed[2] >= 8
    assert json.loads((runs / run_id / "results" / "train.json").read_text())["global_step"] == 24
    why = _why(launch, run_id)
    assert "restart 2 after requeued (USR2 or scontrol requeue), node failure (dev-n2 DOWN" in why, why


def test_without_requeue_a_lost_node_ends_the_run_with_the_node_and_reason(
    launch: Launch, tmp_path: Path
) -> None:
    """`slurm.requeue: false`: the NODE_FAIL ends the run failed; status names the node and why."""
    require_slurm()
    runs = tmp_path / "runs"
    profile = _profile(tmp_path, "requeue: false")
    run_id = _submit(
        launch, "tiny_ner", "resources.nodes=2", *SMALL, "train.max_steps=200", cluster=str(profile)
    )
    wait_for(lambda: re.search(r"^step 2/200 ", _out(runs, run_id), re.M) is not None, timeout=240, every=1)
    reason = "test: dev-n2 unplugged"
    subprocess.run(["scontrol", "update", "nodename=dev-n2", "state=down", f"reason={reason}"], check=True)
    try:
        wait_for(lambda: _ended(launch, run_id), timeout=120, every=1)
    finally:
        subprocess.run(["scontrol", "update", "nodename=dev-n2", "state=resume"], capture_output=True)
    assert run_state(launch, run_id) == "failed"
    assert _why(launch, run_id).split(None, 1)[1] == (
        f"node failure: dev-n2 DOWN: {reason}; Slurm ended the job NODE_FAIL"
    )
    assert "  error: srun: error: Node failure on dev-n2" in launch("status", check=True).stdout
    assert [s[0] for s in _sacct_nodes(_job_id(runs, run_id))] == ["NODE_FAIL"]


def _profile(tmp_path: Path, slurm: str) -> Path:
    """dev-slurm's partition, with more `slurm:` settings."""
    path = tmp_path / "two.yaml"
    path.write_text(
        "# test profile: the dev cluster's two nodes\nname: two\nbackend: slurm\n"
        f"node: {{cpus: 16, mem_gb: 16}}\nlimits: {{max_nodes: 2}}\nslurm: {{partition: gpu, {slurm}}}\n"
    )
    return path


def _why(launch: Launch, run_id: str) -> str:
    out = launch("status", run_id, check=True).stdout
    return next((line for line in out.splitlines() if line.startswith("why")), "")


def test_a_taken_rendezvous_port_fails_the_job_at_once_with_one_line(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        profile = _profile(tmp_path, f"rendezvous_port: {port}, rendezvous_timeout_s: 20")
        started = time.monotonic()
        run_id = _submit(launch, "tiny_ner", "resources.nodes=2", *SMALL, cluster=str(profile))
        wait_for(lambda: _ended(launch, run_id), timeout=120, every=1)
        elapsed = time.monotonic() - started
    assert run_state(launch, run_id) == "failed"
    line = f"rendezvous: 127.0.0.1:{port} on the first node (dev-n1) is taken by another process"
    assert "  error: rendezvous: 127.0.0.1:" in launch("status", check=True).stdout
    detail = launch("status", run_id, check=True).stdout
    assert line in detail, detail
    assert elapsed < 60, elapsed


def test_a_node_that_reaches_no_head_gives_up_after_the_timeout() -> None:
    """The probe a non-first node runs before torchrun, on a port where nothing listens."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "SLURM_NODEID": "1", "SLURM_LAUNCH_NODE_IPADDR": "127.0.0.1",
           "SLURMD_NODENAME": "dev-n2", "RDZV_PORT": str(port), "RDZV_TIMEOUT": "4"}  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", RDZV_PROBE], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and 4 <= time.monotonic() - started < 15
    assert proc.stderr.strip() == (
        f"[launch] error: rendezvous: node dev-n2 reached nothing at 127.0.0.1:{port} (the first node) "
        "in 4 s: its torchrun did not start, or a firewall drops it"
    )
