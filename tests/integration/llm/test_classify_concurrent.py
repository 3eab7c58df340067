"""The classify job against llama-server's parallel slots (cluster/dev/llm-up.sh): requests really
overlap on the server, and the research's 50 in flight become the server's slots (GET /props
total_slots). Nothing here asserts a speed: benchmarks/classify_throughput.py measures that."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from tests.support.classify import run_job
from tests.support.cli import Launch
from tests.support.llm_server import MODEL, LLMServer


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


class SlotWatch:
    """Polls GET /slots every 50 ms in a thread; `most` is the most slots seen processing at once."""

    def __init__(self, root: str) -> None:
        self.root, self.most, self._stop = root, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            slots = get(self.root + "/slots")
            assert isinstance(slots, list)
            self.most = max(self.most, sum(bool(s.get("is_processing")) for s in slots))

    def __enter__(self) -> SlotWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.slow
def test_requests_overlap_on_the_servers_slots(llm_server: LLMServer, launch: Launch) -> None:
    root = llm_server.url.removesuffix("/v1")
    props = get(root + "/props")
    assert isinstance(props, dict)
    slots = props["total_slots"]
    assert slots >= 2, props  # llm-up.sh's default LLM_PARALLEL is 4
    with SlotWatch(root) as watch:
        _, metrics, rows, log = run_job(
            launch, "agnews_zero_shot", "--set", f"eval.api.base_url={llm_server.url}",
            "--set", f"model.name_or_path={MODEL}", "--set", f"classify.sample={2 * slots}",
            "--set", "eval.cache=false", "--set", "eval.api.timeout_s=600",
        )  # fmt: skip
    assert metrics["requests_sent"] == 2 * slots and metrics["failures"] == 0, log
    assert all(r["parse_status"] != "error" for r in rows)
    assert watch.most >= 2, f"never more than {watch.most} slot processing at once"
    assert metrics["concurrency"] == slots  # max_concurrency 50, capped at the server's slots
    assert f"serves {slots} requests at a time" in log and "max_concurrency 50" in log
