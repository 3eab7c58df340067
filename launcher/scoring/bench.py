"""The benchmark table, in the research's format: model, size, precision, recall, F1, level, notes.

    python -m jobs.bench (or launch bench) RUN_DIR [RUN_DIR ...] [--out DIR] [--no-wandb]

One row per (checkpoint, eval recipe) (every `<run_dir>/results/<checkpoint>/<eval recipe>/metrics.json`,
and the old layout's `results/<checkpoint>/metrics.json`; F1 is the strict entity F1, or the token
F1 for an eval recipe with `eval.level: token`), with its sample size `n`; a baseline's checkpoint
(spaCy, token classification: a tag per word) gets a second row at the research's token level
(`token (BIO)`), so the research's ELECTRA and NuNER numbers have a like-for-like neighbour. Then
the research's published rows; the `source` column says which rows ran here and which are
published (LEGEND). Writes `benchmark.md`, `benchmark.csv` (full-precision numbers plus run,
checkpoint, eval and step columns), `f1_by_step.png` (F1 by checkpoint step on a 0..1 axis, one
line per run and eval recipe, its sample size in the legend) and `loss_by_step.png` (training
loss, one line per run; launcher.runs.history says where it is read) into the output directory, and
a W&B Table (job_type bench) unless W&B is disabled. No torch: `launch bench` imports this module
in the launcher process.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from launcher.config.grid import short_overrides
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.results import result_files, result_label, training_run_of
from launcher.scoring import plots, tables

if TYPE_CHECKING:
    from launcher.tracking.wandb_mode import WandbRequest

TOKEN_BIO = "token (BIO)"
"""The research's token level: one decision per word (first sub-token), the BIO tag compared exactly."""
BASELINES = {"spacy": "spaCy NER trained on GMB", "token_classification": "token classification"}
"""Job kinds whose results are tags per word; their rows say so and get a token (BIO) row too."""

COLUMNS = ("model", "size", "precision", "recall", "F1", "level", "n", "source", "notes")
CSV_COLUMNS = ("model", "size", "precision", "recall", "f1", "level", "n", "notes", "published", "run",
               "checkpoint", "eval", "step", "overrides")  # fmt: skip
RAN_HERE, PUBLISHED_SOURCE = "ran here", "published"
LEGEND = (
    f"source: '{RAN_HERE}' = scored from this launcher's runs (results/<checkpoint>/<eval recipe>/"
    f"metrics.json); '{PUBLISHED_SOURCE}' = the research's reported number, not re-run here. "
    "n = sentences evaluated."
)


@dataclass(frozen=True)
class Row:
    """One line of the table; `published` rows come from the research, the rest from metrics.json."""

    model: str
    size: str
    precision: float | None
    recall: float | None
    f1: float | None
    level: str
    notes: str
    published: bool = False
    run: str | None = None
    checkpoint: str | None = None
    step: int | None = None
    overrides: str | None = None  # the run's --set overrides, space-separated (launch.json)
    eval: str | None = None
    """The eval recipe (its results directory's name: `<name>` or `<name>-<digest>` for a --set variant)."""
    n: int | None = None
    """Sentences the evaluation scored (metrics.json `sentences`)."""

    @property
    def source(self) -> str:
        return PUBLISHED_SOURCE if self.published else RAN_HERE


_SPACY_CLAIM = (
    "the research's claim: its spaCy code fed word indices as character offsets and its own logs "
    "show about 0.44% F1, so this number cannot be traced to its code"
)
PUBLISHED: tuple[Row, ...] = (
    Row("DeepSeek-R1-Distill-Qwen-1.5B", "1.5B", None, None, 0.8711, "entity",
        "published: full fine-tune, 4 GPUs, DeepSpeed ZeRO-1, fp16, 20 epochs", True),
    Row("DeepSeek-R1-Distill-Qwen-7B", "7B", None, None, 0.8611, "entity",
        "published: full fine-tune, DeepSpeed ZeRO-3 with CPU offload; Int8 eval", True),
    Row("DeepSeek-R1-Distill-Qwen-7B", "7B", 0.8638, 0.8585, 0.8611, "entity",
        "published: the research's own (seed) metric on its 1,000 outputs", True, n=1000),
    Row("spaCy md", "", 0.8512, 0.8454, 0.8483, "entity",
        f"published: fine-tuned 50 epochs, 80/20 split; {_SPACY_CLAIM}", True),
    Row("spaCy lg", "", 0.8529, 0.8518, 0.8524, "entity",
        f"published: fine-tuned 50 epochs, 80/20 split; {_SPACY_CLAIM}", True),
    Row("ELECTRA-base", "", 0.7778, 0.8235, 0.80, TOKEN_BIO,
        "published: a CoNLL-03 ELECTRA (hub id not recorded), 200 epochs (20: 0.5844, 50: 0.7543), "
        "70/30 split; measured at token level (first sub-token, exact BIO tag) though its README "
        "says entity level", True),
    Row("NuNER", "", 0.7778, 0.8235, 0.80, TOKEN_BIO,
        "published: numind/NuNER-v2.0; this README row is a copy of the ELECTRA row", True),
    Row("NuNER", "", None, None, 0.1362, "entity",
        "published: numind/NuNER-v2.0, entity F1 from the research's own report", True),
)  # fmt: skip
"""The research's table (DESIGN.md)."""


