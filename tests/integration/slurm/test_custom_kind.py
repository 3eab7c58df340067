"""A lab's own job kind on the dev Slurm cluster: a temporary project whose recipe names its own
module (`job: my_lab.probe`) with a `params:` section, run through `launch` from the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Launch, require_slurm
from tests.support.lab_project import check_probe_run, write_project
from tests.support.paths import ROOT


@pytest.mark.slurm
def test_a_projects_own_job_runs_on_dev_slurm(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    project = write_project(tmp_path)
    profile = str(ROOT / "cluster" / "dev-slurm.yaml")
    proc = launch("recipe", "probe", "--cluster", profile, "--follow", timeout=300)
    check_probe_run(proc, project)
