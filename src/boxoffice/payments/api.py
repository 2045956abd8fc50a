"""Payments' HTTP API: paying for an order and reading one's payments (ARCHITECTURE.md section 5), and the
order's audit entries for booking (docs/contracts.md)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path

from boxoffice.payments import handlers
from boxoffice.payments.deps import PaymentsDeps
from boxoffice.payments.domain import Card, PayOrder, normalize_card_number
from boxoffice.payments.schemas import PaidOut, PaymentIn, PaymentOut
from boxoffice.platform.app import provide
from boxoffice.platform.audit import AuditOut
from boxoffice.platform.auth import CurrentUser, require_internal
from boxoffice.platform.problem_http import problem_responses

Deps = Annotated[PaymentsDeps, Depends(provide(PaymentsDeps))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

router = APIRouter(tags=["payments"])
internal = APIRouter(prefix="/internal", dependencies=[Depends(require_internal)], include_in_schema=False)


@router.post("/api/orders/{order_id}/payment", responses=problem_responses(401, 402, 404, 409, 422, 503))
async def pay_order(
    order_id: UUID, body: PaymentIn, user: CurrentUser, deps: Deps, idempotency_key: IdempotencyKey = None
) -> PaidOut:
    card = Card(normalize_card_number(body.card_number), body.exp_month, body.exp_year, body.cvc)
    cmd = PayOrder(order_id=str(order_id), card=card, idempotency_key=idempotency_key)
    return PaidOut.of(await handlers.pay_order(deps, cmd, actor=user))


@router.get("/api/payments/{payment_id}", responses=problem_responses(401, 404, 422))
async def get_payment(payment_id: UUID, user: CurrentUser, deps: Deps) -> PaymentOut:
    return PaymentOut.of(await handlers.get_payment(deps, str(payment_id), viewer=user))


@internal.get("/orders/{order_id}/audit", responses=problem_responses(403, 422))
async def order_audit(order_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")], deps: Deps) -> AuditOut:
    """For booking's ``GET /api/orders/{id}/history``: payments' entries of the order, oldest first."""
    return AuditOut.of(await handlers.order_history(deps, order_id))
