"""A lab's own project for the custom job kind tests: launch.toml, a recipe naming the project's job
module with a `params:` section, and the job, which writes its params and where it ran from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from launcher.config.yamlio import Loader

RECIPE = """\
# A lab's own probe job: writes its params to results/probe.json.
# launch recipe probe --cluster local
job: my_lab.probe
resources:
  gpus_per_node: 0
  time: "00:10:00"
params:
  lr: 1e-5
  layers: [0, 12, 24]
  probe: {kind: linear, bias: true, note: "é — as written"}
  wall: 72:00:00
  nothing: null
"""

JOB = '''\
"""python -m my_lab.probe --run-dir DIR: the params it was given and where its code lives."""

import json
import sys

from jobs.entry import BAD_INPUT, read_run_params


def main() -> int:
    found = read_run_params(sys.argv[1:], "probe")
    if found is None:
        return BAD_INPUT
    recipe, run_dir, params = found
    print(f"probe file: {__file__}")
    out = run_dir / "results" / "probe.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": recipe.name, "params": params, "file": __file__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def write_project(root: Path) -> Path:
    """The project under `root` (its recipe `probe`, its package `my_lab`); returns root."""
    for rel, text in {"launch.toml": "", "recipes/probe.yaml": RECIPE, "my_lab/__init__.py": "",
                      "my_lab/probe.py": JOB}.items():  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def params_as_written() -> dict[str, Any]:
    """The recipe's params section as the launcher's YAML reader reads the file."""
    params: dict[str, Any] = yaml.load(RECIPE, Loader=Loader)["params"]
    return params


def check_probe_run(proc: subprocess.CompletedProcess[str], project: Path) -> None:
    """The run completed, its job wrote the params as written, and it ran the code the run records:
    the project's module as copied into the run's code snapshot, not the project's own file."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = proc.stdout.split()[0]
    assert f"{run_id}: completed" in proc.stderr, proc.stdout + proc.stderr
    run_dir = project / "runs" / run_id
    probe = json.loads((run_dir / "results" / "probe.json").read_text())
    assert probe["name"] == "probe" and probe["params"] == params_as_written()
    assert yaml.load((run_dir / "recipe.yaml").read_text(), Loader=Loader)["params"] == params_as_written()
    ran = Path(probe["file"])
    assert f"probe file: {ran}" in proc.stdout
    code = json.loads((run_dir / "launch.json").read_text())["code"]
    snapshots = project / "runs" / ".snapshots"
    assert ran.resolve() == (snapshots / code["snapshot"] / "my_lab" / "probe.py").resolve(), (ran, code)
