"""The ticket-generator function (the seeds' ``ticket-generator-func``): it reacts to object-created events.

For each ID proof written under ``uploads/`` it checks the object again (at most 5 MB; a PDF, PNG or JPEG by
its magic bytes), writes the receipt ``tickets/{name}_TICKET.txt`` (with the PDF paths of the order's tickets)
and marks the upload verified or rejected, with an audit entry. Objects under ``tickets/`` are its own output:
the trigger excludes them, so it never triggers itself.

One function, two ways in:

- AWS Lambda with an S3 trigger: ``handle(event, context)`` takes S3's event JSON as is, builds its
  dependencies from ``BOXOFFICE_*`` settings (the S3 bucket, the tickets database) and runs
  ``generate_receipts``.
- Embedded (and any bus deployment): the tickets service consumes ``storage.objects``, whose events carry
  the same record set, and calls ``generate_receipts`` with its own dependencies and its inbox.

Nothing lost, nothing twice: the receipt key is derived from the object key, so a retry overwrites the same
receipt with the same bytes; the verdict is recorded with a conditional update (pending -> settled) and, on
the bus, the event id claimed in the inbox, both in the transaction that records the receipt. A crash
between writing the receipt and recording it re-runs on redelivery (or Lambda's retry) and ends with one
receipt and one verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.platform.audit import SYSTEM
from boxoffice.platform.bus.tables import claim_inbox
from boxoffice.platform.db import Database, utcnow
from boxoffice.platform.objectstore import ObjectNotFound, ObjectStore, StoredObject, announce_object_created
from boxoffice.platform.objectstore import build_object_store as _build_object_store
from boxoffice.platform.settings import Settings
from boxoffice.tickets import domain, store
from boxoffice.tickets.deps import TicketsSettings
from boxoffice.tickets.domain import Upload, UploadStatus

log = structlog.get_logger("boxoffice.tickets.generator")

ID_PROOF_PREFIX = "uploads/"


@dataclass
class GeneratorDeps:
    db: Database
    objects: ObjectStore
    max_bytes: int
    now: Callable[[], datetime] = utcnow


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    status: str  # verified | rejected | skipped | duplicate
    receipt_key: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedObject:
    bucket: str
    key: str
    size: int | None


def created_objects(event: Mapping[str, Any]) -> list[CreatedObject]:
    """The objects an S3 event notification (or our ``storage.object-created`` data) says were created."""
    found = []
    for record in event.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        key = unquote_plus(str((s3.get("object") or {}).get("key", "")))  # S3 URL-encodes keys in events
        size = (s3.get("object") or {}).get("size")
        if key:
            found.append(CreatedObject(str((s3.get("bucket") or {}).get("name", "")), key, size))
    return found


@dataclass(frozen=True, slots=True)
class _Checked:
    upload: Upload | None
    verdict: domain.Verdict
    receipt: StoredObject


async def _check(deps: GeneratorDeps, obj: CreatedObject) -> Outcome | _Checked:
    """Read, judge and write the receipt of one object (no transaction held meanwhile)."""
    if domain.is_generated(obj.key) or not obj.key.startswith(ID_PROOF_PREFIX):
        return Outcome(obj.key, "skipped")
    if obj.bucket and obj.bucket != deps.objects.bucket:
        log.warning("object-created event of another bucket ignored", bucket=obj.bucket, key=obj.key)
        return Outcome(obj.key, "skipped")
    async with deps.db.read() as conn:
        upload = await store.upload_by_key(conn, obj.key)
        tickets = await store.tickets_of_order(conn, upload.order_id) if upload is not None else []
    if upload is not None and upload.status != UploadStatus.PENDING:
        return Outcome(obj.key, "duplicate", upload.receipt_key)
    try:
        data = await deps.objects.get(obj.key)
    except ObjectNotFound:
        log.warning("object gone before the ticket generator read it", key=obj.key)
        return Outcome(obj.key, "skipped")
    verdict = domain.judge_upload(data, max_bytes=deps.max_bytes)
    text = domain.receipt_text(
        object_key=obj.key,
        size=len(data),
        verdict=verdict,
        upload_id=upload.id if upload is not None else None,
        order_id=upload.order_id if upload is not None else None,
        pdfs=[t.pdf_key for t in tickets if t.pdf_key],
    )
    receipt = await deps.objects.put(
        domain.receipt_key(obj.key), text.encode(), content_type="text/plain; charset=utf-8"
    )
    return _Checked(upload, verdict, receipt)


async def generate_receipts(
    event: Mapping[str, Any], deps: GeneratorDeps, *, inbox: tuple[str, str] | None = None
) -> list[Outcome]:
    """Handle one S3-shaped event. ``inbox``: (consumer group, event id) when it came from the bus."""
    results: list[Outcome | _Checked] = [await _check(deps, obj) for obj in created_objects(event)]
    checked = [r for r in results if isinstance(r, _Checked)]
    if not checked:
        return [r for r in results if isinstance(r, Outcome)]
    outcomes: list[Outcome] = []
    async with deps.db.uow() as uow:
        if inbox is not None and not await claim_inbox(uow.conn, *inbox):
            return [Outcome(c.receipt.key, "duplicate", c.receipt.key) for c in checked]
        for result in results:
            if isinstance(result, Outcome):
                outcomes.append(result)
                continue
            upload, verdict, receipt = result.upload, result.verdict, result.receipt
            key = upload.object_key if upload is not None else receipt.key
            if upload is not None and not await _settle(uow.conn, upload, verdict, receipt.key, now=deps.now()):
                outcomes.append(Outcome(key, "duplicate", receipt.key))  # another run settled it first
                continue
            announce_object_created(uow, receipt, region=deps.objects.region)
            outcomes.append(Outcome(key, verdict.status, receipt.key))
        await uow.commit()
    for outcome in outcomes:
        log.info("ticket generator", key=outcome.key, status=outcome.status, receipt=outcome.receipt_key)
    return outcomes


async def _settle(
    conn: AsyncConnection, upload: Upload, verdict: domain.Verdict, receipt_key: str, *, now: datetime
) -> bool:
    """Record the verdict and its audit entry, once (False: another run settled the upload first)."""
    if not await store.settle_upload(
        conn, upload.id, status=verdict.status, reason=verdict.reason, receipt_key=receipt_key, now=now
    ):
        return False
    await store.record_audit(
        conn,
        entity="upload",
        entity_id=upload.id,
        action=f"upload.{verdict.status}",
        actor=SYSTEM,
        at=now,
        order_id=upload.order_id,
        detail={"reason": verdict.reason, "receipt_key": receipt_key},
    )
    return True


# AWS Lambda.
def build_deps(settings: Settings, config: TicketsSettings) -> GeneratorDeps:
    return GeneratorDeps(
        db=Database(config.database_url or settings.sqlite_url("tickets"), name="tickets", pool_size=2),
        objects=_build_object_store(settings),
        max_bytes=config.max_upload_bytes,
    )


async def _run(event: Mapping[str, Any]) -> list[Outcome]:
    deps = build_deps(Settings(), TicketsSettings())
    await deps.objects.start()
    try:
        return await generate_receipts(event, deps)
    finally:
        await deps.objects.stop()
        await deps.db.dispose()


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: ``event`` is S3's notification JSON; raising makes Lambda retry it."""
    outcomes = asyncio.run(_run(event))
    return {"results": [asdict(o) for o in outcomes]}
