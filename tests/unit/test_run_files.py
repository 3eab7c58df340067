"""`--dry-run` shows every file a submission writes, from the same list `Run.create` writes."""

from __future__ import annotations

import os
from pathlib import Path

from launcher.config.cluster import load_cluster
from launcher.config.recipe import load_recipe
from launcher.runs.run import Run, files_text


def test_a_created_run_holds_exactly_the_files_listed(tmp_path: Path) -> None:
    run = Run.new(
        load_recipe("llama4_scout_qlora", ["distributed.strategy=deepspeed"]), load_cluster("a800"), tmp_path
    )
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
