"""What `launch logs` shows: labelled stdout/stderr lines, merged by time, known noise left out.

The files under `<run>/logs/` are never changed: everything here is a view of them. `--raw`
shows every line as written (still labelled).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from launcher.runs import logtimes

LogSource = Callable[[bool], Iterable[tuple[Path, str]]]
"""One job's log lines as (file, line): `source(False)` what is written so far, `source(True)` that
and then new lines until the job ends (the verb binds a backend's `logs(run_dir, job_id, follow)`)."""

OUT, ERR = "out", "err"

# Lines libraries print on every run that say nothing about this run. Each is a real line from
# this project's job logs (tiny_ner, electra_base, spacy_sm, agnews_zero_shot on local/Slurm/Ray).
NOISE = tuple(
    re.compile(p)
    for p in (
        # bitsandbytes on a CPU machine
        r"^Failed to load CPU \w+ from kernels-community: No module named 'kernels'",
        # DeepSpeed without a GPU
        r"^\[[\d\- :,]+\] \[WARNING\] \[real_accelerator\.py:\d+:get_accelerator\] Setting accelerator to",
        # W&B's banner, its Weave advert, and the run history / summary tables (kept: ERROR and
        # WARNING lines, the run's URL, where its offline data is and how to sync it)
        r"^wandb: Tracking run with wandb version ",
        r"^wandb: W&B syncing is set to `offline`",
        r"^wandb: View this run in the terminal with `wandb leet`",
        r"^wandb: (Use W&B Weave|For more information, check out the docs at: https://weave|Detected \[)",
        r"^wandb:\s*$",
        # Ray's own INFO chatter (`2026-12-01 21:30:43,509\tINFO job_supervisor.py:437 -- ...`)
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\s+INFO \S+\.py:\d+ -- ",
        # asyncio at interpreter exit of a client library
        r"^Task was destroyed but it is pending!$",
        r"^task: <Task pending name='Task-\d+' coro=<",
    )
)
# `<site-packages path>:<line>: FutureWarning: ...`; the line after it is the warning's source line.
LIBRARY_WARNING = re.compile(
    r"^\S*(site-packages|dist-packages|<frozen [\w.]+>)\S*:\d+: (FutureWarning|DeprecationWarning|"
    r"PendingDeprecationWarning): "
)
TOKENIZERS_FORK = "huggingface/tokenizers: The current process just got forked"
TOKENIZERS_REST = ("To disable this warning, you can", "\t- Avoid using `tokenizers`", "\t- Explicitly")
WANDB_TABLE = re.compile(r"^wandb: Run (history|summary):$")
WANDB_ROW = re.compile(r"^wandb:\s+\S+ .*$|^wandb:\s+\+\d+ \.\.\.$")


class NoiseFilter:
    """Decides line by line, with the little state multi-line noise needs (one per stream)."""

    def __init__(self) -> None:
        self._after_warning = False
        self._in_tokenizers = False
        self._in_wandb_table = False

    def is_noise(self, line: str) -> bool:
        after_warning, self._after_warning = self._after_warning, False
        if after_warning and line.startswith("  "):
            return True  # the source line Python prints under a warning
        if self._in_tokenizers and line.startswith(TOKENIZERS_REST):
            return True
        self._in_tokenizers = False
        if self._in_wandb_table:
            if WANDB_ROW.match(line) and not line.startswith(("wandb: ERROR", "wandb: WARNING")):
                return True
            self._in_wandb_table = False
        if LIBRARY_WARNING.match(line):
            self._after_warning = True
            return True
        if line.startswith(TOKENIZERS_FORK):
            self._in_tokenizers = True
            return True
        if WANDB_TABLE.match(line):
            self._in_wandb_table = True
            return True
        return any(p.match(line) for p in NOISE)


def tidy(line: str) -> str:
    """What a terminal shows of a progress-bar line: the text after its last carriage return."""
    if "\r" in line:
        parts = [p for p in line.split("\r") if p.strip()]
        return parts[-1] if parts else ""
    return line


def stream_of(path: Path) -> str:
    return ERR if path.suffix == ".err" else OUT


@dataclass
class Line:
    stream: str
    text: str
    time: float = 0.0


def view(lines: Iterable[tuple[Path, str]], raw: bool = False) -> Iterator[Line]:
    """Backend log lines as labelled Lines; without `raw`, noise dropped and progress bars tidied."""
    filters: dict[Path, NoiseFilter] = {}
    for path, text in lines:
        if not raw:
            noise = filters.setdefault(path, NoiseFilter())
            if noise.is_noise(text):
                continue
            text = tidy(text)
        yield Line(stream_of(path), text)


# ---------------------------------------------------------------- merging by time


def stamp(ends: list[int], samples: list[tuple[float, int]], after: float) -> list[float]:
    """The time of each line given the byte offset where it ends (ascending) and the samples
    (time, file size) of its file: the first sample whose size reached the line's end; `after`
    (the file's last change) for lines past the last sample."""
    times, i = [], 0
    for end in ends:
        while i < len(samples) and samples[i][1] < end:
            i += 1
        times.append(samples[i][0] if i < len(samples) else after)
    return times


def merge(out: list[Line], err: list[Line]) -> list[Line]:
    """Both streams in time order; each stream keeps its own order, and at equal times stdout's
    lines come first (within one sample nothing tells which came first)."""
    merged: list[Line] = []
    i = j = 0
    while i < len(out) or j < len(err):
        if j >= len(err) or (i < len(out) and out[i].time <= err[j].time):
            merged.append(out[i])
            i += 1
        else:
            merged.append(err[j])
            j += 1
    return merged


def merged_backlog(
    lines: Iterable[tuple[Path, str]], raw: bool = False
) -> tuple[list[Line], dict[Path, int]]:
    """Everything written so far, merged by time, and how many lines of each file were read.

    Times come from the files' `.times` index (logtimes); a file without one (a run from before
    the index, or a backend that wrote none) gets its lines at its modification time, so the
    files then follow each other whole."""
    by_path: dict[Path, list[str]] = {}
    for path, text in lines:
        by_path.setdefault(path, []).append(text)
    streams: dict[str, list[Line]] = {OUT: [], ERR: []}
    for path, texts in by_path.items():
        stream = stream_of(path)
        index = logtimes.read(logtimes.index_of(path))
        samples = [(at, out if stream == OUT else err) for at, out, err in index]
        ends, offset = [], 0
        for text in texts:
            offset += len(text.encode("utf-8", errors="replace")) + 1
            ends.append(offset)
        try:
            after = path.stat().st_mtime
        except OSError:
            after = 0.0
        if ends and not _ends_line(path, ends[-1]):
            texts, ends = texts[:-1], ends[:-1]  # still being written: shown when it is whole
            by_path[path] = texts
        times = stamp(ends, samples, after)
        noise = NoiseFilter()
        for text, at in zip(texts, times, strict=True):
            if raw:
                streams[stream].append(Line(stream, text, at))
            elif not noise.is_noise(text):
                streams[stream].append(Line(stream, tidy(text), at))
    return merge(streams[OUT], streams[ERR]), {p: len(t) for p, t in by_path.items()}


def _ends_line(path: Path, end: int) -> bool:
    """Whether the byte before offset `end` of `path` is a newline (the line there is whole)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(end - 1)
            return fh.read(1) == b"\n"
    except OSError:
        return True


def skip_read(lines: Iterable[tuple[Path, str]], read: dict[Path, int]) -> Iterator[tuple[Path, str]]:
    """`lines` without the first `read[path]` lines of each file (those shown already)."""
    seen: dict[Path, int] = {}
    for path, text in lines:
        seen[path] = seen.get(path, 0) + 1
        if seen[path] > read.get(path, 0):
            yield path, text


# ---------------------------------------------------------------- printing


class Printer:
    """Labelled lines: `out| ` / `err| ` (in a terminal, err labels in red, unless $NO_COLOR);
    stdout lines to our stdout and stderr lines to our stderr, or all to stdout when `merged`."""

    def __init__(self, prefix: str = "", merged: bool = False) -> None:
        self.prefix = prefix
        self.merged = merged
        plain = bool(os.environ.get("NO_COLOR"))
        self._color = {s: s.isatty() and not plain for s in (sys.stdout, sys.stderr)}

    def print(self, line: Line) -> None:
        stream = sys.stdout if self.merged or line.stream == OUT else sys.stderr
        label = f"{line.stream}| "
        if self._color.get(stream):
            label = f"\033[2m{label}\033[0m" if line.stream == OUT else f"\033[31m{label}\033[0m"
        stream.write(f"{self.prefix}{label}{line.text}\n")
        stream.flush()


def show(
    source: LogSource,
    follow: bool = False,
    prefix: str = "",
    merged: bool = False,
    raw: bool = False,
) -> None:
    """Print one job's logs as `launch logs` shows them; with `follow`, until the job ends.

    `merged` prints what is written so far in time order, then (following) new lines as they come,
    which is their time order to within the backends' poll interval."""
    printer = Printer(prefix, merged)
    if merged:
        backlog, read = merged_backlog(source(False), raw)
        for line in backlog:
            printer.print(line)
        if not follow:
            return
        lines: Iterable[tuple[Path, str]] = skip_read(source(True), read)
    else:
        lines = source(follow)
    for line in view(lines, raw):
        printer.print(line)


def tasks_text(tasks: list[int]) -> str:
    """What a run's task indexes are, for a --task message: `has 1 task; valid: 0`, `has 4 tasks;
    valid: 0-3`, `has 3 tasks; valid: 0, 2, 5`, or `has no task yet` (not submitted)."""
    if not tasks:
        return "has no task yet (it was not submitted)"
    ordered = sorted(tasks)
    contiguous = ordered == list(range(ordered[0], ordered[-1] + 1))
    valid = f"{ordered[0]}-{ordered[-1]}" if contiguous and len(ordered) > 2 else ", ".join(map(str, ordered))
    return f"has {len(ordered)} task{'s' if len(ordered) > 1 else ''}; valid: {valid}"


def interrupted(run_ids: list[str], what: str = "run") -> int:
    """After Ctrl-C while following: the runs go on; how to follow or cancel them. Exit 130."""
    many = len(run_ids) > 1
    head = f"{len(run_ids)} {what}s go on" if many else f"{run_ids[0]} goes on"
    lines = [f"interrupted: stopped following; the {head} (Ctrl-C does not cancel)"]
    for run_id in run_ids:
        lines.append(f"  follow again: launch logs {run_id} -f")
        lines.append(f"  cancel:       launch cancel {run_id}")
    sys.stderr.write("\n" + "\n".join(lines) + "\n")
    sys.stderr.flush()
    return 130


def version() -> str:
    """This package's version, from its installed metadata."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("recipe-launcher")
    except PackageNotFoundError:
        return "unknown (not installed)"
