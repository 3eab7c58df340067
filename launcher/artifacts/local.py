"""The local side of the artifact store: a directory tree (`LocalTransport`), written through a
temporary name and a rename, fsynced."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from launcher.artifacts.transport import READ_BLOCK, ByteProgress, FileEntry, StoreError, sha256_of
from launcher.jsonio import atomic_write_bytes


class LocalTransport:
    """A directory tree; keys are absolute paths. Writes go to a temporary name, then rename."""

    endpoint = "the local filesystem"

    def check(self, key: str) -> None:
        path = Path(key)
        probe = path
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK):
            raise StoreError(f"{path}: {probe} is not a writable directory")

    def put_file(self, local: Path, key: str, entry: FileEntry, progress: ByteProgress | None) -> None:
        dest = Path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.upload-{os.getpid()}")
        with open(local, "rb") as src, open(tmp, "wb") as out:
            while block := src.read(READ_BLOCK):
                out.write(block)
                if progress:
                    progress(len(block))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(dest)

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = Path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, data, fsync=True)

    def verify(self, key: str, entry: FileEntry) -> str | None:
        path = Path(key)
        if not path.is_file():
            return "not there"
        if path.stat().st_size != entry.size:
            return f"size {path.stat().st_size} != {entry.size}"
        return None if sha256_of(path) == entry.sha256 else "sha256 differs"

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return Path(key).read_bytes()
        except FileNotFoundError:
            return None

    def get_file(self, key: str, dest: Path) -> None:
        shutil.copyfile(key, dest)

    def delete(self, key: str) -> None:
        Path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        root = Path(prefix)
        if not root.is_dir():
            return []
        return sorted(str(p) for p in root.rglob("*") if p.is_file() and ".upload-" not in p.name)
