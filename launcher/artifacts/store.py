"""Artifact store: a local directory or `s3://bucket/prefix` (boto3), and its upload protocol.

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
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from launcher.errors import UserError
from launcher.jsonio import atomic_write_bytes, atomic_write_text
from launcher.runs.checkpoints import CHECKPOINT_NAME, MARKER, checkpoint_name
from launcher.tracking.wandb_mode import redact_text

MANIFEST_VERSION = 1
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_READ = 1 << 20
NOT_RETRIED = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "ExpiredToken",
    "InvalidToken", "InvalidBucketName", "AllAccessDisabled", "AuthorizationHeaderMalformed",
    "InvalidClientTokenId", "UnrecognizedClientException", "403", "404", "400",
}  # fmt: skip
Progress = Callable[[int], None]


class StoreError(UserError):
    """An upload or download that did not succeed; one line, no secrets. Exit code 1."""

    exit_code = 1


@dataclass(frozen=True)
class StoreOptions:
    """Timeouts, retries and part sizes; defaults from LAUNCH_S3_* (module docstring)."""

    timeout_s: float = 60.0
    attempts: int = 3
    backoff_s: float = 2.0
    chunk_bytes: int = 8 << 20

    @classmethod
    def from_env(cls) -> StoreOptions:
        env = os.environ
        return cls(
            timeout_s=float(env.get("LAUNCH_S3_TIMEOUT", cls.timeout_s)),
            attempts=max(1, int(env.get("LAUNCH_S3_ATTEMPTS", cls.attempts))),
            backoff_s=float(env.get("LAUNCH_S3_BACKOFF", cls.backoff_s)),
            chunk_bytes=max(5 << 20, int(float(env.get("LAUNCH_S3_CHUNK_MB", 8)) * (1 << 20))),
        )


@dataclass(frozen=True)
class FileEntry:
    """One file of a manifest; `etag` is what S3 should report for it (not stored remotely)."""

    path: str
    size: int
    sha256: str
    etag: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


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
            block = fh.read(min(_READ, part - filled))
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


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_READ):
            sha.update(block)
    return sha.hexdigest()


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


# ---------------------------------------------------------------------------- backends


class _Backend(Protocol):
    endpoint: str

    def check(self, key: str) -> None: ...
    def put_file(self, local: Path, key: str, entry: FileEntry, progress: Progress | None) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def verify(self, key: str, entry: FileEntry) -> str | None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def get_file(self, key: str, dest: Path) -> None: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> list[str]: ...


class _S3Backend:
    """One bucket through boto3; keys are object keys."""

    def __init__(self, bucket: str, options: StoreOptions) -> None:
        import boto3
        import botocore.session
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        core = botocore.session.get_session()
        retries = {
            "mode": core.get_config_variable("retry_mode") or "standard",
            "max_attempts": int(core.get_config_variable("max_attempts") or 5),
        }
        config = Config(
            connect_timeout=options.timeout_s, read_timeout=options.timeout_s, retries=retries,  # type: ignore[arg-type]
            max_pool_connections=16,
        )  # fmt: skip
        self.client = boto3.Session(botocore_session=core).client("s3", config=config)
        self.bucket = bucket
        self.transfer = TransferConfig(
            multipart_threshold=options.chunk_bytes,
            multipart_chunksize=options.chunk_bytes,
            max_concurrency=4,
        )
        self.endpoint = str(self.client.meta.endpoint_url)

    def check(self, key: str) -> None:
        self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)

    def put_file(self, local: Path, key: str, entry: FileEntry, progress: Progress | None) -> None:
        self.client.upload_file(
            str(local), self.bucket, key, ExtraArgs={"Metadata": {"sha256": entry.sha256}},
            Config=self.transfer, Callback=progress,
        )  # fmt: skip

    def put_bytes(self, key: str, data: bytes) -> None:
        sha = hashlib.sha256(data).hexdigest()
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata={"sha256": sha})

    def verify(self, key: str, entry: FileEntry) -> str | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _code(err) in ("404", "NoSuchKey", "NotFound"):
                return "not there"
            raise
        if head["ContentLength"] != entry.size:
            return f"size {head['ContentLength']} != {entry.size}"
        if head.get("Metadata", {}).get("sha256") != entry.sha256:
            return "sha256 metadata differs"
        etag = str(head.get("ETag", "")).strip('"')
        if entry.etag and _MD5_ETAG.match(etag) and etag != entry.etag:
            return f"ETag {etag} != {entry.etag}"
        return None

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as err:
            if _code(err) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def get_file(self, key: str, dest: Path) -> None:
        self.client.download_file(self.bucket, key, str(dest), Config=self.transfer)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys


class _LocalBackend:
    """A directory tree; keys are absolute paths. Writes go to a temporary name, then rename."""

    endpoint = "the local filesystem"

    def check(self, key: str) -> None:
        path = Path(key)
        probe = path
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK):
            raise StoreError(f"{path}: {probe} is not a writable directory")

    def put_file(self, local: Path, key: str, entry: FileEntry, progress: Progress | None) -> None:
        dest = Path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.upload-{os.getpid()}")
        with open(local, "rb") as src, open(tmp, "wb") as out:
            while block := src.read(_READ):
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


# ---------------------------------------------------------------------------- errors


def _code(err: BaseException) -> str:
    response = getattr(err, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", ""))


def _root_cause(err: BaseException) -> BaseException:
    """boto3's S3UploadFailedError and s3transfer wrap the botocore error that says what happened."""
    seen = err
    for _ in range(5):
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            break
        seen = inner
        if _code(seen) or type(seen).__module__.startswith("botocore"):
            break
    return seen if (_code(seen) or type(seen).__module__.startswith("botocore")) else err


