"""The Ray backend on a real two-node Ray cluster that the launcher did not start (issue 23 item 5).

The cluster (tests/integration/ray/two_node.py) is a head with 1 CPU and a worker node with 2,
both on 127.0.0.1 with Ray's token authentication, started once for this module. `launch` reaches
it as users reach an existing cluster: a profile naming its dashboard (`address: http://...`),
and RAY_AUTH_MODE / RAY_AUTH_TOKEN only in the environment. Which node ran a job is Ray's
`driver_node_id` (the Jobs API), which `launch status` shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from launcher.backends.ray.backend import NODE_ID_SHOWN
from tests.integration.ray import two_node
from tests.integration.ray.two_node import TwoNodes
from tests.support.cli import wait_for
from tests.support.ray_head import _require_ray

pytestmark = pytest.mark.ray

Run = Callable[..., subprocess.CompletedProcess]

PLANTED = "planted-wandb-key-two-node-8c1f"
"""A secret in the submitting environment, besides the token: neither may be written anywhere."""

EVAL = ["--set", "resources.cpus_per_gpu=1", "--set", "eval.max_samples=4", "--set", "eval.max_new_tokens=8"]
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


@pytest.fixture(scope="module")
def cluster(env: dict[str, str]) -> Iterator[TwoNodes]:
    _require_ray()
    nodes = two_node.start(head_cpus=1, worker_cpus=2)
    sys.stderr.write(f"\n[two-node Ray cluster up in {nodes.started_in_s:.1f}s at {nodes.url}]\n")
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=nodes.token, WANDB_API_KEY=PLANTED)
    try:
        yield nodes
    finally:
        two_node.stop(nodes)


@pytest.fixture(scope="module")
def profile(cluster: TwoNodes, env: dict[str, str]) -> Path:
    path = Path(env["LAUNCH_HOME"]).parent / "two-node.yaml"
    path.write_text(
        "# An existing two-node Ray cluster (head 1 CPU, worker 2 CPUs); its token: the environment.\n"
        f"# launch recipe tiny_smoke --cluster {path}\n"
        "name: two-node\nbackend: ray\ngpu: {type: null, memory_gb: 80, per_node: 8, bf16: true}\n"
        f"limits: {{max_nodes: 2}}\nray: {{address: '{cluster.url}'}}\n"
    )
    return path


def _node_of(cluster: TwoNodes, job_id: str) -> str:
    """'head' or 'worker': where Ray ran the job's driver."""
    return cluster.node_name(cluster.get(f"/api/jobs/{job_id}")["driver_node_id"])


def _facts(run: Run, run_id: str) -> dict[str, str]:
    """The `key  value` lines of `launch status RUN` that matter here: state, why."""
    out = run("status", run_id).stdout
    facts = dict(line.split(None, 1) for line in out.splitlines() if line.startswith(("state ", "why ")))
    assert "state" in facts, out
    return facts


def test_two_nodes_on_loopback_that_ask_for_the_token(cluster: TwoNodes) -> None:
    nodes = cluster.get("/api/v0/nodes?detail=false")["data"]["result"]["result"]
    alive = {n["node_id"]: n for n in nodes if n["state"] == "ALIVE"}
    assert set(alive) == {cluster.head_node, cluster.worker_node}
    assert {n["node_ip"] for n in alive.values()} == {"127.0.0.1"}
    assert [
        alive[cluster.head_node]["resources_total"]["CPU"],
        alive[cluster.worker_node]["resources_total"]["CPU"],
    ] == [1, 2]
    found = two_node.listeners(cluster)
    assert {"gcs_server", "raylet"} <= {name for name, _, _ in found}
    outside = [entry for entry in found if entry[1] not in LOOPBACK]
    assert not outside, f"bound beyond loopback: {outside}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{cluster.url}/api/jobs/", timeout=10)
    assert refused.value.code == 401