def human_size(params: int) -> str:
    """1777088000 -> 1.8B, 361024 -> 0.36M."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if params >= scale or (unit == "M" and params >= 1e4):
            value = params / scale
            return f"{value:.2g}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(params)


def model_size(name: str, checkpoint: str | None = None) -> str:
    """Parameter count of a model: the checkpoint's config.json, else the planner's built-in
    table, else a size in the name (`...-7B`), else empty."""
    text: str | None = None
    if checkpoint and Path(checkpoint, "config.json").is_file():
        try:
            text = Path(checkpoint, "config.json").read_text()
        except (OSError, ValueError):
            text = None
    return _model_size(name, text)


@lru_cache(maxsize=256)
def _model_size(name: str, config_text: str | None) -> str:
    """model_size of a name and its checkpoint's config.json text (the same for every checkpoint)."""
    from launcher.plan.architecture import arch_from_config
    from launcher.plan.tables import find_model

    config: dict[str, Any] | None = None
    if config_text is not None:
        try:
            config = json.loads(config_text)
        except ValueError:
            config = None
    found = find_model(name)
    for candidate in (config, found[1] if found else None):
        if candidate is None:
            continue
        try:
            return human_size(arch_from_config(candidate, name, "bench").total_params)
        except Exception:  # an architecture the planner does not know: try the next source
            continue
    m = re.search(r"(\d+(?:\.\d+)?)[bB](?![a-zA-Z])", name)
    return f"{m.group(1)}B" if m else ""


def _recipe(run_dir: Path) -> dict[str, Any]:
    """The run's recipe.yaml as a mapping ({} when missing or not one); read once per version of
    the file (its size and mtime): every result of a run names the same recipe. Do not modify it."""
    path = run_dir / "recipe.yaml"
    try:
        st = path.stat()
    except OSError:
        return {}
    return _parsed_recipe(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=256)
def _parsed_recipe(path: str, _mtime_ns: int, _size: int) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _base_model(run_dir: Path, metrics: dict[str, Any]) -> tuple[str, str]:
    """(model name, how it was trained) for a result found under `run_dir`."""
    checkpoint = str(metrics.get("checkpoint") or "")
    train_dir = training_run_of(Path(checkpoint)) if checkpoint else None
    recipe = _recipe(train_dir or run_dir)
    name = str((recipe.get("model") or {}).get("name_or_path") or checkpoint or "?")
    if recipe.get("job") in BASELINES:
        epochs = (recipe.get("train") or {}).get("epochs")
        return name, BASELINES[str(recipe["job"])] + (f", {epochs:g} epochs" if epochs else "")
    if recipe.get("job") == "train":
        return name, {"fft": "full fine-tune", "lora": "LoRA", "qlora": "QLoRA"}.get(
            str(recipe.get("method")), str(recipe.get("method"))
        )
    return name, ""


def display_name(name: str) -> str:
    """`deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B` -> `DeepSeek-R1-Distill-Qwen-1.5B`; tiny:// kept."""
    return name if name.startswith("tiny://") else name.rstrip("/").rsplit("/", 1)[-1]


