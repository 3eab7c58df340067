"""A real two-node Ray cluster on this machine, on loopback, with Ray's token authentication: a
head (`ray start --head`) and a worker node (a second raylet with its own object store, agents
and temp dir), each told apart by a custom resource. Nothing the launcher started: tests reach it
as users reach an existing cluster, through a profile naming its dashboard and the token in the
environment.

Why the worker is not `ray start --address`: on Linux Ray maps `--node-ip-address=127.0.0.1` to
the machine's address, so its servers would listen beyond loopback; in single-machine mode
(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, what keeps the head on 127.0.0.1) `ray start --address`
refuses to add a node. The worker is started the way `ray start` does it underneath, and the way
Ray's own `ray.cluster_utils.Cluster` adds nodes: `ray._private.node.Node(params, head=False)`
(`python -m tests.integration.ray.two_node worker SPEC`), which starts the real raylet, object
store and agents and returns. Both nodes have the address 127.0.0.1.

Every port is chosen free (below the kernel's ephemeral range); each node runs in a session of its
own, killed at `stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.ray_head import session_listeners

HEAD_RESOURCE = "two_node_head"
WORKER_RESOURCE = "two_node_worker"
OBJECT_STORE_BYTES = 100_000_000
WORKER_PORTS = (
    "node_manager_port", "object_manager_port", "dashboard_agent_listen_port", "metrics_agent_port",
    "runtime_env_agent_port", "metrics_export_port",
)  # fmt: skip


@dataclass
class TwoNodes:
    """The running cluster: its Jobs API, token, node ids, temp dirs and process groups."""

    url: str
    dashboard_port: int
    token: str
    head_node: str
    worker_node: str
    temp_dir: Path
    pgids: list[int]
    started_in_s: float

    def node_name(self, node_id: str) -> str:
        return {self.head_node: "head", self.worker_node: "worker"}.get(node_id, f"unknown node {node_id}")

    def get(self, path: str) -> Any:
        """GET `path` of the dashboard with the token (plain HTTP: Ray's client in a test process
        keeps the first token it loaded)."""
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)


def _free_ports(count: int) -> list[int]:
    """`count` ports free on loopback now, below the kernel's ephemeral range: a port the kernel
    hands out (Ray's workers and gRPC clients bind port 0) could be taken before its server binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    found: list[int] = []
    while len(found) < count:
        port = random.randrange(20000, low if low > 21000 else 65536)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in found:
            found.append(port)
    return found


def _node_env(token: str) -> dict[str, str]:
    """The nodes' environment: token auth, single-machine mode (every server on 127.0.0.1), no
    launcher secrets."""
    from launcher.backends.base import passthrough_env

    env = {k: v for k, v in os.environ.items() if k not in passthrough_env() and not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    env.update(RAY_USAGE_STATS_ENABLED="0")
    return env


def _run(cmd: list[str], env: dict[str, str], what: str) -> int:
    """Run `cmd` in a session of its own; its pid is the process group of what it leaves running."""
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )  # fmt: skip
    out, _ = proc.communicate(timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{out[-3000:]}")
    return proc.pid


def start(head_cpus: int = 1, worker_cpus: int = 2) -> TwoNodes:
    """Start the head, then the worker node; return once the Jobs API lists both alive."""
    from launcher.backends.ray.cluster import HEAD_PORT_FLAGS, METRIC_PORT_ENV

    started = time.monotonic()
    token = secrets.token_hex(32)
    temp = Path(tempfile.mkdtemp(prefix="ray2n-", dir="/tmp"))  # 0700; short: socket paths
    names = [*HEAD_PORT_FLAGS, *METRIC_PORT_ENV, "dashboard", *WORKER_PORTS]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    env = _node_env(token)
    env.update({name: str(ports[name]) for name in METRIC_PORT_ENV})
    head = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--disable-usage-stats",
        "--include-dashboard=true", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={ports['dashboard']}", f"--temp-dir={temp}/head",
        f"--num-cpus={head_cpus}", "--num-gpus=0", f"--resources={json.dumps({HEAD_RESOURCE: 1})}",
        f"--object-store-memory={OBJECT_STORE_BYTES}", "--min-worker-port=0", "--max-worker-port=0",
        *(f"--{flag}={ports[flag]}" for flag in HEAD_PORT_FLAGS),
    ]  # fmt: skip
    pgids: list[int] = []
    nodes = TwoNodes(
        f"http://127.0.0.1:{ports['dashboard']}", ports["dashboard"], token, "", "", temp, pgids, 0.0
    )
    try:
        pgids.append(_run(head, env, "ray start --head"))
        spec = {
            "gcs_address": f"127.0.0.1:{ports['port']}", "num_cpus": worker_cpus,
            "resources": {WORKER_RESOURCE: 1}, "temp_dir": f"{temp}/worker",
            **{name: ports[name] for name in WORKER_PORTS},
        }  # fmt: skip
        worker = [sys.executable, "-m", "tests.integration.ray.two_node", "worker", json.dumps(spec)]
        pgids.append(_run(worker, env, "the worker node"))
        deadline = time.monotonic() + 60
        while not (nodes.head_node and nodes.worker_node):
            if time.monotonic() > deadline:
                raise RuntimeError("the two Ray nodes did not both come up within 60 s")
            with contextlib.suppress(OSError, ValueError):
                listed = nodes.get("/api/v0/nodes?detail=false")["data"]["result"]["result"]
                for node in listed:
                    total = node.get("resources_total") or {}
                    if node.get("state") == "ALIVE" and HEAD_RESOURCE in total:
                        nodes.head_node = node["node_id"]
                    if node.get("state") == "ALIVE" and WORKER_RESOURCE in total:
                        nodes.worker_node = node["node_id"]
            time.sleep(0.5)
    except BaseException:
        stop(nodes)
        raise
    nodes.started_in_s = time.monotonic() - started
    return nodes


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(nodes: TwoNodes) -> None:
    """SIGTERM each node's process group, SIGKILL what is left after 3 s; remove the temp dir."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        for pgid in nodes.pgids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p) for p in nodes.pgids):
            time.sleep(0.2)
    shutil.rmtree(nodes.temp_dir, ignore_errors=True)


def listeners(nodes: TwoNodes) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening socket of both nodes (tests.support.ray_head)."""
    return session_listeners(set(nodes.pgids))


def _start_worker(spec: dict[str, Any]) -> None:
    """What `ray start --address` does for a worker node, minus its refusal in single-machine mode."""
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(
        node_ip_address="127.0.0.1", num_gpus=0, object_store_memory=OBJECT_STORE_BYTES,
        min_worker_port=0, max_worker_port=0, **spec,
    )  # fmt: skip
    node = Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False)
    print(f"worker node {node.node_id} started", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] != ["worker"] or len(sys.argv) != 3:
        sys.exit("usage: python -m tests.integration.ray.two_node worker SPEC_JSON")
    _start_worker(json.loads(sys.argv[2]))
