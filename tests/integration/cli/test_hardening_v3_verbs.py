"""Issue 26, items 16-21 and 23, through the CLI: absurd --max-parallel and --watch values,
duplicate grid points, --since out of range, compare --png targets, byte-order marks in score
files, out-of-range bench metrics, clearer messages, and dry runs that create nothing."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.cli import Launch
from tests.support.paths import FIXTURES, ROOT

SEED_CSV = ROOT / "tests" / "fixtures" / "ds_7b_output.csv"
SEED_CLS = FIXTURES / "classification" / "ag_news_unified_level1_sample500_zero_deepseek-chat.csv.gz"
BOM = b"\xef\xbb\xbf"


def _one_line(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The one `error:` line of a refused command (exit `code`), with every needle in it."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _training_run(root: Path, launch: Launch, name: str = "tiny_ner-20261201-1200-ab12") -> Path:
    """A tiny_ner run directory, unregistered, with one complete checkpoint."""
    run_dir = root / name
    (run_dir / "checkpoints" / "checkpoint-10").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint-10" / "COMPLETE").write_text("")
    (run_dir / "recipe.yaml").write_text(launch("show", "tiny_ner", check=True).stdout)
    return run_dir


# ---------------------------------------------------------------- item 16: --max-parallel, duplicates
@pytest.mark.parametrize("verb", ["sweep", "reeval"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_parallel_below_one_is_refused(launch: Launch, tmp_path: Path, verb: str, value: str) -> None:
    target = "tiny_smoke" if verb == "sweep" else str(_training_run(tmp_path / "runs", launch))
    extra = ["--grid", "train.seed=1,2"] if verb == "sweep" else []
    proc = launch(verb, target, "--cluster", "local", *extra, "--max-parallel", value, "--dry-run")
    _one_line(proc, 2, "--max-parallel", value)


def test_duplicate_grid_points_are_dropped_with_a_warning(launch: Launch) -> None:
    proc = launch("sweep", "tiny_smoke", "--cluster", "local", "--grid", "train.seed=1,1,1", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "2 duplicate" in warnings[0] and "train.seed=1" in warnings[0], proc.stderr
    assert "1 point(s) of tiny_smoke" in proc.stdout, proc.stdout
    crossed = launch("sweep", "tiny_smoke", "--cluster", "local", "--grid", "train.seed=1,2,1",
                     "--grid", "train.max_steps=2,2", "--dry-run")  # fmt: skip
    assert crossed.returncode == 0 and "2 point(s) of tiny_smoke" in crossed.stdout, crossed.stderr
    assert "4 duplicate" in crossed.stderr, crossed.stderr


# ---------------------------------------------------------------- item 17: --since, --watch
@pytest.mark.parametrize(
    "args,needle",
    [
        (["--since", "1000000w"], "--since: 1000000w"),
        (["--since", "99999999999999999999d"], "--since: 99999999999999999999d"),
        (["--watch", "inf"], "--watch"),
        (["--watch", "1e300"], "--watch"),
        (["--watch", "nan"], "--watch"),
        (["--watch", "0.001"], "--watch"),
        (["--watch", "0"], "--watch"),
    ],
)
def test_absurd_since_and_watch_are_one_line(launch: Launch, args: list[str], needle: str) -> None:
    proc = launch("status", *args, timeout=30)
    line = _one_line(proc, 2, needle)
    if args[0] == "--watch":
        assert "1 to 86400" in line, line


def test_the_watch_floor_is_in_the_help_and_the_readme(launch: Launch) -> None:
    assert "at least 1" in " ".join(launch("status", "--help", check=True).stdout.split())
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Where things stand: `launch status`") :][:3000]
    assert "at least 1 s" in section, "the README's status section states the --watch floor"


# ---------------------------------------------------------------- item 18: compare --png
def test_compare_png_must_be_a_png_or_a_directory(launch: Launch, tmp_path: Path) -> None:
    runs = [_training_run(tmp_path / "runs", launch, f"tiny_ner-20261201-120{i}-ab1{i}") for i in (1, 2)]
    refs = [str(r) for r in runs]
    _one_line(launch("compare", *refs, "--png", str(tmp_path / "x.txt")), 2, "--png", "x.txt", ".png")
    _one_line(launch("compare", *refs, "--png", str(tmp_path / "noext")), 2, "--png", "noext")
    folder = tmp_path / "plots"
    folder.mkdir()
    proc = launch("compare", *refs, "--png", str(folder))
    assert proc.returncode == 0, proc.stderr
    written = list(folder.iterdir())
    assert [p.suffix for p in written] == [".png"], written
    assert f"wrote {written[0]}" in proc.stderr, proc.stderr
    assert not (tmp_path / "plots.png").exists()
    named = tmp_path / "curves.PNG"
    proc = launch("compare", *refs, "--png", str(named))
    assert proc.returncode == 0 and named.is_file() and f"wrote {named}" in proc.stderr, proc.stderr


# ---------------------------------------------------------------- item 19: byte-order marks
def test_score_reads_files_with_a_byte_order_mark(launch: Launch, tmp_path: Path) -> None:
    plain = json.loads(launch("score", str(SEED_CSV), "--json", check=True).stdout)
    marked = tmp_path / "excel.csv"
    marked.write_bytes(BOM + SEED_CSV.read_bytes())
    proc = launch("score", str(marked), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == plain

    row = {"tokens": ["John", "ran"], "gold_tags": ["B-per", "O"],
           "raw": json.dumps({"entities": [{"entity": "John", "order": 0, "label": "per"}]})}  # fmt: skip
    tagged = {"tokens": ["John", "ran"], "gold_tags": ["B-per", "O"], "pred_tags": ["B-per", "O"]}
    for i, line in enumerate((row, tagged)):
        path = tmp_path / f"marked{i}.jsonl"
        path.write_bytes(BOM + (json.dumps(line) + "\n").encode())
        proc = launch("score", str(path), "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["strict"]["f1"] == 1.0


# ---------------------------------------------------------------- item 20: bench ranges
def _result(run_dir: Path, checkpoint: str, metrics: dict | str) -> None:
    (run_dir / "results" / checkpoint).mkdir(parents=True)
    text = metrics if isinstance(metrics, str) else json.dumps(metrics)
    (run_dir / "results" / checkpoint / "metrics.json").write_text(text)


def test_bench_skips_out_of_range_metrics_with_a_warning(launch: Launch, tmp_path: Path) -> None:
    run_dir = _training_run(tmp_path / "runs", launch)

    def strict(p: float | str, r: float | str, f1: float | str) -> dict:
        return {"strict": {"precision": p, "recall": r, "f1": f1}, "step": 10, "sentences": 3}

    _result(run_dir, "checkpoint-10", strict(0.5, 0.25, 0.3333))
    _result(run_dir, "checkpoint-20", strict(0.5, 0.25, 7.5))
    _result(run_dir, "checkpoint-30", strict(-3, 0.25, 0.3))
    _result(run_dir, "checkpoint-40", '{"strict": {"precision": NaN, "recall": 0.2, "f1": 0.2}}')
    _result(run_dir, "checkpoint-50", '{"strict": {"precision": 0.2, "recall": Infinity, "f1": 0.2}}')
    out = tmp_path / "bench"
    proc = launch("bench", str(run_dir), "--no-wandb", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 4, proc.stderr
    assert any("checkpoint-20" in w and "f1" in w and "7.5" in w and "[0, 1]" in w for w in warnings), (
        warnings
    )
    ours = [r for r in csv.DictReader((out / "benchmark.csv").open()) if r["published"] == "False"]
    assert [r["checkpoint"] for r in ours] == ["checkpoint-10"], ours

    cls_run = tmp_path / "runs" / "cls-20261201-1200-cd34"
    (cls_run / "results" / "eval").mkdir(parents=True)
    (cls_run / "recipe.yaml").write_text(yaml.safe_dump({"job": "classify", "data": {"name": "ag_news"}}))
    (cls_run / "results" / "eval" / "metrics.json").write_text(json.dumps({"top1": 3.5, "n": 2, "level": 1}))
    proc = launch("bench", str(cls_run), "--no-wandb", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert any("top1" in w and "3.5" in w for w in proc.stderr.splitlines() if w.startswith("warning")), (
        proc.stderr
    )
    cls_rows = list(csv.DictReader((out / "benchmark_classification.csv").open()))
    assert not [r for r in cls_rows if r["published"] == "False"], cls_rows


# ---------------------------------------------------------------- item 21: messages
def test_then_reeval_on_a_classify_recipe_says_it_writes_no_checkpoints(launch: Launch) -> None:
    for verb, extra in (("recipe", []), ("sweep", ["--grid", "classify.sample=5,6"])):
        proc = launch(verb, "agnews_zero_shot", "--cluster", "local", *extra, "--then", "reeval")
        line = _one_line(proc, 2, "--then reeval", "no checkpoints")
        assert "None" not in line, line
        assert proc.stdout == "", "nothing submitted"


def test_a_directory_given_as_a_file_says_so(launch: Launch, tmp_path: Path) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    _one_line(launch("score", str(folder)), 2, str(folder), "is a directory")
    _one_line(launch("score", str(folder), "--format", "seed-cls"), 2, str(folder), "is a directory")
    _one_line(launch("recipe", f"{folder}/", "--cluster", "local", "--dry-run"), 2, "is a directory")
    _one_line(launch("recipe", "tiny_smoke", "--cluster", f"{folder}/", "--dry-run"), 2, "is a directory")
    proc = launch("score", str(SEED_CLS), "--format", "seed-cls", "--labels", str(folder))
    _one_line(proc, 2, str(folder), "is a directory")
    a_file = tmp_path / "bench.txt"
    a_file.write_text("")
    _one_line(launch("bench", "--no-wandb", "--out", str(a_file)), 2, "--out", "is a file, not a directory")


@pytest.mark.parametrize("verb", ["reeval", "status", "logs", "cancel", "bench", "compare"])
def test_an_empty_run_argument_is_named(launch: Launch, verb: str) -> None:
    args = {"reeval": ["", "--cluster", "local"], "compare": ["", "x"]}.get(verb, [""])
    line = _one_line(launch(verb, *args), 2, "empty")
    assert not line.startswith("error: : "), line


# ---------------------------------------------------------------- item 23: dry runs create nothing
def test_dry_runs_create_nothing(launch: Launch, launch_env: dict[str, str], tmp_path: Path) -> None:
    run_dir = _training_run(tmp_path / "elsewhere", launch)
    home = Path(launch_env["LAUNCH_HOME"])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for args in (
        ["reeval", str(run_dir), "--cluster", "local", "--dry-run"],
        ["recipe", "tiny_smoke", "--cluster", "local", "--dry-run"],
        ["sweep", "tiny_smoke", "--cluster", "local", "--grid", "train.seed=1,2", "--dry-run"],
    ):
        proc = launch(*args)
        assert proc.returncode == 0, proc.stderr
        assert args[0] != "reeval" or "checkpoint-10 (step 10)" in proc.stdout, proc.stdout
    assert not home.exists(), sorted(home.rglob("*"))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
