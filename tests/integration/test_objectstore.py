"""The object store port against both backends: a folder, and the S3 API (moto's server on loopback)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from boxoffice.platform.objectstore import (
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStore,
    build_object_store,
    object_created_event,
)
from boxoffice.platform.settings import Settings
from tests.harness.s3 import S3Server, s3_server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(params=["fs", "s3"])
async def objects(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "fs":
        settings = Settings(data_dir=tmp_path)
    else:
        server: S3Server = request.getfixturevalue("s3")
        settings = Settings(data_dir=tmp_path, **server.settings(f"b-{uuid.uuid4().hex[:12]}"))  # type: ignore[arg-type]
    store = build_object_store(settings)
    await store.start()
    try:
        yield store
    finally:
        await store.stop()


async def test_put_get_exists_list_delete(objects: ObjectStore) -> None:
    stored = await objects.put("uploads/u1/a b.pdf", b"%PDF-1.4 hello", content_type="application/pdf")
    assert stored.size == 14 and stored.key == "uploads/u1/a b.pdf" and len(stored.etag) == 32
    await objects.put("uploads/u2/x", b"second")
    await objects.put("tickets/o1/t1.pdf", b"third")
    assert await objects.get("uploads/u1/a b.pdf") == b"%PDF-1.4 hello"
    assert await objects.exists("uploads/u2/x") and not await objects.exists("uploads/u2/missing")
    assert await objects.list("uploads/") == ["uploads/u1/a b.pdf", "uploads/u2/x"]
    assert await objects.list() == ["tickets/o1/t1.pdf", "uploads/u1/a b.pdf", "uploads/u2/x"]
    await objects.put("uploads/u2/x", b"overwritten")  # same key: replaced, not duplicated
    assert await objects.get("uploads/u2/x") == b"overwritten"
    assert len(await objects.list("uploads/u2/")) == 1
    await objects.delete("uploads/u2/x")
    await objects.delete("uploads/u2/x")  # deleting what is gone is fine
    with pytest.raises(ObjectNotFound):
        await objects.get("uploads/u2/x")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b"])
async def test_keys_that_escape_or_are_ambiguous_are_refused(objects: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await objects.put(key, b"x")


def test_object_created_event_has_the_s3_notification_shape() -> None:
    event = object_created_event(bucket="raw", key="uploads/u 1/x+y.pdf", size=42, etag="abc", region="eu-west-1")
    (record,) = event["Records"]
    assert record["eventName"] == "ObjectCreated:Put" and record["eventSource"] == "aws:s3"
    assert record["awsRegion"] == "eu-west-1" and record["eventTime"].endswith("Z")
    bucket = {"name": "raw", "ownerIdentity": {"principalId": "boxoffice"}, "arn": "arn:aws:s3:::raw"}
    assert record["s3"]["bucket"] == bucket
    assert record["s3"]["object"]["key"] == "uploads/u+1/x%2By.pdf"  # URL-encoded as S3 does
    assert record["s3"]["object"]["size"] == 42