def _metrics(path: Path) -> dict[str, Any]:
    """One metrics.json; ValueError saying why it cannot be used."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read: {err}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as err:
        raise ValueError(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def run_overrides(run_dir: Path) -> list[str]:
    """The --set overrides a run was launched with (launch.json; none for older runs)."""
    return LaunchInfo.read(run_dir).overrides


def _sample_size(metrics: dict[str, Any]) -> int | None:
    n = metrics.get("sentences")
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def _rows(run_dir: Path, metrics_path: Path, metrics: dict[str, Any], overrides: list[str]) -> list[Row]:
    """The row of one metrics.json, and for a baseline (tags per word) its token (BIO) row too;
    `overrides`: the run's (run_overrides)."""
    name, how = _base_model(run_dir, metrics)
    checkpoint, eval_name = result_label(metrics_path, run_dir, metrics)
    level = metrics.get("level") or "entity"
    numbers = metrics["token"] if level == "token" else metrics["strict"]
    step = metrics.get("step")
    baseline = "token_bio" in metrics
    notes = [
        how,
        f"{run_dir.name} {checkpoint}" + (f" (step {step})" if step is not None else ""),
        f"eval {eval_name} {metrics.get('dtype') or ''}".rstrip(),
        f"{metrics.get('split', 'test')} split",
        "" if baseline else f"{metrics.get('parse_failures')} unparsed",
    ]
    notes.insert(1, short_overrides(overrides))
    block = "token" if level == "token" else "strict"
    numbers = {k: tables.fraction(f"{block}.{k}", numbers[k]) for k in ("precision", "recall", "f1")}
    if step is not None and not isinstance(step, int):
        raise ValueError(f"step: {step!r} is not an integer")
    params = metrics.get("params")
    size = human_size(params) if isinstance(params, int) else model_size(name, metrics.get("checkpoint"))
    row = Row(
        model=display_name(name),
        size=size,
        precision=numbers["precision"],
        recall=numbers["recall"],
        f1=numbers["f1"],
        level=level,
        notes=", ".join(n for n in notes if n),
        run=run_dir.name,
        checkpoint=checkpoint,
        step=step,
        overrides=" ".join(overrides) or None,
        eval=eval_name,
        n=_sample_size(metrics),
    )
    bio = metrics.get("token_bio")
    if not (isinstance(bio, dict) and level == "entity"):
        return [row]
    p, r, f1 = (tables.fraction(f"token_bio.{k}", bio[k]) for k in ("precision", "recall", "f1"))
    token = replace(
        row, precision=p, recall=r, f1=f1, level=TOKEN_BIO, notes=f"the research's token level; {row.notes}"
    )
    return [row, token]


def run_rows(run_dir: Path, skipped: list[str] | None = None) -> list[Row]:
    """One row per metrics.json under a run's results/ (both layouts), by step, checkpoint and eval
    recipe. A file that cannot be read or lacks the numbers is left out, and `<path>: <why>`
    appended to `skipped`."""
    rows = []
    overrides = run_overrides(run_dir)
    for metrics_path in result_files(run_dir):
        try:
            metrics = _metrics(metrics_path)
            if "strict" not in metrics:
                continue  # not an entity-level NER result (nothing for this table)
            rows.extend(_rows(run_dir, metrics_path, metrics, overrides))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            why = f"missing key {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
            if skipped is not None:
                skipped.append(f"{metrics_path}: {why}")
    return sorted(
        rows, key=lambda r: (r.step is None, r.step or 0, r.checkpoint or "", r.eval or "", r.level)
    )


def has_results(run_dir: Path) -> bool:
    return bool(result_files(run_dir))


def collect(run_dirs: Sequence[Path], published: bool = True, skipped: list[str] | None = None) -> list[Row]:
    """Rows of every run (in the order given), then the published rows; see `run_rows`."""
    rows = [row for run_dir in run_dirs for row in run_rows(run_dir, skipped)]
    return rows + list(PUBLISHED) if published else rows


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def _cells(row: Row) -> list[str]:
    return [row.model, row.size or "—", _num(row.precision), _num(row.recall), _num(row.f1), row.level,
            "—" if row.n is None else str(row.n), row.source, row.notes]  # fmt: skip


def markdown(rows: Sequence[Row]) -> str:
    """The table, then the LEGEND line."""
    return tables.markdown(COLUMNS, [_cells(row) for row in rows]) + f"\n{LEGEND}\n"


def write_csv(rows: Sequence[Row], path: Path) -> None:
    tables.write_csv(rows, CSV_COLUMNS, path)


