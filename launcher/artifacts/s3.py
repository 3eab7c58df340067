"""The S3 side of the artifact store: one bucket through boto3 (`S3Transport`), and what its errors
mean: `retryable` (wrong credentials, a missing bucket, access denied are not) and `describe` (one
line for people, never a secret). boto3 is imported only when a transport is made."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from launcher.artifacts.transport import ByteProgress, FileEntry, StoreOptions
from launcher.tracking.wandb_mode import redact_text

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")
NOT_RETRIED = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "ExpiredToken",
    "InvalidToken", "InvalidBucketName", "AllAccessDisabled", "AuthorizationHeaderMalformed",
    "InvalidClientTokenId", "UnrecognizedClientException", "403", "404", "400",
}  # fmt: skip
CHECK_TIMEOUT_S = 5.0
"""The connect and the read timeout of the check before a run is created (and before a sync)."""
CHECK_ATTEMPTS = 2
"""Tries of that check (one retry for a transient error): about 10 s for an endpoint that hangs."""


def _client(timeout_s: float, attempts: int | None) -> Any:
    """An S3 client (the standard AWS configuration: endpoint, credentials, retry mode) with these
    connect and read timeouts, and botocore's configured max_attempts (default 5), at most
    `attempts` when given. Attempts count the first request (botocore's `total_max_attempts`;
    its `max_attempts` in a Config counts retries only)."""
    import boto3
    import botocore.session
    from botocore.config import Config

    core = botocore.session.get_session()
    total = int(core.get_config_variable("max_attempts") or 5)
    if attempts is not None:
        total = min(attempts, total)
    retries = {"mode": core.get_config_variable("retry_mode") or "standard", "total_max_attempts": total}
    config = Config(
        connect_timeout=timeout_s, read_timeout=timeout_s, retries=retries, max_pool_connections=16
    )
    return boto3.Session(botocore_session=core).client("s3", config=config)


class S3Transport:
    """One bucket through boto3; keys are object keys."""

    def __init__(self, bucket: str, options: StoreOptions) -> None:
        from boto3.s3.transfer import TransferConfig

        self.options = options
        self.client = _client(options.timeout_s, None)
        self.bucket = bucket
        self.transfer = TransferConfig(
            multipart_threshold=options.chunk_bytes,
            multipart_chunksize=options.chunk_bytes,
            max_concurrency=4,
        )
        self.endpoint = str(self.client.meta.endpoint_url)

    def check(self, key: str) -> None:
        """One small listing under a short bound of its own (CHECK_TIMEOUT_S to connect and to
        read, CHECK_ATTEMPTS tries): an endpoint that accepts and never answers fails in about
        10 s, not in the minutes the transfer timeouts and retries allow."""
        client = _client(min(self.options.timeout_s, CHECK_TIMEOUT_S), CHECK_ATTEMPTS)
        client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)

    def put_file(self, local: Path, key: str, entry: FileEntry, progress: ByteProgress | None) -> None:
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
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return body
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


def unreachable(err: BaseException) -> bool:
    """True when the endpoint could not be reached or did not answer (a broken environment, not
    a refusal of the request)."""
    name = type(_root_cause(err)).__name__
    return (
        name in ("EndpointConnectionError", "ConnectionClosedError") or "Connect" in name or "Timeout" in name
    )


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
