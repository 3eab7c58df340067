"""A lab's own job kind on the local backend: a temporary project whose recipe names its own module
(`job: my_lab.probe`) with a `params:` section, run through `launch` from the project's directory."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import Launch, run_state
from tests.support.lab_project import check_probe_run, write_project


def test_a_projects_own_job_runs_with_its_params_as_written(launch: Launch, tmp_path: Path) -> None:
    project = write_project(tmp_path)
    listed = launch("recipes", check=True).stdout
    assert any("probe" in line and "my_lab.probe" in line for line in listed.splitlines()), listed
    proc = launch("recipe", "probe", "--cluster", "local", "--follow", timeout=180)
    check_probe_run(proc, project)
    assert run_state(launch, proc.stdout.split()[0]) == "completed"


def test_a_job_module_that_cannot_run_is_refused_before_anything_is_written(
    launch: Launch, tmp_path: Path
) -> None:
    project = write_project(tmp_path)
    (project / "my_lab" / "blind.py").write_text("print('takes no run directory')\n")
    cases = {
        "job=my_lab.missing": "--set job: module 'my_lab.missing' not found: no 'missing' in package",
        "job=my_lab.blind": "blind.py does not take --run-dir (the launcher runs python -m my_lab.blind",
        "train.epochs=1": "--set train.epochs: train: is for the built-in job kinds, and job my_lab.probe",
    }
    for override, message in cases.items():
        proc = launch("recipe", "probe", "--cluster", "local", "--set", override)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())
