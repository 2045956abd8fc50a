"""The object store: a small port (put, get, exists, delete, list by prefix) and its two backends.

- ``FsObjectStore``: a folder under the data dir (the embedded default), one sub-folder per bucket.
- ``S3ObjectStore``: the S3 API (AWS S3, MinIO, moto's server), boto3 run in worker threads.

Object-created events. S3 notifies a bucket's writes itself; so that a handler written for S3 notifications
runs unchanged in both modes, every write through this port is announced on the bus too: topic
``storage.objects``, type ``storage.object-created``, key = the object key, data = the S3 event-notification
record set (``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name"}, "object": {"key",
"size"}}}]}``, with the key URL-encoded as S3 does).

The event travels through the writing service's outbox, so it commits with the row that records the object.
The order is what makes it safe::

    stored = await objects.put(key, data)              # 1. the object exists (idempotent: same key, same bytes)
    async with db.uow() as uow:                         # 2. the record and the event commit together
        await insert_row(uow.conn, key=stored.key, ...)
        announce_object_created(uow, stored)
        await uow.commit()

A crash between 1 and 2 leaves an orphan object that nothing refers to (harmless; a retry writes the same
key again), never a row or an event naming an object that does not exist. Writing the event before the object
could announce an object that never arrives; writing the object after the commit could lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar
from urllib.parse import quote_plus

from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.settings import Settings

OBJECTS_TOPIC = "storage.objects"
OBJECT_CREATED = "storage.object-created"

T = TypeVar("T")


class ObjectNotFound(LookupError):
    """No object under that key."""


class InvalidObjectKey(ValueError):
    """Keys are relative, '/'-separated, without '.' or '..' segments."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    etag: str
    """The MD5 of the content in hex, as S3 reports it for a single-part upload."""


class ObjectStore(Protocol):
    bucket: str
    region: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> StoredObject:
        """Write (or overwrite) the object; returns once it is durable."""

    async def get(self, key: str) -> bytes:
        """The object's bytes; raises ``ObjectNotFound``."""

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object; no error when it does not exist."""

    async def list(self, prefix: str = "") -> list[str]:
        """The keys starting with ``prefix``, sorted."""


def check_key(key: str) -> str:
    if not key or len(key) > 1024 or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidObjectKey(f"invalid object key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidObjectKey(f"invalid object key {key!r}")
    return key


def _etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class FsObjectStore:
    """Objects as files under ``root/bucket``; a write goes to a temporary file that is renamed into place,
    so a reader sees the old object or the new one, never half of one."""

    def __init__(self, root: Path, *, bucket: str, region: str = "us-east-1") -> None:
        self.root = root
        self.bucket = bucket
        self.region = region
        self.base = root / bucket

    async def start(self) -> None:
        await asyncio.to_thread(self.base.mkdir, parents=True, exist_ok=True)

    async def stop(self) -> None:
        pass

    def _path(self, key: str) -> Path:
        return self.base.joinpath(*PurePosixPath(check_key(key)).parts)

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> StoredObject:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

        await asyncio.to_thread(write)
        return StoredObject(self.bucket, key, len(data), _etag(data))

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def list(self, prefix: str = "") -> list[str]:
        def walk() -> list[str]:
            if not self.base.is_dir():
                return []
            keys = []
            for dirpath, _dirs, files in os.walk(self.base):
                for name in files:
                    if name.startswith(".tmp-"):
                        continue
                    key = Path(dirpath, name).relative_to(self.base).as_posix()
                    if key.startswith(prefix):
                        keys.append(key)
            return sorted(keys)

        return await asyncio.to_thread(walk)


class S3ObjectStore:
    """The S3 API through boto3. boto3 blocks, so each call runs in a worker thread (its clients are
    thread-safe); the client is built in ``start()``, not at import time."""

    def __init__(
        self,
        *,
        bucket: str,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        create_bucket: bool = False,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url
        self._credentials = (access_key_id, secret_access_key)
        self.create_bucket = create_bucket
        self._client: Any = None

    async def start(self) -> None:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        access_key_id, secret_access_key = self._credentials
        self._client = boto3.client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        )
        if self.create_bucket:
            await self._call(self._ensure_bucket)

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    def _ensure_bucket(self, client: Any) -> None:
        try:
            client.head_bucket(Bucket=self.bucket)
        except client.exceptions.ClientError:
            options: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(**options)

    async def _call(self, fn: Callable[[Any], T]) -> T:
        if self._client is None:
            raise RuntimeError("the S3 object store has not started")
        client = self._client
        return await asyncio.to_thread(fn, client)

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> StoredObject:
        check_key(key)
        await self._call(lambda c: c.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type))
        return StoredObject(self.bucket, key, len(data), _etag(data))

    async def get(self, key: str) -> bytes:
        check_key(key)

        def fetch(client: Any) -> bytes:
            try:
                body: bytes = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except client.exceptions.NoSuchKey:
                raise ObjectNotFound(key) from None
            return body

        return await self._call(fetch)

    async def exists(self, key: str) -> bool:
        check_key(key)

        def head(client: Any) -> bool:
            try:
                client.head_object(Bucket=self.bucket, Key=key)
            except client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            return True

        return await self._call(head)

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._call(lambda c: c.delete_object(Bucket=self.bucket, Key=key))

    async def list(self, prefix: str = "") -> list[str]:
        def collect(client: Any) -> list[str]:
            keys: list[str] = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
            return sorted(keys)

        return await self._call(collect)


def build_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "s3":
        secret = settings.s3_secret_access_key
        return S3ObjectStore(
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            create_bucket=settings.s3_create_bucket,
        )
    root = settings.object_store_dir or settings.data_dir / "objects"
    return FsObjectStore(root.resolve(), bucket=settings.s3_bucket, region=settings.s3_region)


# Object-created events in the shape of S3's event notifications.
def object_created_event(
    *, bucket: str, key: str, size: int, etag: str, region: str = "us-east-1", when: datetime | None = None
) -> dict[str, Any]:
    """The record set S3 sends for one ``PutObject`` (event structure version 2.1)."""
    when = when or datetime.now(UTC)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "boxoffice"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "boxoffice", "x-amz-id-2": "boxoffice"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "boxoffice-object-created",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "boxoffice"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": f"{time.time_ns():016X}",
                    },
                },
            }
        ]
    }


def announce_object_created(uow: UnitOfWork, stored: StoredObject, *, region: str = "us-east-1") -> None:
    """Put the object-created event in ``uow``'s outbox (call it after ``put`` returned, before commit)."""
    data = object_created_event(bucket=stored.bucket, key=stored.key, size=stored.size, etag=stored.etag, region=region)
    uow.publish(OBJECTS_TOPIC, OBJECT_CREATED, key=stored.key, data=data)
