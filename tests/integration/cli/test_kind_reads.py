"""A generic key the recipe's job kind does not read is refused through the CLI in one line, before
anything is written (issue 26 item 24: `--set eval.max_samples=40` on agnews_zero_shot classified
500 items); a key it reads goes through."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import Launch

LINE = "error: --set eval.max_samples: job classify does not read it; use classify.sample\n"


def _nothing_written(env: dict[str, str]) -> None:
    for var in ("LAUNCH_RUNS", "LAUNCH_HOME"):
        root = Path(env[var])
        assert not root.exists() or not any(root.rglob("*")), sorted(root.rglob("*"))


def test_the_reported_case_is_refused_in_one_line_naming_the_key_classify_reads(
    launch: Launch, launch_env: dict[str, str]
) -> None:
    for extra in (["--dry-run"], []):  # without --dry-run: the original report, which ran 500 items
        proc = launch("recipe", "agnews_zero_shot", "-c", "local", "--set", "eval.max_samples=40", *extra)
        assert (proc.returncode, proc.stderr, proc.stdout) == (2, LINE, ""), proc.stderr
    _nothing_written(launch_env)


def test_every_verb_that_loads_a_recipe_refuses_it(launch: Launch, launch_env: dict[str, str]) -> None:
    for args in (
        ["show", "agnews_zero_shot", "--set", "eval.max_samples=40"],
        ["plan", "agnews_zero_shot", "-c", "local", "--set", "eval.max_samples=40"],
    ):
        proc = launch(*args)
        assert (proc.returncode, proc.stderr) == (2, LINE), (args, proc.stderr)
    grid = launch("sweep", "agnews_zero_shot", "-c", "local", "--grid", "eval.max_samples=4,5", "--dry-run")
    assert grid.returncode == 2 and grid.stderr == (
        "error: sweep point 0 (eval.max_samples=4): --set eval.max_samples: job classify does not read it; "
        "use classify.sample\n"
    ), grid.stderr
    _nothing_written(launch_env)


def test_a_recipe_file_is_blamed_and_a_read_key_goes_through(launch: Launch, tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "name: mine\njob: classify\ntask: classification\nmodel: {name_or_path: gpt-4o-mini}\n"
        "data: {dataset: ag_news}\neval: {engine: openai, split: validation, api: {base_url: 'http://127.0.0.1:9/v1'}}\n"
    )
    proc = launch("recipe", str(mine), "-c", "local", "--dry-run")
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"error: {mine}: eval.split: job classify does not read it (of eval it reads only max_new_tokens, "
        "engine, shots, confidence, api.*, cache, results_dir)"
    ], proc.stderr
    ok = launch("recipe", "agnews_zero_shot", "-c", "local", "--set", "classify.sample=40", "--dry-run")
    assert ok.returncode == 0 and "sample: 40" in ok.stdout, ok.stderr
    smoke = launch("recipe", "tiny_smoke", "-c", "local", "--set", "train.lr=1e-5", "--dry-run")
    assert smoke.returncode == 0, smoke.stderr  # smoke rehearses train: a sweep of lr runs without a model
