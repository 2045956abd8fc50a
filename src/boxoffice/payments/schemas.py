"""Payments' request and response models (the public shapes are ARCHITECTURE.md section 5)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from boxoffice.payments.domain import Payment, PaymentResult
from boxoffice.platform.requests import RequestBody


class PaymentIn(RequestBody):
    card_number: str = Field(min_length=12, max_length=23, description="test card 4242424242424242 succeeds")
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2100)
    cvc: str = Field(min_length=3, max_length=4)


class PaidOut(BaseModel):
    """The order is paid and confirmed."""

    order_id: str
    status: str = Field(description="always `confirmed`; every other end is a problem")
    payment_id: str

    @classmethod
    def of(cls, result: PaymentResult) -> PaidOut:
        return cls(order_id=result.order_id, status=result.status, payment_id=result.payment_id)


class PaymentOut(BaseModel):
    id: str
    order_id: str
    status: str = Field(description="authorizing | authorized | captured | declined | voided | refunded")
    amount_minor: int
    currency: str
    card_last4: str
    decline_code: str | None
    created_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        return cls(
            id=payment.id,
            order_id=payment.order_id,
            status=payment.status.value,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            card_last4=payment.card_last4,
            decline_code=payment.decline_code,
            created_at=payment.created_at,
        )
