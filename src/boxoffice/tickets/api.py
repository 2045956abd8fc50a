"""Tickets' HTTP API (ARCHITECTURE.md section 5) and its internal endpoints (docs/contracts.md)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile

from boxoffice.platform.app import provide
from boxoffice.platform.audit import AuditOut
from boxoffice.platform.auth import CurrentUser, Principal, require_internal, require_role
from boxoffice.platform.problem_http import problem_responses
from boxoffice.tickets.deps import TicketsDeps
from boxoffice.tickets.domain import CheckIn, CreateUpload, ListTickets, VoidOrder
from boxoffice.tickets.handlers import gates, issuing, reading, uploads
from boxoffice.tickets.schemas import (
    ID_PATTERN,
    CheckInIn,
    CheckInOut,
    Jwk,
    Jwks,
    TicketPage,
    TicketRefs,
    UploadCreated,
    UploadOut,
    VoidOrderIn,
    VoidOrderOut,
)

Deps = Annotated[TicketsDeps, Depends(provide(TicketsDeps))]
Gate = Annotated[Principal, Depends(require_role("admin", "staff"))]
# Ids are plain (booking's and ours are UUIDs): anything else names nothing and never reaches the database.
OrderId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]

router = APIRouter(tags=["tickets"])
internal = APIRouter(prefix="/internal", dependencies=[Depends(require_internal)], include_in_schema=False)

PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
}


@router.get("/api/tickets/keys")
async def ticket_keys(deps: Deps, response: Response) -> Jwks:
    """The public keys that verify ticket codes (JWKS), for gates that check codes offline."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return Jwks(keys=[Jwk.model_validate(key) for key in reading.public_keys(deps)])


@router.get("/api/tickets", responses=problem_responses(400, 401, 422))
async def list_my_tickets(
    user: CurrentUser,
    deps: Deps,
    order_id: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    query = ListTickets(order_id=order_id, cursor=cursor, limit=limit)
    return TicketPage.of(await reading.list_tickets(deps, query, owner=user))


@router.get(
    "/api/tickets/{ticket_id}/pdf",
    response_class=Response,
    responses={**PDF_RESPONSE, **problem_responses(401, 403, 404, 409, 422)},
)
async def ticket_pdf(ticket_id: UUID, user: CurrentUser, deps: Deps) -> Response:
    pdf = await reading.ticket_pdf(deps, str(ticket_id), viewer=user)
    headers = {"Content-Disposition": f'inline; filename="ticket-{ticket_id}.pdf"', "Cache-Control": "private"}
    return Response(pdf, media_type="application/pdf", headers=headers)


@router.post("/api/checkin", responses=problem_responses(400, 401, 403, 409, 422))
async def check_in(body: CheckInIn, gate: Gate, deps: Deps) -> CheckInOut:
    cmd = CheckIn(code=body.code, event_id=body.event_id, gate=body.gate, nonce=body.nonce)
    return CheckInOut.of(await gates.check_in(deps, cmd, gate=gate))


@router.post("/api/uploads", status_code=201, responses=problem_responses(401, 404, 413, 415, 422, 503))
async def create_upload(
    user: CurrentUser,
    deps: Deps,
    file: Annotated[UploadFile, File(description="the ID proof: PDF, PNG or JPEG, at most 5 MB")],
    order_id: Annotated[str, Form(min_length=1, max_length=64)],
) -> UploadCreated:
    # Read one byte past the limit, never the whole of an oversized part (it is spooled to disk meanwhile;
    # the platform's body limit already stopped anything much larger before it was parsed).
    data = await file.read(deps.config.max_upload_bytes + 1)
    cmd = CreateUpload(order_id=order_id, filename=file.filename or "", data=data)
    return UploadCreated.of(await uploads.create_upload(deps, cmd, owner=user))


@router.get("/api/uploads/{upload_id}", responses=problem_responses(401, 404, 422))
async def get_upload(upload_id: UUID, user: CurrentUser, deps: Deps) -> UploadOut:
    return UploadOut.of(await uploads.get_upload(deps, str(upload_id), viewer=user))


@internal.get("/orders/{order_id}/tickets", responses=problem_responses(403, 422))
async def order_tickets(order_id: OrderId, deps: Deps) -> TicketRefs:
    """For booking's ``GET /api/orders/{id}``: the order's tickets (empty until they are issued)."""
    return TicketRefs.of(await reading.order_tickets(deps, order_id))


@internal.post("/orders/{order_id}/void", responses=problem_responses(403, 409, 422))
async def void_order(order_id: OrderId, body: VoidOrderIn, deps: Deps) -> VoidOrderOut:
    """Booking's refund fence, before it cancels a paid order: voids every ticket of the order (and any
    issued later) in one transaction, or answers 409 ``/ticket-used`` and changes nothing."""
    cmd = VoidOrder(order_id, body.user_id, body.kind, body.event_id, body.holder_name)
    return VoidOrderOut(order_id=order_id, voided=await issuing.void_order(deps, cmd))


@internal.get("/orders/{order_id}/audit", responses=problem_responses(403, 422))
async def order_audit(order_id: OrderId, deps: Deps) -> AuditOut:
    """For booking's ``GET /api/orders/{id}/history``: tickets' entries of the order, oldest first."""
    return AuditOut.of(await reading.order_history(deps, order_id))
