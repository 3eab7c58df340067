"""Ray cluster lifecycle: the address of a cluster's Jobs API, starting a head on this machine,
and the inventory of its nodes. No job logic here; `ray` itself is imported lazily.

See `launcher/backends/ray/jobs.py` for the address forms a profile may use.

A head the launcher starts listens on loopback only, every port, and asks for Ray's token
(`RAY_AUTH_MODE=token`, Ray's own hardening advice; Ray >= 2.52) on top. Loopback: Ray maps
`--node-ip-address=127.0.0.1` to the machine's address unless its single-machine mode is on
(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, the default on macOS/Windows); then the node's address is
127.0.0.1, and GCS, the raylet, the object manager, the agents and the workers bind it alone (Ray
binds 127.0.0.1 instead of all interfaces when the node's address is loopback). Such a head takes
no other nodes, which a launcher-started head never has. Every port is chosen free at start (two
heads never fight over 6379) and recorded with the token file (0600) in HEAD_DIR, keyed by the
dashboard port; the launcher sends the token to a head on this machine that has such a record.
A remote cluster with token auth works when the caller sets `RAY_AUTH_MODE=token` and
`RAY_AUTH_TOKEN(_PATH)` as Ray says.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from launcher.backends.base import passthrough_env
from launcher.backends.ray.private import CLI_MODULE, reload_auth_config
from launcher.config.cluster import RaySpec
from launcher.errors import UserError

INSTALL_HINT = "pip install -e '.[ray]' (ray[default], which has the Jobs API client)"
OBJECT_STORE_BYTES = 200_000_000
HEAD_START_TIMEOUT = 180
HEAD_DIR = Path.home() / ".cache" / "recipe-launcher" / "ray-heads"
"""Per user, not per $LAUNCH_HOME: a head is a machine-wide thing, like Ray's own ~/.ray."""
HEAD_PORT_FLAGS = (
    "port", "ray-client-server-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
    "runtime-env-agent-port", "metrics-export-port", "object-manager-port", "node-manager-port",
)  # fmt: skip
METRIC_PORT_ENV = ("DASHBOARD_METRIC_PORT", "AUTOSCALER_METRIC_PORT")
"""Ray's fixed Prometheus ports (44227, 44217) unless these say otherwise."""


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


def auth_headers() -> dict[str, str]:
    """The bearer token header when `RAY_AUTH_MODE=token`: RAY_AUTH_TOKEN, else the file that
    RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token (Ray's own order)."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if not token:
        with contextlib.suppress(OSError):
            token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True)
class LocalHead:
    """A head this launcher started: its process group, ports, private temp dir and token file."""

    pgid: int
    dashboard_port: int
    ports: dict[str, int]
    temp_dir: str
    token_file: str


def _record_path(dashboard_port: int) -> Path:
    return HEAD_DIR / f"head-{dashboard_port}.json"


def recorded_head(dashboard_port: int) -> LocalHead | None:
    try:
        return LocalHead(**json.loads(_record_path(dashboard_port).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def use_head_token(url: str) -> None:
    """Talk to the launcher-started head at `url` (if it is one) with its token: this process's
    Ray client reads RAY_AUTH_MODE and RAY_AUTH_TOKEN_PATH."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or parts.port is None:
        return
    head = recorded_head(parts.port)
    if head is None or not Path(head.token_file).is_file():
        return
    os.environ.pop("RAY_AUTH_TOKEN", None)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=head.token_file)
    reload_auth_config()  # ray's config may have been read already: read it again, as ray.init does


def _free_ports(count: int) -> list[int]:
    """Ports free on loopback right now (where the head binds every one of them)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _private_file(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by this user only (0600 from the start)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _get_json(url: str, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json", **auth_headers()})
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
) -> LocalHead:
    """`ray start --head` in its own session with token authentication, free ports and a private
    (0700) temp dir; wait until its Jobs API answers; record it (see the module docstring).

    The launcher's passthrough variables (secrets) are kept out of the head's environment."""
    names = [*HEAD_PORT_FLAGS, *METRIC_PORT_ENV]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    # Ray makes its --temp-dir 0777; a 0700 parent keeps its logs (and sockets) private. Short: socket paths.
    temp_dir = tempfile.mkdtemp(prefix=f"ray-{dashboard_port}-", dir="/tmp")
    token_file = HEAD_DIR / f"head-{dashboard_port}.token"
    _private_file(token_file, secrets.token_hex(32))
    cmd = [
        sys.executable, "-m", CLI_MODULE, "start", "--head", "--disable-usage-stats",
        "--include-dashboard=true", "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
        f"--object-store-memory={OBJECT_STORE_BYTES}", f"--num-cpus={num_cpus}", f"--temp-dir={temp_dir}/ray",
        *(f"--{flag}={ports[flag]}" for flag in HEAD_PORT_FLAGS),
        *([f"--num-gpus={num_gpus}"] if num_gpus is not None else []), *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in passthrough_env() and k != "RAY_AUTH_TOKEN"}
    env.update({name: str(ports[name]) for name in METRIC_PORT_ENV})
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file))
    # Single-machine mode: the node's address stays 127.0.0.1, so every server binds loopback only.
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
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
    head = LocalHead(proc.pid, dashboard_port, ports, temp_dir, str(token_file))
    _private_file(_record_path(dashboard_port), json.dumps(asdict(head)))
    url = f"http://127.0.0.1:{dashboard_port}"
    use_head_token(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            _get_json(f"{url}/api/jobs/", timeout=5)
            return head
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
