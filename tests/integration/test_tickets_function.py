"""The ticket-generator function as AWS Lambda runs it: ``handle(event, context)`` with S3's own event JSON,
against the S3 API (moto's server on loopback) and the tickets database, the service storing uploads in S3."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from boxoffice.platform.settings import Settings
from boxoffice.tickets.deps import TicketsSettings
from boxoffice.tickets.functions import generate_receipts, handle
from tests.harness.app import Running, running
from tests.harness.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server, s3_server
from tests.integration.test_tickets import PDF, audit, booking_stand_in, customer, upload


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def bucket() -> str:
    return f"ticket-booking-raw-data-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def app(tmp_path: Path, s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"
    # What the Lambda is configured with: the same bucket and the tickets database.
    for name, value in {
        **s3.env(bucket),
        "BOXOFFICE_TICKETS_DATABASE_URL": db_url,
        "BOXOFFICE_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=tmp_path, **s3.settings(bucket))  # type: ignore[arg-type]
    # No tickets workers: the Lambda, not the embedded consumer, reacts to these uploads. Identity's mail
    # sender runs (sign-up needs its e-mail).
    configs = {"tickets": TicketsSettings(database_url=db_url)}
    async with running(settings, ["identity", "tickets"], workers=False, configs=configs) as app:
        mail = asyncio.create_task(app.service("identity").send_mail_forever())
        try:
            yield app
        finally:
            mail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mail


def s3_client(s3: S3Server) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def aws_event(bucket: str, key: str, size: int) -> dict[str, Any]:
    """An ObjectCreated:Put notification exactly as S3 delivers it to Lambda (key URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-22T10:15:30.123Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "203.0.113.7"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ticket-generator-trigger",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": key.replace(" ", "+"),
                        "size": size,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                        "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


async def invoke(event: dict[str, Any]) -> dict[str, Any]:
    """Lambda runs the handler synchronously in its own process; a thread with its own loop is the same here."""
    result: dict[str, Any] = await asyncio.to_thread(handle, event, None)
    return result


async def test_lambda_verifies_an_upload_and_writes_one_receipt(app: Running, s3: S3Server, bucket: str) -> None:
    fan = await customer(app.client)
    booking_stand_in(app, {"order-1": fan.id})
    created = await upload(app, fan, "order-1", PDF)
    assert created.status_code == 201, created.text
    upload_id = created.json()["id"]
    key = f"uploads/{fan.id}/{upload_id}"
    client = s3_client(s3)
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == PDF  # the upload really is in S3

    result = await invoke(aws_event(bucket, key, len(PDF)))
    receipt_key = f"tickets/{upload_id}_TICKET.txt"
    assert result == {"results": [{"key": key, "status": "verified", "receipt_key": receipt_key}]}
    state = (await app.client.get(f"/api/uploads/{upload_id}", headers=fan.headers)).json()
    assert state["status"] == "verified" and state["receipt_key"] == receipt_key
    receipt = client.get_object(Bucket=bucket, Key=receipt_key)["Body"].read().decode()
    assert "VERIFIED" in receipt and "order: order-1" in receipt

    # Lambda retries (or S3 delivers twice): still one receipt, the verdict unchanged.
    again = await invoke(aws_event(bucket, key, len(PDF)))
    assert again["results"][0]["status"] == "duplicate"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="tickets/").get("Contents", [])]
    assert keys == [receipt_key]

    # Its own output never triggers it (the trigger's filter, enforced in the function as well).
    skipped = await invoke(aws_event(bucket, receipt_key, len(receipt)))
    assert skipped["results"][0]["status"] == "skipped"
    # The verdict is in the order's audit trail, once, as the function's (not the customer's).
    trail = [(e["action"], e["actor"], e["entity_id"]) for e in await audit(app, "order-1")]
    assert trail == [("upload.received", fan.id, upload_id), ("upload.verified", "system", upload_id)]


