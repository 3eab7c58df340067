"""Reading and following log files, shared by the backends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path


def follow_files(
    files: Callable[[], list[Path]], done: Callable[[], bool], poll: float = 0.5
) -> Iterator[tuple[Path, str]]:
    """Yield (file, line) for every file in `files()` (re-listed as new ones appear) until `done()`.

    With `done` always true this reads the files once; once `done()` turns true the files are
    drained a last time.
    """
    offsets: dict[Path, int] = {}
    partial: dict[Path, str] = {}
    finished = False
    while True:
        finished = done()
        listed = [p for p in files() if p.exists()]
        for path in listed:
            with open(path, "rb") as fh:
                fh.seek(offsets.get(path, 0))
                chunk = fh.read()
                offsets[path] = fh.tell()
            if not chunk:
                continue
            text = partial.pop(path, "") + chunk.decode("utf-8", errors="replace")
            lines = text.split("\n")
            if lines[-1]:
                partial[path] = lines[-1]
            for line in lines[:-1]:
                yield path, line
        if finished:
            for path, rest in partial.items():
                yield path, rest
            return
        time.sleep(poll)
