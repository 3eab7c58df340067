"""The Ray backend's pure parts: every Ray job status has a state, and addresses resolve."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.ray_head import _require_ray


def test_state_table_covers_every_ray_job_status() -> None:
    _require_ray()
    from ray.job_submission import JobStatus

    from launcher.backends.ray.backend import RAY_STATES, _ray_state
    from launcher.runs.state import RunState

    assert set(RAY_STATES) == {s.value for s in JobStatus}
    assert RAY_STATES["STOPPED"] is RunState.CANCELLED and RAY_STATES["SUCCEEDED"] is RunState.COMPLETED

    @dataclass
    class Details:
        status: JobStatus
        driver_exit_code: int | None = None
        message: str = ""

    assert _ray_state(Details(JobStatus.FAILED, 124)) is RunState.TIMEOUT
    assert _ray_state(Details(JobStatus.FAILED, None, "failed with exit code 124, last")) is RunState.TIMEOUT
    assert _ray_state(Details(JobStatus.FAILED, 1)) is RunState.FAILED


@pytest.mark.parametrize(
    ("address", "url", "here"),
    [
        ("local", "http://127.0.0.1:8265", True),
        ("http://head:8265", "http://head:8265", False),
        ("head:9000", "http://head:9000", False),
        ("https://ray.example.org", "https://ray.example.org:443", False),
        ("ray://head:10001", "http://head:8265", False),
        ("http://localhost:8266/", "http://localhost:8266", True),
    ],
)
def test_addresses(address: str, url: str, here: bool) -> None:
    from launcher.backends.ray.cluster import resolve_address
    from launcher.config.cluster import RaySpec

    endpoint = resolve_address(RaySpec(address=address))
    assert (endpoint.url, endpoint.on_this_machine) == (url, here)
    assert endpoint.start_if_down == (address == "local")
