"""The tool as a lab installs it (issue 22): a wheel built from a copy of this checkout, installed
non-editable with `pip install --no-deps --target DIR` and put first on PYTHONPATH (ahead of the
editable install; the dependencies come from this environment), used from an empty directory:
`launch init`, the project's recipes and profiles found before the built-ins (a project recipe
shadows one), the built-ins listed with their source, `tiny_smoke` run on the local backend, and
nothing under the run directory pointing into the source checkout.

The copy is the working tree's files as `git ls-files -co --exclude-standard` lists them (tracked
and untracked, not ignored), not a `git clone`: a clone would miss the work not committed yet, and
what the wheel must hold is what this checkout holds. It leaves out everything ignored (build/,
runs/, caches, egg-info), as a clone would. About 15 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import isolated_env
from tests.support.paths import ROOT

pytestmark = pytest.mark.timeout(300)

Run = Callable[..., subprocess.CompletedProcess]


def copy_tree(target: Path) -> Path:
    """The files git would see in this checkout (symlinks as links) copied to `target`."""
    names = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, names):
        source = ROOT / name
        if not source.is_symlink() and not source.is_file():
            continue  # deleted in the working tree, not yet in the index
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built and installed into a --target directory (returned)."""
    work = tmp_path_factory.mktemp("wheel")
    source = copy_tree(work / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(work / "dist")]
    subprocess.run(build, check=True, capture_output=True, cwd=work)
    (wheel,) = (work / "dist").glob("recipe_launcher-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for builtin in (
        "recipes/tiny_smoke.yaml",
        "recipes/tiny_ner.yaml",
        "cluster/local.yaml",
        "cluster/a800.yaml",
    ):
        assert f"launcher/builtin/{builtin}" in names
    assert "jobs/data/files/prompts/classify.txt" in names
    assert not [n for n in names if n.startswith("launcher/builtin/cluster/dev/") or n.startswith("tests/")]
    site = work / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True
    )
    shutil.rmtree(source)  # the installed copy must not need its sources
    return site


@pytest.fixture
def env(installed: Path, tmp_path: Path) -> dict[str, str]:
    """A world of its own with the installed copy first on PYTHONPATH; no $LAUNCH_RUNS, so the
    project's launch.toml places the runs."""
    env = isolated_env(tmp_path)
    env.pop("LAUNCH_RUNS")
    env["PYTHONPATH"] = os.pathsep.join([str(installed), *filter(None, [os.environ.get("PYTHONPATH")])])
    (tmp_path / "empty").mkdir()
    return env


@pytest.fixture
def run(installed: Path, env: dict[str, str], tmp_path: Path) -> Run:
    """The installed `launch` script, from the empty directory unless `cwd` says otherwise."""

    def launch(
        *args: str, cwd: Path = tmp_path / "empty", timeout: float = 120
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(installed / "bin" / "launch"), *args], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        assert proc.returncode == 0, (
            f"launch {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
        return proc

    return launch


def _rows(table: str) -> dict[str, list[str]]:
    """A rich table's rows by their first cell."""
    cells = [
        [c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")
    ]
    return {row[0]: row[1:] for row in cells}


def test_an_installed_wheel_from_an_empty_directory(
    run: Run, env: dict[str, str], installed: Path, tmp_path: Path
) -> None:
    where = subprocess.run(
        [sys.executable, "-c", "import launcher, jobs; print(launcher.__file__); print(jobs.__file__)"],
        env=env, cwd=tmp_path / "empty", capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert where == [str(installed / "launcher" / "__init__.py"), str(installed / "jobs" / "__init__.py")]

    project = tmp_path / "empty" / "lab"
    out = run("init", "lab", "--backend", "local").stdout
    assert f"wrote {project / 'launch.toml'}" in out and "next: cd " in out
    recipes = _rows(run("recipes", cwd=project).stdout)
    assert recipes["example"][0] == "project" and recipes["tiny_smoke"][0] == "built-in", recipes
    assert recipes["tiny_ner"][0] == "built-in"
    clusters = _rows(run("clusters", cwd=project).stdout)
    assert clusters["local"][0] == "project*" and clusters["dev-slurm"][0] == "built-in", clusters
    verbose = run("recipes", "--verbose", cwd=project).stdout
    assert f"built-in: {installed / 'launcher' / 'builtin' / 'recipes'}" in verbose.replace("\n", "")

    shipped = (installed / "launcher" / "builtin" / "recipes" / "tiny_smoke.yaml").read_text()
    (project / "recipes" / "tiny_smoke.yaml").write_text(shipped.replace("max_steps: 20", "max_steps: 3"))
    assert _rows(run("recipes", cwd=project).stdout)["tiny_smoke"][0] == "project*"
    shown = run("show", "tiny_smoke", cwd=project / "recipes").stdout  # found from below the project too
    assert f"# resolved from {project / 'recipes' / 'tiny_smoke.yaml'}" in shown and "max_steps: 3" in shown

    fast = ["--set", "env.SMOKE_STEP_SECONDS=0"]
    follow = run("recipe", "tiny_smoke", "--cluster", "local", "--follow", *fast, cwd=project / "recipes")
    assert "step 3/3" in follow.stdout and "done" in follow.stdout, follow.stdout
    run_id = follow.stdout.split()[0]
    run_dir = project / "runs" / run_id  # launch.toml: runs = "runs", beside it
    status = run("status", run_id, cwd=project).stdout
    assert ["state", "completed"] in [line.split() for line in status.splitlines()], status
    assert json.loads((run_dir / "launch.json").read_text())["run_id"] == run_id
    assert (run_dir / "recipe.yaml").is_file()
    for path in run_dir.rglob("*"):  # launch.json, submit.sh, recipe.yaml, logs: no path into the sources
        if path.is_file():
            text = path.read_bytes().decode(errors="replace")
            assert str(ROOT) not in text, f"{path.relative_to(run_dir)} names the source checkout {ROOT}"
