"""Payments' HTTP API: paying for an order, and reading one's payments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from boxoffice.payments import handlers, store
from boxoffice.payments.domain import Card
from boxoffice.payments.service import PaymentsService
from boxoffice.platform.app import running_service
from boxoffice.platform.auth import CurrentUser
from boxoffice.platform.problems import NotFound

Svc = Annotated[PaymentsService, Depends(running_service(PaymentsService))]


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_number: str = Field(min_length=12, max_length=23, description="test card 4242424242424242 succeeds")
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2100)
    cvc: str = Field(min_length=3, max_length=4)


router = APIRouter(tags=["payments"])


@router.post("/api/orders/{order_id}/payment")
async def pay_order(
    order_id: Annotated[str, Field(max_length=64)],
    body: PaymentIn,
    user: CurrentUser,
    svc: Svc,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> dict[str, Any]:
    card = Card(body.card_number.replace(" ", "").replace("-", ""), body.exp_month, body.exp_year, body.cvc)
    return await handlers.pay_order(svc, user, order_id, card, idempotency_key=idempotency_key)


@router.get("/api/payments/{payment_id}")
async def get_payment(payment_id: str, user: CurrentUser, svc: Svc) -> dict[str, Any]:
    async with svc.db.read() as conn:
        payment = await store.payment_row(conn, payment_id)
    if payment is None or (payment.user_id != user.id and not user.has_role("admin")):
        raise NotFound("No such payment.")
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "status": payment.status,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "card_last4": payment.card_last4,
        "decline_code": payment.decline_code,
        "created_at": payment.created_at,
    }
