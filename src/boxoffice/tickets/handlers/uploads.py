"""ID-proof uploads: stored for the caller's order; the ticket generator (``functions``) verifies them."""

from __future__ import annotations

from boxoffice.platform.auth import Principal
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.metrics import counter
from boxoffice.platform.objectstore import announce_object_created
from boxoffice.tickets import domain, store
from boxoffice.tickets.deps import TicketsDeps
from boxoffice.tickets.domain import CreateUpload, Upload, UploadStatus

UPLOADS = counter("boxoffice_id_uploads_total", "ID-proof uploads accepted")


async def create_upload(deps: TicketsDeps, cmd: CreateUpload, *, owner: Principal) -> Upload:
    """Store an ID proof for the caller's order; the ticket generator verifies it after the commit."""
    content_type = domain.check_upload(cmd.data, max_bytes=deps.config.max_upload_bytes)
    # Booking owns orders: it says whether this one exists and is the caller's.
    if await deps.orders.owner(cmd.order_id) != owner.id:
        raise domain.OrderNotFound("You have no order with this id.")
    upload_id = uuid7()
    stored = await deps.objects.put(domain.upload_key(owner.id, upload_id), cmd.data, content_type=content_type)
    upload = Upload(
        id=upload_id,
        user_id=owner.id,
        order_id=cmd.order_id,
        object_key=stored.key,
        filename=domain.clean_filename(cmd.filename),
        size=stored.size,
        content_type=content_type,
        status=UploadStatus.PENDING,
        created_at=deps.now(),
    )
    async with deps.db.uow() as uow:
        await store.insert_upload(uow.conn, upload)
        await store.record_audit(
            uow.conn,
            entity="upload",
            entity_id=upload.id,
            action="upload.received",
            actor=owner.id,
            at=upload.created_at,
            order_id=upload.order_id,
            detail={"size": upload.size, "content_type": content_type},
        )
        announce_object_created(uow, stored, region=deps.objects.region)
        await uow.commit()
    UPLOADS.inc()
    return upload


async def get_upload(deps: TicketsDeps, upload_id: str, *, viewer: Principal) -> Upload:
    async with deps.db.read() as conn:
        upload = await store.upload_by_id(conn, upload_id)
    if upload is None or upload.user_id != viewer.id:
        raise domain.UploadNotFound("You have no upload with this id.")
    return upload