@pytest.fixture(scope="module")
def trained(run: Run, env: dict[str, str], profile: Path) -> Path:
    started = time.monotonic()
    proc = run(
        "recipe", "tiny_ner", "--cluster", str(profile), "--follow", "--set", "train.max_steps=3",
        "--set", "train.save_steps=1", "--set", "data.max_train_samples=24",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    sys.stderr.write(f"[tiny_ner on the worker: {time.monotonic() - started:.1f}s]\n")
    return Path(env["LAUNCH_RUNS"]) / proc.stdout.split()[0]


def test_training_runs_on_the_worker_when_the_head_has_no_room(
    trained: Path, run: Run, cluster: TwoNodes
) -> None:
    """tiny_ner asks 2 CPUs (cpus_per_gpu: 2): the head has 1, so Ray runs it on the worker."""
    assert json.loads((trained / ".ray_exit.json").read_text())["state"] == "completed"
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == [
        "checkpoint-1", "checkpoint-2", "checkpoint-3",
    ]  # fmt: skip
    assert _node_of(cluster, trained.name) == "worker"
    worker = cluster.worker_node[:NODE_ID_SHOWN]
    assert _facts(run, trained.name)["why"] == f"Ray: SUCCEEDED on node {worker} (127.0.0.1)"


def test_reeval_spreads_its_array_over_both_nodes(
    trained: Path, run: Run, cluster: TwoNodes, profile: Path
) -> None:
    """Three checkpoints, at most two at once: the array supervisor (a job in the cluster, which
    reaches the Jobs API with the nodes' token) submits them; each node runs some."""
    proc = run("reeval", trained.name, "--cluster", str(profile), "--max-parallel", "2", "--follow", *EVAL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_ids = proc.stdout.split()
    assert len(run_ids) == 3 and "3/3 evaluation(s) completed" in proc.stderr
    where = {run_id: _node_of(cluster, run_id) for run_id in run_ids}
    sys.stderr.write(f"[reeval: {where}]\n")
    assert set(where.values()) == {"head", "worker"}, where
    assert _node_of(cluster, f"launch-array-{run_ids[0]}") == "head"  # no resources: Ray's head
    for node, node_id in (("head", cluster.head_node), ("worker", cluster.worker_node)):
        run_id = next(r for r, n in where.items() if n == node)  # one per node: a `launch status` is seconds
        assert f"on node {node_id[:NODE_ID_SHOWN]}" in _facts(run, run_id)["why"]
    for step in (1, 2, 3):
        metrics = json.loads(
            next((trained / "results" / f"checkpoint-{step}").glob("*/metrics.json")).read_text()
        )
        assert metrics["step"] == step and metrics["run_id"] in run_ids


def test_status_logs_and_cancel_on_either_node(
    run: Run, env: dict[str, str], cluster: TwoNodes, profile: Path
) -> None:
    """Two long jobs of 1 CPU: one fills the head, the other goes to the worker; both are followed
    and cancelled through the profile's address as on a launcher-started head."""
    slow = ["--set", "train.max_steps=1000", "--set", "env={SMOKE_STEP_SECONDS: '0.1'}"]
    run_ids = []
    for _ in range(2):
        proc = run("recipe", "tiny_smoke", "--cluster", str(profile), *slow)
        assert proc.returncode == 0, proc.stderr
        run_ids.append(proc.stdout.split()[0])
    runs = Path(env["LAUNCH_RUNS"])
    for run_id in run_ids:
        log = runs / run_id / "logs" / "task0.out"
        wait_for(lambda log=log: log.exists() and "step 3/" in log.read_text(), timeout=90)
    assert {_node_of(cluster, r) for r in run_ids} == {"head", "worker"}
    for run_id in run_ids:
        facts = _facts(run, run_id)
        assert facts["state"] == "running" and facts["why"].startswith("Ray: RUNNING on node "), facts
        logs = run("logs", run_id)
        assert logs.returncode == 0 and "step 3/1000" in logs.stdout, logs.stderr
        assert "cancelled" in run("cancel", run_id).stdout
    for run_id in run_ids:
        assert _facts(run, run_id)["state"] == "cancelled"
        gone = subprocess.run(
            ["pgrep", "-f", "--", f"--run-dir {runs / run_id}"], capture_output=True, text=True
        )
        assert not gone.stdout.strip(), f"job processes of {run_id} survived the cancel"


def test_the_token_and_secrets_are_written_nowhere(
    trained: Path, env: dict[str, str], cluster: TwoNodes, profile: Path
) -> None:
    """After every job of this module (at least the training): not in the runs, $LAUNCH_HOME, the
    profile, Ray's session logs of either node (the temp dirs), nor any answer of the Jobs API; no
    head record was made for this cluster."""
    from launcher.backends.ray.cluster import HEAD_DIR

    secrets = {"RAY_AUTH_TOKEN": cluster.token, "WANDB_API_KEY": PLANTED}
    roots = [Path(env["LAUNCH_RUNS"]), Path(env["LAUNCH_HOME"]), cluster.temp_dir]
    files = [profile, *(p for root in roots for p in root.rglob("*") if p.is_file())]
    assert len(files) > 100, "nothing to search"
    leaks = [
        f"{name} in {path}"
        for path in files
        for name, value in secrets.items()
        if value.encode() in path.read_bytes()
    ]
    jobs = cluster.get("/api/jobs/")
    assert trained.name in {job["submission_id"] for job in jobs}
    answers = [json.dumps(jobs)] + [json.dumps(cluster.get(f"/api/jobs/{j['submission_id']}")) for j in jobs]
    leaks += [
        f"{name} in the Jobs API" for text in answers for name, value in secrets.items() if value in text
    ]
    assert not leaks, leaks
    assert not (HEAD_DIR / f"head-{cluster.dashboard_port}.json").exists()
