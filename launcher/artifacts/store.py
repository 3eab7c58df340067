"""Artifact store: a local directory or `s3://bucket/prefix` (boto3), and its upload protocol. The
bytes go through a transport: launcher.artifacts.local or launcher.artifacts.s3.

Endpoint and credentials come the standard AWS way (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3,
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, ~/.aws/config and
~/.aws/credentials, instance roles), so AWS, MinIO and Ceph work unchanged.

Layout: a run mirrors its run directory, `<store>/<run_id>/...`. A directory (a checkpoint,
a results directory) is uploaded as a unit:

1. if `<unit>/COMPLETE` exists remotely and holds the same manifest, nothing is done;
   if it holds another manifest, it is deleted first (a reader never sees old marker + new files);
2. every file is uploaded (multipart above `LAUNCH_S3_CHUNK_MB`, default 8 MiB), with its sha256
   in the object metadata, unless an object of the same size and sha256 is already there;
3. each file is verified against what the server reports: the size, the sha256 metadata, and the
   ETag, which S3, MinIO and Ceph compute as the MD5 of the object (single PUT) or the MD5 of the
   parts' MD5s plus `-<parts>` (multipart); we compute the same locally with the part size used.
   An ETag that is not of that form (SSE-KMS, SSE-C) is not compared. Bytes in transit are also
   covered by the CRC32 checksums botocore sends and the server checks for every request;
4. the marker `<unit>/COMPLETE` is written LAST: a JSON manifest `{version, files: [{path, size,
   sha256}], marker}` where `marker` is the text of the local checkpoint's own COMPLETE file
   (it is not uploaded as a file; a download writes it back byte for byte, so the evaluation
   fingerprint of a downloaded checkpoint equals the original's).

A unit without its COMPLETE object is never listed or downloaded as complete. Single files
(recipe.yaml, launch.json, results/train.json) are single PUTs, atomic on S3, verified the same way.

Retries: botocore retries each request (`standard` mode, AWS_MAX_ATTEMPTS / AWS_RETRY_MODE or the
config file, default 5 attempts); around that each file is retried `LAUNCH_S3_ATTEMPTS` times
(default 3) with exponential backoff from `LAUNCH_S3_BACKOFF` seconds (default 2, jittered, capped
at 60). Connect and read timeouts are `LAUNCH_S3_TIMEOUT` seconds (default 60). Wrong credentials,
a missing bucket or access denied are not retried. Every failure becomes one `StoreError` line
that names the endpoint and never holds a secret.

Downloads verify every file's size and sha256 against the manifest and write the local COMPLETE
marker last.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.artifacts.local import LocalTransport
from launcher.artifacts.s3 import CHECK_TIMEOUT_S, S3Transport, describe, retryable, unreachable
from launcher.artifacts.transport import (
    READ_BLOCK,
    ByteProgress,
    FileEntry,
    StoreError,
    StoreOptions,
    StoreUnreachable,
    Transport,
    sha256_of,
)
from launcher.errors import UserError
from launcher.jsonio import atomic_write_text
from launcher.runs.checkpoints import CHECKPOINT_NAME, MARKER, checkpoint_name

MANIFEST_VERSION = 1
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass
class Manifest:
    """What a unit holds; its JSON is the remote COMPLETE marker."""

    files: list[FileEntry]
    marker: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "files": [f.to_json() for f in self.files],
            "marker": self.marker,
            **self.info,
        }

    def same_files(self, other: dict[str, Any]) -> bool:
        theirs = sorted((f["path"], f["size"], f["sha256"]) for f in other.get("files", []))
        return theirs == sorted((f.path, f.size, f.sha256) for f in self.files) and (
            other.get("marker") == self.marker
        )

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class RemoteCheckpoint:
    """A checkpoint whose COMPLETE marker is in the store."""

    uri: str
    step: int
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return checkpoint_name(self.step)


def file_entry(path: Path, rel: str, chunk_bytes: int, threshold: int | None = None) -> FileEntry:
    """Size, sha256 and the ETag S3 will report for `path` uploaded with `chunk_bytes` parts."""
    from s3transfer.utils import ChunksizeAdjuster

    size = path.stat().st_size
    threshold = chunk_bytes if threshold is None else threshold
    part = ChunksizeAdjuster().adjust_chunksize(chunk_bytes, size) if size >= threshold else max(size, 1)
    sha, whole, parts, current, filled = hashlib.sha256(), hashlib.md5(), [], hashlib.md5(), 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(min(READ_BLOCK, part - filled))
            if not block:
                break
            sha.update(block)
            whole.update(block)
            current.update(block)
            filled += len(block)
            if filled == part:
                parts.append(current.digest())
                current, filled = hashlib.md5(), 0
    if filled:
        parts.append(current.digest())
    if size >= threshold:
        etag = f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"
    else:
        etag = whole.hexdigest()
    return FileEntry(rel, size, sha.hexdigest(), etag)


def build_manifest(directory: Path, chunk_bytes: int, skip: tuple[str, ...] = (MARKER,)) -> Manifest:
    """The manifest of every file under `directory` (the local COMPLETE marker's text kept apart)."""
    files = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel in skip or (path.name.startswith(".") and path.name.endswith(".tmp")):
            continue
        files.append(file_entry(path, rel, chunk_bytes))
    marker_file = directory / MARKER
    marker = marker_file.read_text() if marker_file.is_file() else None
    return Manifest(files, marker)


def parse_uri(uri: str) -> tuple[str | None, str]:
    """(bucket, key prefix) for `s3://bucket/prefix`, (None, absolute path) for a local path."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        if not _BUCKET.match(bucket):
            raise UserError(f"{uri}: '{bucket}' is not a valid S3 bucket name")
        return bucket, key.strip("/")
    if "://" in uri:
        raise UserError(f"{uri}: unsupported scheme; valid: a local directory or s3://bucket/prefix")
    return None, str(Path(uri).expanduser().resolve())


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


class Store:
    """A local directory or an S3 prefix, with the upload protocol of the module docstring.

    Methods taking a `uri` accept any URI in the same bucket (or any local path for a local store).
    """

    def __init__(self, uri: str, options: StoreOptions | None = None) -> None:
        self.options = options or StoreOptions.from_env()
        self.bucket, self.root = parse_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.root}".rstrip("/") if self.bucket else self.root
        self._transport: Transport | None = None

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = S3Transport(self.bucket, self.options) if self.bucket else LocalTransport()
        return self._transport

    def child(self, *parts: str) -> str:
        """The URI of `parts` under this store."""
        rel = _join(*parts)
        if self.is_s3:
            return f"s3://{self.bucket}/{_join(self.root, rel)}"
        return str(Path(self.root, rel)) if rel else self.root

    def _key(self, uri: str) -> str:
        bucket, key = parse_uri(uri)
        if bucket != self.bucket:
            raise UserError(f"{uri}: not in the store {self.uri}")
        return key

    def _sub(self, key: str, *parts: str) -> str:
        """The key of `parts` under `key`."""
        return _join(key, *parts) if self.is_s3 else str(Path(key, *parts))

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}" if self.is_s3 else key

    def _describe(self, err: BaseException) -> str:
        return describe(err, self.transport.endpoint, self.bucket, self.options.timeout_s)

    def _fail(self, err: BaseException, what: str) -> StoreError:
        if isinstance(err, StoreError):
            return err
        return StoreError(f"{what}: {self._describe(err)}")

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """`fn` with the store's errors turned into one StoreError line (botocore retries inside)."""
        try:
            return fn()
        except StoreError:
            raise
        except Exception as err:
            raise self._fail(err, what) from None

    def check(self) -> None:
        """The endpoint answers, the credentials are accepted and the bucket exists, within the
        check's short bound (launcher.artifacts.s3.CHECK_TIMEOUT_S); else StoreError, or
        StoreUnreachable when the endpoint could not be reached or did not answer in time."""
        try:
            self.transport.check(self.root)
        except StoreError:
            raise
        except Exception as err:
            timeout_s = min(self.options.timeout_s, CHECK_TIMEOUT_S)
            text = describe(err, self.transport.endpoint, self.bucket, timeout_s)
            kind = StoreUnreachable if unreachable(err) else StoreError
            raise kind(f"cannot use {self.uri}: {text}") from None

    # ------------------------------------------------------------------ upload

    def _with_retries(self, what: str, fn: Callable[[], str | None]) -> None:
        """Run `fn` (None = verified) up to `attempts` times with exponential backoff."""
        last = ""
        o = self.options
        for attempt in range(1, o.attempts + 1):
            try:
                problem = fn()
                if problem is None:
                    return
                last = f"verification failed: {problem}"
            except Exception as err:
                if not retryable(err):
                    raise self._fail(err, what) from None
                last = self._describe(err)
            if attempt < o.attempts:
                time.sleep(min(60.0, o.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random()))
        raise StoreError(f"{what}: failed after {o.attempts} attempts: {last}")

    def upload_file(
        self, local: Path, uri: str, progress: ByteProgress | None = None
    ) -> tuple[FileEntry, bool]:
        """Upload one file (atomic on S3), verified; (its entry, whether it was sent): not sent
        when an identical object is already there."""
        key = self._key(uri)
        entry = file_entry(local, local.name, self.options.chunk_bytes)
        b = self.transport
        sent = False

        def attempt() -> str | None:
            nonlocal sent
            if b.verify(key, entry) is None:
                return None
            b.put_file(local, key, entry, progress)
            sent = True
            return b.verify(key, entry)

        self._with_retries(f"upload of {local} to {uri}", attempt)
        return entry, sent

    def read_manifest(self, uri: str) -> dict[str, Any] | None:
        """The manifest in `<uri>/COMPLETE`, or None when the unit is not complete there."""
        marker = self._sub(self._key(uri), MARKER)
        data = self._call(f"cannot read {uri}", lambda: self.transport.get_bytes(marker))
        if data is None:
            return None
        try:
            manifest = json.loads(data)
        except ValueError:
            return None
        return (
            manifest if isinstance(manifest, dict) and manifest.get("version") == MANIFEST_VERSION else None
        )

    def upload_dir(
        self,
        local: Path,
        uri: str,
        progress: ByteProgress | None = None,
        manifest: Manifest | None = None,
    ) -> tuple[Manifest, int]:
        """Upload a directory as a unit (module docstring); (its manifest, files sent).

        Raises StoreError when a file could not be uploaded and verified; the remote marker is
        then absent, so the unit never counts as complete.
        """
        manifest = manifest or build_manifest(local, self.options.chunk_bytes)
        key = self._key(uri)
        b = self.transport
        remote = self.read_manifest(uri)
        if remote is not None and manifest.same_files(remote):
            return manifest, 0
        marker_key = self._sub(key, MARKER)
        if remote is not None:
            self._call(f"cannot replace {uri}", lambda: b.delete(marker_key))
        sent = 0
        for entry in manifest.files:
            file_key = self._sub(key, entry.path)
            path = local / entry.path

            def attempt(path: Path = path, file_key: str = file_key, entry: FileEntry = entry) -> str | None:
                nonlocal sent
                if b.verify(file_key, entry) is None:
                    return None
                b.put_file(path, file_key, entry, progress)
                sent += 1
                return b.verify(file_key, entry)

            self._with_retries(f"upload of {path} to {uri}", attempt)
        body = (json.dumps(manifest.to_json(), indent=1) + "\n").encode()

        def put_marker() -> str | None:
            b.put_bytes(marker_key, body)
            return None if b.get_bytes(marker_key) == body else "marker differs when read back"

        self._with_retries(f"writing the COMPLETE marker of {uri}", put_marker)
        return manifest, sent

    # ------------------------------------------------------------------ read

    def list_complete_checkpoints(self, run_uri: str) -> list[RemoteCheckpoint]:
        """Checkpoints of the run at `run_uri` whose COMPLETE marker is in the store, oldest first."""
        key = self._key(run_uri)
        prefix = self._sub(key, "checkpoints")
        keys = self._call(f"cannot list {run_uri}", lambda: self.transport.list(prefix + "/"))
        found = []
        for k in keys:
            parent, _, name = k.rpartition("/")
            m = CHECKPOINT_NAME.match(parent.rpartition("/")[2])
            if name != MARKER or not m or parent != self._sub(prefix, m.group(0)):
                continue
            uri = self._uri(parent)
            manifest = self.read_manifest(uri)
            if manifest is not None:
                found.append(RemoteCheckpoint(uri, int(m.group(1)), manifest))
        return sorted(found, key=lambda c: c.step)

    def download_file(self, uri: str, dest: Path, entry: dict[str, Any] | None = None) -> None:
        """Download one object to `dest` (via a temporary name); verified when `entry` is given."""
        key = self._key(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.download-{os.getpid()}")

        def attempt() -> str | None:
            self.transport.get_file(key, tmp)
            if entry is not None:
                size = tmp.stat().st_size
                if size != entry["size"]:
                    return f"size {size} != {entry['size']} in the manifest"
                if sha256_of(tmp) != entry["sha256"]:
                    return "sha256 differs from the manifest"
            tmp.replace(dest)
            return None

        try:
            self._with_retries(f"download of {uri}", attempt)
        finally:
            tmp.unlink(missing_ok=True)

    def download_checkpoint(self, uri: str, dest: Path) -> Path:
        """Download the complete checkpoint at `uri` into directory `dest`; returns `dest`.

        Every file is checked against the manifest (size, sha256); files already in `dest` that
        match are kept. The local COMPLETE marker (the original's bytes) is written last.
        Raises StoreError when `uri` has no COMPLETE marker or a file does not verify.
        """
        manifest = self.read_manifest(uri)
        if manifest is None:
            raise StoreError(f"{uri}: not a complete checkpoint in the store (no {MARKER} marker)")
        local_marker = dest / MARKER
        text = manifest.get("marker") or json.dumps(manifest) + "\n"
        if local_marker.is_file() and local_marker.read_text() == text:
            return dest
        local_marker.unlink(missing_ok=True)
        key = self._key(uri)
        for entry in manifest["files"]:
            target = dest / entry["path"]
            size, sha = entry["size"], entry["sha256"]
            if target.is_file() and target.stat().st_size == size and sha256_of(target) == sha:
                continue
            self.download_file(self._uri(self._sub(key, entry["path"])), target, entry)
        atomic_write_text(local_marker, text)
        return dest

    def download_run(self, run_uri: str, dest_root: Path, steps: list[int] | None = None) -> Path:
        """A local copy of a stored run: recipe.yaml, launch.json and its complete checkpoints
        (those of `steps`, all when None) under `dest_root/<run id>`; returns that directory."""
        run_id = run_uri.rstrip("/").rsplit("/", 1)[-1]
        run_dir = dest_root / run_id
        key = self._key(run_uri)
        for name in ("recipe.yaml", "launch.json"):
            try:
                self.download_file(self._uri(self._sub(key, name)), run_dir / name)
            except StoreError:
                if name == "recipe.yaml":
                    raise StoreError(f"{run_uri}: no run in the store there (no recipe.yaml)") from None
        for ckpt in self.list_complete_checkpoints(run_uri):
            if steps is None or ckpt.step in steps:
                self.download_checkpoint(ckpt.uri, run_dir / "checkpoints" / ckpt.name)
        return run_dir
