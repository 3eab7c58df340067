"""The session's one Ray head on loopback (2 CPUs, 2 logical GPUs), for every test module that
needs it: a pytest plugin (imported by tests/conftest.py), so importing the fixture into a
second module never starts a second head.

The head is started by the launcher's own `start_local_head` (what `address: local` runs) on free
ports and a private temp dir, and its process group is killed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by conftest.py: a test session must not need the backends to start
    from launcher.backends.ray.cluster import LocalHead


@dataclass
class Head:
    url: str
    dashboard_port: int
    profile: Path
    local: LocalHead


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def _profile(path: Path, address: str, extra: str = "") -> Path:
    path.write_text(
        "# The test Ray head: 2 CPUs, 2 logical GPUs (the profile claims 8 per node, as ray.yaml does).\n"
        f"# launch recipe tiny_smoke --cluster {path}\n"
        f"name: {path.stem}\nbackend: ray\ngpu: {{type: null, memory_gb: 80, per_node: 8, bf16: true}}\n"
        f"limits: {{max_nodes: 4}}\nray: {{address: '{address}'{extra}}}\n"
    )
    return path


def _require_ray() -> None:
    """Fail (never skip) without ray, saying how to install it."""
    try:
        import ray.job_submission  # noqa: F401
    except ImportError:
        pytest.fail("ray is not installed: pip install -e '.[dev]' (or '.[ray]': ray[default])")


@pytest.fixture(scope="session")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    _require_ray()
    from launcher.backends.ray.cluster import start_local_head

    (dashboard,) = _free_ports(1)
    started = time.monotonic()
    local = start_local_head(dashboard, num_cpus=2, num_gpus=2)  # free ports, private temp dir, token
    pgid, temp = local.pgid, Path(local.temp_dir)
    sys.stderr.write(f"\n[ray head up in {time.monotonic() - started:.1f}s at 127.0.0.1:{dashboard}]\n")
    profiles = tmp_path_factory.mktemp("ray-profiles")
    url = f"http://127.0.0.1:{dashboard}"
    try:
        yield Head(url, dashboard, _profile(profiles / "raytest.yaml", url), local)
    finally:
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(pgid):
                time.sleep(0.2)
        shutil.rmtree(temp, ignore_errors=True)
        token = Path(local.token_file)
        for record in (token, token.with_suffix(".json")):
            record.unlink(missing_ok=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def session_listeners(sessions: set[int]) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket and bound UDP socket of the
    processes of these sessions and all their descendants (a Ray job's driver runs in a session of
    its own, under the job supervisor)."""
    import contextlib

    import psutil

    procs: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(proc.pid) in sessions:
                procs.update({p.pid: p for p in [proc, *proc.children(recursive=True)]})
    found = []
    for proc in procs.values():
        with contextlib.suppress(psutil.Error, OSError):
            found += [
                (proc.name(), conn.laddr.ip, conn.laddr.port)
                for conn in proc.net_connections(kind="inet")
                if conn.laddr and (conn.status == psutil.CONN_LISTEN or conn.type == socket.SOCK_DGRAM)
            ]
    return found
