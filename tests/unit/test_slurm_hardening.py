"""The Slurm backend's parsers: sbatch's answer and sinfo's node shapes."""

from __future__ import annotations

import pytest

from launcher.backends.slurm.backend import SlurmBackend
from launcher.backends.slurm.commands import SlurmGarbled, parse_sbatch
from launcher.backends.slurm.parse import parse_sinfo
from launcher.config.cluster import load_cluster


def test_parse_sbatch() -> None:
    assert parse_sbatch("4242\n") == "4242"
    assert parse_sbatch("sbatch: warning: something\n4242;cluster-a\n") == "4242"
    for garbage in ("", "\n", "Submitted batch job 12", "12abc", "error;12", "-1"):
        with pytest.raises(SlurmGarbled):
            parse_sbatch(garbage)


def test_sinfo_node_shapes() -> None:
    text = "gpu|gpu:a800:8|3|infinite|32|20480\ngpu|gpu:a800:4|2|infinite|64+|512000\ncpu|(null)|4|30|8|n/a\n"
    parts = parse_sinfo(text)
    assert [(s.count, s.gpus, s.cpus, s.mem_mb) for s in parts["gpu"].shapes] == [
        (3, 8, 32, 20480), (2, 4, 64, 512000)
    ]  # fmt: skip
    assert parts["cpu"].shapes == [] and parts["cpu"].nodes == 4
    assert SlurmBackend(load_cluster("dev-slurm")).spec.partition == "gpu"
