"""The real OpenAI-compatible server of the classify tests: llama.cpp serving SmolLM2-135M-Instruct
on 127.0.0.1, started and stopped by cluster/dev/llm-up.sh / llm-down.sh as a user would."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m-instruct"


@dataclass
class LLMServer:
    url: str
    port: str
    state: Path
    log: Path


def start_server(state: Path, **env: str) -> LLMServer:
    """`bash cluster/dev/llm-up.sh` on a free port; its last stdout line is the base URL."""
    full = {**os.environ, "LLM_PORT": "0", "LLM_STATE": str(state), "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.run(["bash", str(ROOT / "cluster/dev/llm-up.sh")], env=full, capture_output=True,
                          text=True, timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    url = proc.stdout.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1"), proc.stdout
    port = url.rsplit(":", 1)[1].split("/")[0]
    return LLMServer(url, port, state, state / f"llm-{port}.log")


def stop_server(server: LLMServer) -> None:
    env = {**os.environ, "LLM_PORT": server.port, "LLM_STATE": str(server.state)}
    subprocess.run(["bash", str(ROOT / "cluster/dev/llm-down.sh")], env=env, timeout=60, check=False)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMServer]:
    server = start_server(tmp_path_factory.mktemp("llm"))
    try:
        yield server
    finally:
        stop_server(server)
