"""Offline W&B runs read back from their files, and one run's history made of all its segments.

A job logging offline writes `<run_dir>/wandb/offline-run-<time>-<id>/run-<id>.wandb`, one such
segment per start (a requeued run resumes with the same W&B id, so N starts are N segments). The
file is wandb's transaction log: a 7-byte header, then 32 KiB blocks of records `crc32 (4) |
length (2) | type (1) | data`, a record split across blocks as FIRST/MIDDLE/LAST, each data a wandb
`Record` protobuf. The job flushes it every few seconds while it runs (jobs/wandb_run.py), so a
file being written ends in a record cut short: reading stops before it.

`history` joins the segments into the rows W&B should hold, each with its W&B step: a row's
training step (`train/global_step`, as the Trainer logs it) when it has one, else the step after
the previous row. A segment that resumed from a checkpoint older than the last step logged
repeats steps: those repeats are dropped (the first row of a step wins), so every step is there
once and steps only grow, and a history read later only adds rows at its end.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = 7
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
STEP_KEYS = ("train/global_step", "global_step")


def _payloads(data: bytes) -> list[bytes]:
    """The complete records of a transaction log, in order; a record cut short at the end is left out."""
    if data[:4] != b":W&B":
        return []
    out, pos, pending = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:  # zero padding: the writer's end, or a block not yet written
            break
        if pos + HEADER + length > len(data):
            break
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
            pending = b""
    return out


@dataclass
class Segment:
    """One start of a W&B run, as its offline file holds it so far."""

    path: Path
    wandb_id: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    """The job finished this W&B run (its exit record is written)."""


def _items(items: Any) -> dict[str, Any]:
    return {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}


def read_segment(path: Path) -> Segment:
    """Parse a `run-*.wandb` file (or the offline-run directory holding it) as far as it is written."""
    from wandb.proto import wandb_internal_pb2 as pb

    if path.is_dir():
        path = next(path.glob("run-*.wandb"))
    seg = Segment(path)
    for payload in _payloads(path.read_bytes()):
        record = pb.Record()  # type: ignore[attr-defined]
        try:
            record.ParseFromString(payload)
        except Exception:  # a damaged record: what follows is still read
            continue
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            seg.wandb_id, seg.project, seg.entity, seg.group = r.run_id, r.project, r.entity, r.run_group
            seg.job_type, seg.name, seg.tags = r.job_type, r.display_name, list(r.tags)
            seg.config.update(_items(r.config.update))
        elif kind == "config":
            seg.config.update(_items(record.config.update))
        elif kind == "history":
            seg.rows.append(_items(record.history.item))
        elif kind == "summary":
            seg.summary.update(_items(record.summary.update))
        elif kind == "exit":
            seg.finished = True
    seg.config.pop("_wandb", None)
    return seg


def step_of(row: dict[str, Any]) -> int | None:
    for key in STEP_KEYS:
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value == int(value):
            return int(value)
    return None


def _public(row: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """`row` without wandb's own `_` keys, but for those in `keep`."""
    return {k: v for k, v in row.items() if not k.startswith("_") or k in keep}


def history(segments: list[Segment]) -> list[tuple[int, dict[str, Any]]]:
    """(W&B step, row) for every step of the segments, oldest segment first, each step once and
    steps only growing; rows of one segment at the same step are one row (the Trainer logs its
    train and eval values of a step as separate rows). A row keeps its `_timestamp`."""
    out: list[tuple[int, dict[str, Any]]] = []
    for seg in segments:
        done = out[-1][0] if out else -1  # steps up to here come from earlier segments
        for row in seg.rows:
            step = step_of(row)
            if step is None:
                step = out[-1][0] + 1 if out else 0
            if step <= done or (out and step < out[-1][0]):
                continue
            if out and step == out[-1][0]:
                out[-1][1].update(_public(row))
            else:  # when the job logged the step: W&B keeps a `_timestamp` it is given
                out.append((step, _public(row, keep=("_timestamp",))))
    return out


def summary(segments: list[Segment]) -> dict[str, Any]:
    """The run's summary: each segment's, later ones winning (W&B's own keys left out)."""
    merged: dict[str, Any] = {}
    for seg in segments:
        merged.update(_public(seg.summary))
    return merged
