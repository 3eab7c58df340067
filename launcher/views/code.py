"""Which code a run ran, as `launch status RUN` and `launch show RUN` say it, and the table of
`launch snapshots`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from launcher.runs.launch_info import GitInfo, LaunchInfo
from launcher.runs.snapshot import Pruned, Stored


def megabytes(size: int) -> str:
    """`6.6 MB`; below 0.1 MB three decimals (a pruned one-file edit is a few kB)."""
    return f"{size / 1e6:.1f} MB" if size >= 100_000 or not size else f"{size / 1e6:.3f} MB"


def _git_text(git: GitInfo | None, label: str = "git") -> str:
    if git is None or not git.commit:
        return ""
    dirty = (f" dirty: {git.diff}" if git.diff else " dirty") if git.dirty else ""
    return f", {label} {git.commit[:12]}{dirty}"


def code_text(info: LaunchInfo) -> str | None:
    """`snapshot <id> (N files, X.X MB), git <commit12>[ dirty: code.diff]`, or `LIVE checkout <dir>
    (--live-code: not a snapshot)`; for a run from before snapshots its commit; None when nothing
    is known."""
    code = info.code
    if code is None:
        if not info.git_commit:
            return None
        dirty = " dirty" if info.git_dirty else ""
        return f"git {info.git_commit[:12]}{dirty} (no snapshot: launched by an older version)"
    tail = _git_text(code.git) + _git_text(code.launcher_git, "launcher git")
    if code.live or not code.snapshot:
        where = ", ".join(dict.fromkeys(str(Path(p).parent) for p in code.packages)) or "?"
        return f"LIVE checkout {where} (--live-code: not a snapshot){tail}"
    size = f"{code.files or 0} files, {megabytes(code.bytes or 0)}"
    gone = "; its directory is gone (pruned?)" if code.path and not Path(code.path).is_dir() else ""
    return f"snapshot {code.snapshot} ({size}){tail}{gone}"


def code_facts(run_dir: Path) -> list[tuple[str, str]]:
    """`launch status RUN`'s `code` line, and where the job ran, when launch.json says."""
    info = LaunchInfo.read(run_dir)
    text = code_text(info)
    facts = [("code", text)] if text else []
    if info.code and info.code.workdir:
        facts.append(("workdir", info.code.workdir))
    return facts


def _created(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso or "?"


def snapshots_table(root: Path, stored: Sequence[Stored]) -> Table:
    """One row per snapshot: id, files, size, created, the runs that refer to it."""
    table = Table(title=f"code snapshots in {root}", title_justify="left")
    for column in ("snapshot", "files", "size", "created (UTC)", "runs"):
        table.add_column(column, justify="right" if column in ("files", "size", "runs") else "left")
    for s in stored:
        table.add_row(s.id, str(s.files), megabytes(s.bytes), _created(s.created), str(len(s.runs)))
    return table


def prune_text(pruned: Pruned, dry_run: bool) -> str:
    """What `launch snapshots --prune` did (or, dry, would do), with the megabytes freed."""
    verb = "would remove" if dry_run else "removed"
    lines = [
        f"{verb} {len(pruned.snapshots)} snapshot(s) no run refers to and {pruned.objects} stored "
        f"file(s) no snapshot uses: {'would free' if dry_run else 'freed'} {megabytes(pruned.freed)}"
    ]
    lines += [f"  {sid}" for sid in pruned.snapshots]
    if pruned.kept_young:
        lines.append(
            f"kept {len(pruned.kept_young)} unreferenced snapshot(s) used within the last 10 minutes "
            f"(a submit may be writing its run): {', '.join(pruned.kept_young)}"
        )
    return "\n".join(lines)
