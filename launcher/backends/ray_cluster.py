"""Ray cluster lifecycle: the address of a cluster's Jobs API, starting a head on this machine,
and the inventory of its nodes. No job logic here; `ray` itself is imported lazily.

See `launcher/backends/ray.py` for the address forms a profile may use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from launcher.backends.base import passthrough_env
from launcher.cluster import RaySpec
from launcher.errors import UserError

INSTALL_HINT = "pip install -e '.[ray]' (ray[default], which has the Jobs API client)"
OBJECT_STORE_BYTES = 200_000_000
HEAD_START_TIMEOUT = 180


@dataclass(frozen=True)
class Endpoint:
    """Where the Jobs API answers, and whether that is this machine."""

    url: str
    on_this_machine: bool
    start_if_down: bool


def resolve_address(spec: RaySpec, source: str = "<cluster>") -> Endpoint:
    """`ray.address` -> the Jobs API URL (see the module docstring); a bad address is a UserError."""
    address = spec.address.strip()
    if address == "local":
        return Endpoint(f"http://127.0.0.1:{spec.dashboard_port}", True, True)
    if "://" not in address:
        address = f"http://{address}"
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https", "ray") or not parts.hostname or port == -1:
        raise UserError(
            f"{source}: ray.address: '{spec.address}' is not an address; valid: local, "
            "http://HOST:8265 (the dashboard's Jobs API) or ray://HOST:10001"
        )
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    if parts.scheme == "ray":
        url = f"http://{shown}:{spec.dashboard_port}"
    else:
        url = f"{parts.scheme}://{shown}:{port or (443 if parts.scheme == 'https' else 8265)}"
    return Endpoint(url, host in ("127.0.0.1", "localhost", "::1"), False)


def _get_json(url: str, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def answers(url: str, timeout: float = 5.0) -> str | None:
    """None when the Jobs API at `url` answers, else why not (one line)."""
    try:
        _get_json(f"{url}/api/version", timeout)
        return None
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code} from /api/version: not a Ray dashboard?"
    except urllib.error.URLError as err:
        return str(err.reason)
    except (OSError, ValueError) as err:
        return str(err) or type(err).__name__


@dataclass
class NodeResources:
    cpus: float
    gpus: float
    memory: float


def cluster_nodes(url: str) -> list[NodeResources] | None:
    """The alive nodes' total resources from the dashboard's state API; None when it cannot say."""
    try:
        data = _get_json(f"{url}/api/v0/nodes?limit=10000&detail=false", timeout=10)
        nodes = data["data"]["result"]["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    found = []
    for node in nodes:
        if node.get("state") != "ALIVE":
            continue
        total = node.get("resources_total") or {}
        found.append(NodeResources(total.get("CPU", 0.0), total.get("GPU", 0.0), total.get("memory", 0.0)))
    return found


def start_local_head(
    dashboard_port: int,
    num_cpus: int,
    num_gpus: int | None = None,
    extra: Sequence[str] = (),
) -> int:
    """`ray start --head` on loopback in its own session; wait until its Jobs API answers.

    Returns the process group of the head's processes. The launcher's passthrough variables
    (secrets) are kept out of the head's environment: each job gets them in its runtime_env."""
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--disable-usage-stats",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
        f"--object-store-memory={OBJECT_STORE_BYTES}", f"--num-cpus={num_cpus}",
        *([f"--num-gpus={num_gpus}"] if num_gpus is not None else []), *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in passthrough_env()}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env=env, start_new_session=True,
        )  # fmt: skip
        out, _ = proc.communicate(timeout=HEAD_START_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise UserError(f"`ray start --head` did not finish within {HEAD_START_TIMEOUT} s") from None
    except OSError as err:
        raise UserError(f"could not run `ray start --head`: {err}") from None
    if proc.returncode != 0:
        lines = [line for line in (out or "").splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit code {proc.returncode}"
        raise UserError(f"`ray start --head` failed: {why.strip()}")
    url = f"http://127.0.0.1:{dashboard_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            _get_json(f"{url}/api/jobs/", timeout=5)
            return proc.pid
        time.sleep(0.5)
    raise UserError(f"a Ray head was started but its Jobs API at {url} does not answer")


def job_client_class() -> Any:
    """ray.job_submission.JobSubmissionClient, imported only here (ray is an extra)."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as err:
        raise UserError(f"backend ray needs the Ray Jobs client ({err}): {INSTALL_HINT}") from None
    for name in [n for n in logging.root.manager.loggerDict if n == "ray" or n.startswith("ray.")]:
        logging.getLogger(name).setLevel(logging.ERROR)  # upload chatter would break our output
    return JobSubmissionClient


def last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
