"""The classify job against vLLM's OpenAI server on CPU (cluster/dev/vllm-up.sh, continuous batching):
with the research's own 60 s timeout and 50 in flight, every item is classified with a logprob
confidence, vLLM decodes several of the job's requests at once (its /metrics
`vllm:num_requests_running`), and the 50 become what its KV cache holds (/metrics
`kv_cache_max_concurrency`, vllm-up.sh's LLM_PARALLEL). Nothing here asserts a speed:
benchmarks/classify_throughput.py measures that."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.classify import run_job
from tests.support.cli import Launch
from tests.support.llm_server import MODEL, ROOT

ITEMS = 20
RUNNING = re.compile(r"^vllm:num_requests_running\{[^}]*\} ([0-9.]+)$", re.M)
KV_CONCURRENCY = re.compile(r'^vllm:cache_config_info\{[^}]*kv_cache_max_concurrency="([0-9.]+)"', re.M)


@pytest.fixture(scope="module")
def vllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bash cluster/dev/vllm-up.sh` on a free port (it builds its virtualenv first where no cached one
    is complete); its last stdout line is the base URL. vllm-down.sh stops it."""
    state = tmp_path_factory.mktemp("vllm")
    # LLM_EAGER: no torch.compile, so it starts in seconds instead of about two minutes (and decodes
    # about a fifth slower, which nothing here measures)
    env = {**os.environ, "LLM_PORT": "0", "LLM_STATE": str(state), "LLM_EAGER": "1"}
    proc = subprocess.run(["bash", str(ROOT / "cluster/dev/vllm-up.sh")], env=env, capture_output=True,
                          text=True, timeout=1800)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    url = proc.stdout.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1"), proc.stdout
    try:
        yield url
    finally:
        port = url.rsplit(":", 1)[1].split("/")[0]
        subprocess.run(["bash", str(ROOT / "cluster/dev/vllm-down.sh")], timeout=60, check=False,
                       env={**os.environ, "LLM_PORT": port, "LLM_STATE": str(state)})  # fmt: skip
        assert not list(Path(state).glob("*.pid"))


def metrics(root: str) -> str:
    with urllib.request.urlopen(root + "/metrics", timeout=5) as response:
        return str(response.read().decode())


class RunningWatch:
    """Polls GET /metrics every 50 ms in a thread; `most` is the most requests vLLM ran at once."""

    def __init__(self, root: str) -> None:
        self.root, self.most, self._stop = root, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            found = RUNNING.findall(metrics(self.root))
            assert found, "no vllm:num_requests_running in /metrics"
            self.most = max(self.most, int(sum(float(n) for n in found)))

    def __enter__(self) -> RunningWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.slow
def test_research_defaults_against_vllm_decode_requests_together(vllm_url: str, launch: Launch) -> None:
    root = vllm_url.removesuffix("/v1")
    found = KV_CONCURRENCY.search(metrics(root))
    assert found and float(found.group(1)) == 16, "vllm-up.sh's KV cache holds LLM_PARALLEL=16 requests"
    with RunningWatch(root) as watch:
        _, results, rows, log = run_job(
            launch, "agnews_zero_shot", "--set", f"eval.api.base_url={vllm_url}",
            "--set", f"model.name_or_path={MODEL}", "--set", f"classify.sample={ITEMS}",
            "--set", "classify.response_format=json_schema", "--set", "eval.cache=false",
        )  # fmt: skip
    assert results["requests_sent"] == ITEMS and results["failures"] == 0 and len(rows) == ITEMS, log
    assert results["logprobs_available"] and results["concurrency"] == 16  # max_concurrency 50, capped
    assert "serves 16 requests at a time (GET /metrics" in log and "max_concurrency 50" in log
    for row in rows:
        assert row["parse_status"] == "ok" and row["predictions"], row
        assert row["predictions"][0]["label"] in row["candidates"]
        confidence = row["predictions"][0]["confidence_logprob"]
        assert confidence is not None and 0 <= confidence <= 1, row
    assert watch.most >= 2, f"vLLM never ran more than {watch.most} request at once"
    assert f"{ITEMS}/{ITEMS} items" in log
