"""Bad classify recipes are refused in one line through the CLI."""

from __future__ import annotations

from tests.support.cli import Launch


def test_bad_classify_recipes_are_refused_in_one_line(launch: Launch) -> None:
    for args, key in (
        (["--set", "eval.engine=vllm"], "eval.engine"),
        (["--set", "classify.mode=cascade", "--set", "classify.levels=[2]"], "classify.levels"),
        (["--set", "classify.prompt=/nonexistent.txt"], "classify.prompt"),
        (["--set", "data.dataset=csv"], "data.path"),
        (["--set", "classify.modes=oracle"], "classify.modes"),
    ):
        proc = launch("recipe", "agnews_zero_shot", "--cluster", "local", *args)
        assert proc.returncode == 2 and key in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
