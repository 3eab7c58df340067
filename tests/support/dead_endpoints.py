"""Endpoints that do not work, on loopback only: a port nobody listens on (connection refused), and a
server that accepts connections and never answers (reads nothing, sends nothing) until closed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def hanging_server(max_seconds: float = 600) -> Iterator[int]:
    """A loopback port that accepts every connection and never answers; yields the port. The
    connections are held until the block ends (or `max_seconds`, a bound in case a test hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.wait(0):
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    timer = threading.Timer(max_seconds, stop.set)
    timer.daemon = True
    timer.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        timer.cancel()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
