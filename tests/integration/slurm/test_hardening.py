"""The dev Slurm cluster's daemons listen on loopback only."""

from __future__ import annotations

import re
import subprocess

import pytest


# ---------------------------------------------------------------- item 18: slurmdbd on loopback
@pytest.mark.slurm
def test_slurm_daemons_listen_on_loopback_only() -> None:
    """Every Slurm daemon's TCP socket (slurmctld 6817, slurmd 6818, slurmdbd 6819) is on 127.0.0.1."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True, timeout=10).stdout
    found = {}
    for line in out.splitlines():
        daemon = re.search(r'\(\("(slurm\w+)"', line)
        if daemon:
            found[daemon.group(1)] = line.split()[3]
    assert {"slurmctld", "slurmd", "slurmdbd"} <= set(found), out
    exposed = {d: addr for d, addr in found.items() if not addr.startswith("127.")}
    assert not exposed, f"listening beyond loopback: {exposed}"