def f1_curves(rows: Sequence[Row]) -> dict[str, plots.Curve]:
    """{`<run> <eval recipe>`: [(step, F1, n)]} of the rows that ran here and have a step; a
    checkpoint-0 result is the step-0 point."""
    curves: dict[str, list[tuple[int, float, int | None]]] = {}
    for row in rows:
        if not row.published and row.step is not None and row.run and row.level != TOKEN_BIO:
            curves.setdefault(f"{row.run} {row.eval or ''}".rstrip(), []).append(
                (row.step, row.f1 or 0.0, row.n)
            )
    return dict(curves)


def plot(rows: Sequence[Row], path: Path) -> None:
    """F1 by checkpoint step on a 0..1 axis, one line per (run, eval recipe) (rows without a step
    are left out), each legend entry with its sample size."""
    plots.save(plots.f1_figure(f1_curves(rows)), path)


def plot_loss(run_dirs: Sequence[Path], path: Path) -> None:
    """Training loss by step, one line per training run among `run_dirs` (launcher.runs.history)."""
    from launcher.runs.history import training_history

    plots.save(plots.loss_figure({d.name: training_history(d) for d in run_dirs}), path)


def write(rows: Sequence[Row], out: Path, run_dirs: Sequence[Path] = ()) -> dict[str, Path]:
    """benchmark.md, benchmark.csv, f1_by_step.png and loss_by_step.png (the loss of `run_dirs`)
    in `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"md": out / "benchmark.md", "csv": out / "benchmark.csv", "png": out / "f1_by_step.png",
             "loss_png": out / "loss_by_step.png"}  # fmt: skip
    files["md"].write_text(markdown(rows))
    write_csv(rows, files["csv"])
    plot(rows, files["png"])
    plot_loss(run_dirs, files["loss_png"])
    return files


def log_wandb(rows: Sequence[Row], out: Path, project: str, mode: WandbRequest = "auto") -> str | None:
    """The table (and the plot) as one W&B run, job_type bench; None when W&B is disabled. Online,
    W&B must answer a short probe first (a SetupError line, not wandb's minutes of retries)."""
    from launcher.tracking.wandb_mode import wandb_mode

    resolved = wandb_mode(mode)
    if resolved == "disabled":
        return None
    if resolved == "online":
        from launcher.tracking.wandb_reach import base_url, check_reachable

        check_reachable(base_url())
    import wandb

    run = wandb.init(project=project, job_type="bench", dir=str(out), mode=resolved, reinit="finish_previous",
                     config={"rows": len(rows)})  # fmt: skip
    table = wandb.Table(columns=list(CSV_COLUMNS))
    for row in rows:
        data = asdict(row)
        table.add_data(*[data[k] for k in CSV_COLUMNS])
    payload: dict[str, Any] = {"benchmark": table}
    for name in ("f1_by_step", "loss_by_step"):
        if (out / f"{name}.png").is_file():
            payload[name] = wandb.Image(str(out / f"{name}.png"))
    run.log(payload)
    where = run.url if resolved == "online" else str(Path(run.dir).parent)
    run.finish()
    return where


def wandb_project(run_dirs: Sequence[Path]) -> str:
    """The W&B project of the first run that names one."""
    for run_dir in run_dirs:
        project = ((_recipe(run_dir).get("tracking") or {}).get("wandb") or {}).get("project")
        if project:
            return str(project)
    return "recipe-launcher"


def table(rows: Sequence[Row]) -> Any:
    """A rich Table of the rows (published ones dimmed)."""
    from rich.table import Table

    t = Table(title="benchmark (GMB NER)", title_justify="left", caption=LEGEND, caption_justify="left")
    for col in COLUMNS:
        numeric = col in ("precision", "recall", "F1", "n")
        t.add_column(col, justify="right" if numeric else "left", no_wrap=col != "notes", overflow="fold")
    for row in rows:
        t.add_row(*_cells(row), style="dim" if row.published else None)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--no-wandb", action="store_true")
    args = parser.parse_args(argv)
    skipped: list[str] = []
    rows = collect(args.run_dirs, skipped=skipped)
    for line in skipped:
        print(f"warning: skipped {line}", file=sys.stderr)
    files = write(rows, args.out, args.run_dirs)
    if not args.no_wandb:
        log_wandb(rows, args.out, wandb_project(args.run_dirs))
    sys.stdout.write(markdown(rows))
    print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