def retryable(err: BaseException) -> bool:
    """False for wrong credentials, a missing bucket, access denied and no credentials at all."""
    cause = _root_cause(err)
    name = type(cause).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound"):
        return False
    code = _code(cause)
    if not code:
        match = re.search(r"\(([A-Za-z0-9]+)\) when calling", str(err))
        code = match.group(1) if match else ""
    return code not in NOT_RETRIED


def describe(err: BaseException, endpoint: str, bucket: str | None, timeout_s: float) -> str:
    """One line saying what went wrong, for people; never holds a secret."""
    cause = _root_cause(err)
    name, code = type(cause).__name__, _code(cause)
    at = f"bucket '{bucket}' at {endpoint}" if bucket else endpoint
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        text = (
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
            "or ~/.aws/credentials"
        )
    elif name == "ProfileNotFound":
        text = f"{cause}"
    elif code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredToken",
                  "InvalidToken", "AuthorizationHeaderMalformed"):  # fmt: skip
        text = (
            f"{endpoint} refused the credentials ({code}): check AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    elif code in ("AccessDenied", "403", "AllAccessDisabled"):
        text = f"access denied ({code}) to {at}: wrong credentials, or no permission on the bucket"
    elif code == "NoSuchBucket":
        text = f"bucket '{bucket}' does not exist at {endpoint}"
    elif name in ("EndpointConnectionError", "ConnectionClosedError") or "Connect" in name:
        text = f"cannot reach {endpoint} ({name})"
    elif "Timeout" in name:
        text = f"{endpoint} did not answer within {timeout_s:g}s ({name})"
    elif code:
        message = (getattr(cause, "response", {}).get("Error") or {}).get("Message") or ""
        text = f"{at}: {code}" + (f": {message}" if message else "")
    else:
        first = str(cause).splitlines()[0] if str(cause) else ""
        text = f"{at}: {name}" + (f": {first}" if first else "")
    return redact_text(text)


# ---------------------------------------------------------------------------- the store


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
        self._backend: _Backend | None = None

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    @property
    def backend(self) -> _Backend:
        if self._backend is None:
            self._backend = _S3Backend(self.bucket, self.options) if self.bucket else _LocalBackend()
        return self._backend

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
        return describe(err, self.backend.endpoint, self.bucket, self.options.timeout_s)

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
        """The endpoint answers, the credentials are accepted and the bucket exists; else StoreError."""
        self._call(f"cannot use {self.uri}", lambda: self.backend.check(self.root))

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

    def upload_file(self, local: Path, uri: str, progress: Progress | None = None) -> tuple[FileEntry, bool]:
        """Upload one file (atomic on S3), verified; (its entry, whether it was sent): not sent
        when an identical object is already there."""
        key = self._key(uri)
        entry = file_entry(local, local.name, self.options.chunk_bytes)
        b = self.backend
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
        data = self._call(f"cannot read {uri}", lambda: self.backend.get_bytes(marker))
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
        progress: Progress | None = None,
        manifest: Manifest | None = None,
    ) -> tuple[Manifest, int]:
        """Upload a directory as a unit (module docstring); (its manifest, files sent).

        Raises StoreError when a file could not be uploaded and verified; the remote marker is
        then absent, so the unit never counts as complete.
        """
        manifest = manifest or build_manifest(local, self.options.chunk_bytes)
        key = self._key(uri)
        b = self.backend
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
        keys = self._call(f"cannot list {run_uri}", lambda: self.backend.list(prefix + "/"))
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
            self.backend.get_file(key, tmp)
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


def list_complete_checkpoints(run_uri: str) -> list[RemoteCheckpoint]:
    """Complete checkpoints of the stored run at `run_uri` (s3://bucket/prefix/RUN or a directory)."""
    return Store(run_uri).list_complete_checkpoints(run_uri)


def download_checkpoint(uri: str, dest: Path) -> Path:
    """Download and verify the complete checkpoint at `uri` into `dest` (see Store.download_checkpoint)."""
    return Store(uri).download_checkpoint(uri, dest)
