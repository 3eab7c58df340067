"""`--then` values the CLI refuses (exit 2, nothing submitted) and the dry run of a chain, on the
local backend's and dev-slurm's profiles (nothing reaches a scheduler)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chain import THEN, TRAIN
from tests.support.cli import Launch


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (["deploy"], "--then deploy: not a step; valid: reeval[=EVAL_RECIPE][@CLUSTER], bench"),
        (["bench"], "--then bench: needs a reeval step before it"),
        (["reeval=nope"], "--then reeval=nope: unknown recipe 'nope'"),
        (["reeval=tiny_ner"], "but a train run is evaluated by job: evaluate; valid: "),
        (["reeval@nowhere"], "--then reeval@nowhere: unknown cluster 'nowhere'"),
        (["reeval=", "bench"], "--then reeval=: not a step"),
    ],
)
@pytest.mark.parametrize("cluster", ["local", "dev-slurm"])
def test_bad_then_values_exit_2_with_nothing_submitted(
    launch: Launch, chain_world: Path, values: list[str], needle: str, cluster: str
) -> None:
    args = [a for v in values for a in ("--then", v)]
    proc = launch("recipe", "tiny_ner", "--cluster", cluster, *TRAIN, *args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not chain_world.exists() or not any(chain_world.iterdir())
    assert "runs (0)" in launch("status", check=True).stdout


def test_dry_run_says_what_follows(launch: Launch, chain_world: Path) -> None:
    proc = launch("recipe", "tiny_ner", "--cluster", "local", *THEN, "--dry-run", check=True)
    assert "# then: reeval=chain_eval, bench" in proc.stdout
    assert not chain_world.exists()