async def test_lambda_rejects_an_upload_whose_object_was_replaced_and_says_why(
    app: Running, s3: S3Server, bucket: str
) -> None:
    fan = await customer(app.client)
    booking_stand_in(app, {"order-2": fan.id})
    upload_id = (await upload(app, fan, "order-2", PDF)).json()["id"]
    key = f"uploads/{fan.id}/{upload_id}"
    s3_client(s3).put_object(Bucket=bucket, Key=key, Body=b"\x7fELF\x02\x01\x01" + b"\x00" * 64)  # swapped after
    result = await invoke(aws_event(bucket, key, 71))
    assert result["results"][0]["status"] == "rejected"
    state = (await app.client.get(f"/api/uploads/{upload_id}", headers=fan.headers)).json()
    assert state["status"] == "rejected"
    *_, rejected = await audit(app, "order-2")
    assert (rejected["action"], rejected["entity_id"], rejected["actor"]) == ("upload.rejected", upload_id, "system")
    assert rejected["detail"] == {"reason": "not a PDF, PNG or JPEG file", "receipt_key": state["receipt_key"]}


async def test_lambda_rejects_a_disguised_file_dropped_straight_into_the_bucket(
    s3: S3Server, bucket: str, app: Running
) -> None:
    client = s3_client(s3)
    key = "uploads/walk-in/passport scan.pdf"  # written to S3 directly, as the seeds' frontend did
    client.put_object(Bucket=bucket, Key=key, Body=b"\x7fELF\x02\x01\x01" + b"\x00" * 64)
    result = await invoke(aws_event(bucket, key, 71))
    assert result["results"][0]["status"] == "rejected"
    receipt = client.get_object(Bucket=bucket, Key="tickets/passport scan.pdf_TICKET.txt")["Body"].read().decode()
    assert "REJECTED" in receipt and "not a PDF, PNG or JPEG" in receipt


class CrashAfterReceipt:
    """The object store of a generator that dies right after the receipt is written (before recording it)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.bucket, self.region = inner, inner.bucket, inner.region

    async def get(self, key: str) -> bytes:
        data: bytes = await self.inner.get(key)
        return data

    async def put(self, key: str, data: bytes, **kwargs: Any) -> Any:
        await self.inner.put(key, data, **kwargs)
        raise ConnectionResetError("the process died after writing the receipt")


async def test_a_crash_between_receipt_and_record_leaves_one_receipt_and_loses_nothing(
    app: Running, s3: S3Server, bucket: str
) -> None:
    fan = await customer(app.client)
    booking_stand_in(app, {"order-1": fan.id})
    upload_id = (await upload(app, fan, "order-1", PDF)).json()["id"]
    key = f"uploads/{fan.id}/{upload_id}"
    tickets = app.service("tickets")
    event, inbox = aws_event(bucket, key, len(PDF)), ("tickets.generator", str(uuid.uuid4()))

    crashing = tickets.generator_deps()
    crashing.objects = CrashAfterReceipt(tickets.objects)
    with pytest.raises(ConnectionResetError):
        await generate_receipts(event, crashing, inbox=inbox)
    state = (await app.client.get(f"/api/uploads/{upload_id}", headers=fan.headers)).json()
    assert state["status"] == "pending"  # nothing recorded: the event is handled again on redelivery

    (redelivered,) = await generate_receipts(event, tickets.generator_deps(), inbox=inbox)
    assert redelivered.status == "verified"
    (third,) = await generate_receipts(event, tickets.generator_deps(), inbox=inbox)
    assert third.status == "duplicate"
    keys = [o["Key"] for o in s3_client(s3).list_objects_v2(Bucket=bucket, Prefix="tickets/").get("Contents", [])]
    assert keys == [f"tickets/{upload_id}_TICKET.txt"]
    state = (await app.client.get(f"/api/uploads/{upload_id}", headers=fan.headers)).json()
    assert state["status"] == "verified" and state["receipt_key"] == keys[0]
