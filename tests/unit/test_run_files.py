"""`--dry-run` shows every file a submission writes, from the same list `Run.create` writes."""

from __future__ import annotations

import os
from pathlib import Path

from launcher.config.cluster import load_cluster
from launcher.config.recipe import load_recipe
from launcher.runs.code import GitState
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.run import Run, files_text
from tests.support.code import fixed_code


def test_a_created_run_holds_exactly_the_files_listed(tmp_path: Path) -> None:
    run = Run.new(
        load_recipe("llama4_scout_qlora", ["distributed.strategy=deepspeed"]), load_cluster("a800"), tmp_path,
        code=fixed_code(),
    )  # fmt: skip
    script = "#!/bin/bash\necho hi\n"
    listed = {f.name: f.text for f in run.files(script)}
    assert sorted(listed) == ["axolotl.yaml", "deepspeed.json", "recipe.yaml", "submit.sh"]
    run.create(script)
    written = {
        p.name: p.read_text() for p in run.run_dir.iterdir() if p.is_file() and p.name != "launch.json"
    }
    assert written == listed
    assert os.access(run.run_dir / "submit.sh", os.X_OK)
    shown = files_text(run, script)
    assert all(text.rstrip() in shown for name, text in listed.items() if name != "submit.sh")
    assert "# code: snapshot 0123456789abcdef (0 files, 0.0 MB) at /runs/.snapshots/0123456789abcdef" in shown


def test_a_dirty_project_writes_its_diff_which_the_dry_run_names(tmp_path: Path) -> None:
    """code.diff: the uncommitted changes, listed by --dry-run (not printed), written at create;
    launch.json's `code` names it, and keeps git_commit/git_dirty for older readers."""
    diff = "# uncommitted changes of /project against abc\ndiff --git a/x b/x\n+\udcff\n"
    git = GitState(Path("/project"), "abc123", True, diff)
    run = Run.new(load_recipe("tiny_smoke"), load_cluster("local"), tmp_path, code=fixed_code(git=git))
    listed = [f.name for f in run.files("#!/bin/bash\n")]
    assert listed == ["recipe.yaml", "submit.sh", "code.diff"]
    shown = files_text(run, "#!/bin/bash\n")
    assert "#   code.diff (the uncommitted changes of /project, 3 lines)" in shown and "+\udcff" not in shown
    info = run.create("#!/bin/bash\n")
    assert (run.run_dir / "code.diff").read_bytes().endswith(b"+\xff\n")  # the bytes git gave, kept
    assert (info.git_commit, info.git_dirty) == ("abc123", True)
    saved = LaunchInfo.read(run.run_dir).code
    assert saved is not None and saved.git is not None and saved.git.diff == "code.diff"
    assert (saved.snapshot, saved.live, saved.workdir) == ("0123456789abcdef", False, "/project")
