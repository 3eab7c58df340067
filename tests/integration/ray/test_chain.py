"""A `--then` chain on the Ray head: the evaluations are a follow-on job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.chain import THEN, TRAIN, chain_line, check_results
from tests.support.cli import Launch, wait_for
from tests.support.ray_head import Head


@pytest.mark.slow
@pytest.mark.ray
def test_ray_chain_is_a_follow_on_job(launch: Launch, chain_world: Path, head: Head) -> None:
    one_cpu = ["--set", "resources.cpus_per_gpu=1"]
    proc = launch("recipe", "tiny_ner", "--cluster", str(head.profile), *TRAIN, *one_cpu, *THEN, check=True)
    run_id = proc.stdout.split()[0]
    assert (
        json.loads((chain_world / run_id / "launch.json").read_text())["chain"]["job_id"] == f"{run_id}-chain"
    )
    assert "entrypoint_num_cpus: 0" in (chain_world / run_id / "chain" / "chain.yaml").read_text()
    wait_for(lambda: chain_line(launch, run_id).startswith(("chain: completed", "chain: failed")), 300, 3)
    assert chain_line(launch, run_id) == "chain: completed (2 evaluation(s) completed)"
    check_results(chain_world, run_id)
