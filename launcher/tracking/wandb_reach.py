"""Whether W&B answers: a short probe of its base URL before anything waits on it (`launch sync
--wandb`, `launch bench` online), so that a closed port, an unknown host or a server that never
answers is one line within REACH_TIMEOUT_S, not minutes of silence."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from launcher.errors import SetupError, UserError

REACH_TIMEOUT_S = 10.0
"""How long W&B's base URL has to answer (name resolution, connection and HTTP status line)."""
DEFAULT_BASE_URL = "https://api.wandb.ai"


def base_url(env: Mapping[str, str] | None = None) -> str:
    """WANDB_BASE_URL (default W&B's cloud); a UserError naming the variable when it is not an
    http(s) URL with a host."""
    env = os.environ if env is None else env
    url = (env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            f"WANDB_BASE_URL: {url!r} is not a URL; valid: http(s)://HOST[:PORT], e.g. {DEFAULT_BASE_URL}"
        )
    return url.rstrip("/")


def _unreachable_reason(err: BaseException) -> str | None:
    """Why the probe's error means nothing answers at the URL; None when something did answer
    (an HTTP error status, a TLS error: a server is there, `wandb sync` says what it wants)."""
    if isinstance(err, urllib.error.HTTPError | ssl.SSLError):
        return None
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, ssl.SSLError):
        return None
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    return next(iter(str(reason).splitlines()), "") or type(reason).__name__


def check_reachable(url: str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """A SetupError (one line naming `url`) unless a server answers at `url` within `timeout_s`, all
    included (name resolution is not bounded by a socket timeout, so the probe runs in a thread
    the caller stops waiting for). Any HTTP answer counts, 401 and 404 too."""
    outcome: list[BaseException | None] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout_s):
                outcome.append(None)
        except Exception as err:  # every failure is classified below
            outcome.append(err)

    thread = threading.Thread(target=probe, name="wandb-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    hint = "check WANDB_BASE_URL and the network (or log offline: WANDB_MODE=offline)"
    reason = _unreachable_reason(outcome[0]) if outcome and outcome[0] is not None else None
    if not outcome or reason == "timed out":
        raise SetupError(f"W&B at {url} did not answer within {timeout_s:g} s; {hint}")
    if reason is not None:
        raise SetupError(f"W&B at {url} cannot be reached ({reason}); {hint}")
