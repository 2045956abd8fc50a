"""Tickets' HTTP API (ARCHITECTURE.md section 5) and its internal endpoint (docs/contracts.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from boxoffice.platform.app import running_service
from boxoffice.platform.auth import CurrentUser, Principal, require_internal, require_role
from boxoffice.tickets import domain, handlers
from boxoffice.tickets.service import TicketsService

Svc = Annotated[TicketsService, Depends(running_service(TicketsService))]
Gate = Annotated[Principal, Depends(require_role("admin", "staff"))]


class CheckInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=domain.MAX_CODE_LENGTH)


class CheckInOut(BaseModel):
    ticket_id: str
    status: str


class TicketRef(BaseModel):
    """A ticket as an order shows it (``GET /api/orders/{id}``'s ``tickets``)."""

    id: str
    status: str
    code: str
    pdf_url: str | None


class TicketRefs(BaseModel):
    items: list[TicketRef]


class TicketOut(TicketRef):
    order_id: str
    kind: str
    event_id: str
    seat_id: str | None
    label: str
    section: str | None
    holder_name: str


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None


class UploadCreated(BaseModel):
    id: str
    status: str
    size: int
    content_type: str


class UploadOut(BaseModel):
    id: str
    status: str
    receipt_key: str | None
    order_id: str
    content_type: str
    size: int


def _ref(row: Any) -> TicketRef:
    return TicketRef(id=row.id, status=row.status, code=row.code, pdf_url=handlers.pdf_url(row))


def _ticket(row: Any) -> TicketOut:
    return TicketOut(
        **_ref(row).model_dump(),
        order_id=row.order_id,
        kind=row.kind,
        event_id=row.subject_id,
        seat_id=row.seat_id,
        label=row.label,
        section=row.section,
        holder_name=row.holder_name,
    )


router = APIRouter(tags=["tickets"])


@router.get("/api/tickets/keys")
async def ticket_keys(svc: Svc, response: Response) -> dict[str, Any]:
    """The public keys that verify ticket codes (JWKS), for gates that check codes offline."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return svc.keyring().jwks()


@router.get("/api/tickets", response_model=TicketPage)
async def list_my_tickets(
    user: CurrentUser,
    svc: Svc,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    rows = await handlers.my_tickets(svc, user, order_id=order_id, cursor=cursor, limit=limit + 1)
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return TicketPage(items=[_ticket(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.get("/api/tickets/{ticket_id}/pdf", response_class=Response)
async def ticket_pdf(ticket_id: str, user: CurrentUser, svc: Svc) -> Response:
    pdf = await handlers.ticket_pdf(svc, ticket_id, user)
    headers = {"Content-Disposition": f'inline; filename="ticket-{ticket_id}.pdf"', "Cache-Control": "private"}
    return Response(pdf, media_type="application/pdf", headers=headers)


@router.post("/api/checkin", response_model=CheckInOut)
async def check_in(body: CheckInIn, gate: Gate, svc: Svc) -> Any:
    ticket_id = await handlers.check_in(svc, code=body.code, by=gate)
    return CheckInOut(ticket_id=ticket_id, status="admitted")


@router.post("/api/uploads", status_code=201, response_model=UploadCreated)
async def create_upload(
    user: CurrentUser,
    svc: Svc,
    file: Annotated[UploadFile, File(description="the ID proof: PDF, PNG or JPEG, at most 5 MB")],
    order_id: Annotated[str, Form(min_length=1, max_length=64)],
) -> Any:
    # Read one byte past the limit, never the whole of an oversized part (it is spooled to disk meanwhile;
    # the platform's body limit already stopped anything much larger before it was parsed).
    data = await file.read(svc.config.max_upload_bytes + 1)
    row = await handlers.create_upload(svc, user, order_id=order_id, filename=file.filename or "", data=data)
    return UploadCreated(id=row.id, status=row.status, size=row.size, content_type=row.content_type)


@router.get("/api/uploads/{upload_id}", response_model=UploadOut)
async def get_upload(upload_id: str, user: CurrentUser, svc: Svc) -> Any:
    row = await handlers.get_upload(svc, upload_id, user)
    return UploadOut(
        id=row.id,
        status=row.status,
        receipt_key=row.receipt_key,
        order_id=row.order_id,
        content_type=row.content_type,
        size=row.size,
    )


@router.get(
    "/internal/orders/{order_id}/tickets",
    response_model=TicketRefs,
    dependencies=[Depends(require_internal)],
    include_in_schema=False,
)
async def order_tickets(order_id: str, svc: Svc) -> Any:
    """For booking's ``GET /api/orders/{id}``: the order's tickets (empty until they are issued)."""
    return TicketRefs(items=[_ref(r) for r in await handlers.order_tickets(svc, order_id)])
