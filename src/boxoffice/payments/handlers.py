"""Paying for an order: authorize, let booking confirm (fenced by hold id and version), then capture.

Every step is idempotent (the processor by our payment id, booking's confirmation by payment id, our state
changes are conditional), so a retried request or the recovery worker can repeat any step after a crash:
one Idempotency-Key never charges twice, a captured payment always belongs to a confirmed order, and a
confirmed order always ends with exactly one capture.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import IntegrityError

from boxoffice.payments import domain, store
from boxoffice.payments.domain import Card, PaymentStatus
from boxoffice.platform.auth import Principal
from boxoffice.platform.bus.envelope import Envelope, uuid7
from boxoffice.platform.bus.tables import claim_inbox
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.idempotency import IdempotencyMismatch, request_hash
from boxoffice.platform.metrics import counter
from boxoffice.platform.problems import NotFound, ServiceUnavailable

if TYPE_CHECKING:
    from boxoffice.payments.service import PaymentsService

log = structlog.get_logger("boxoffice.payments")
TOPIC = "payments"
PAYMENTS = counter("boxoffice_payments_total", "Payments by how they ended", ("status",))


async def _order(svc: PaymentsService, order_id: str) -> dict[str, Any] | None:
    response = await svc.clients.get("booking").get(f"/internal/orders/{order_id}")
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise ServiceUnavailable("Orders cannot be read right now; try again in a moment.")
    order: dict[str, Any] = response.json()
    return order


def _publish(uow: UnitOfWork, kind: str, payment: Any) -> None:
    uow.publish(
        TOPIC,
        f"payments.{kind}",
        key=payment.order_id,
        data={
            "payment_id": payment.id,
            "order_id": payment.order_id,
            "user_id": payment.user_id,
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
        },
    )


async def pay_order(
    svc: PaymentsService, user: Principal, order_id: str, card: Card, *, idempotency_key: str | None
) -> dict[str, Any]:
    domain.check_card(card, svc.now())
    key = idempotency_key or f"auto-{secrets.token_hex(16)}"
    body_hash = request_hash({"order_id": order_id, "card": card.number, "exp": [card.exp_month, card.exp_year]})
    order = await _order(svc, order_id)
    if order is None or order["user_id"] != user.id:
        raise NotFound("No such order.")
    async with svc.db.read() as conn:
        payment = await store.payment_by_key(conn, user.id, key)
    if payment is None:
        if order["status"] == "expired":
            raise domain.HoldExpired("The hold on these seats expired before payment; hold them again.")
        if order["status"] != "pending_payment":
            raise domain.OrderNotPayable(f"This order is {order['status']}.")
        payment = await _create(svc, user, order, card, key, body_hash)
    elif payment.request_hash != body_hash:
        raise IdempotencyMismatch("This Idempotency-Key was used for another payment.")
    return await _advance(svc, payment, order, card)


async def _create(
    svc: PaymentsService, user: Principal, order: dict[str, Any], card: Card, key: str, body_hash: str
) -> Any:
    now = svc.now()
    values = {
        "id": uuid7(),
        "order_id": order["id"],
        "user_id": user.id,
        "idempotency_key": key,
        "request_hash": body_hash,
        "amount_minor": order["total"],
        "currency": order["currency"],
        "status": PaymentStatus.AUTHORIZING,
        "card_last4": card.last4,
        "created_at": now,
        "updated_at": now,
    }
    try:
        async with svc.db.uow() as uow:
            await store.insert_payment(uow.conn, values)
            await uow.commit()
    except IntegrityError:
        # The same key raced us: continue with the payment it created.
        async with svc.db.read() as conn:
            return await store.payment_by_key(conn, user.id, key)
    return SimpleNamespace(**values, authorization_id=None, decline_code=None, failure=None)


async def _advance(svc: PaymentsService, payment: Any, order: dict[str, Any], card: Card | None) -> dict[str, Any]:
    """Take a payment from wherever it stands to its end; each step may be repeated safely."""
    if payment.status == PaymentStatus.AUTHORIZING:
        if card is None:  # only the customer's request has the card; without it the attempt is abandoned
            payment = await _finish(
                svc, payment, PaymentStatus.DECLINED, frm={PaymentStatus.AUTHORIZING}, decline_code="abandoned"
            )
            return _outcome(payment)
        auth = await svc.processor.authorize(
            payment_id=payment.id, amount_minor=payment.amount_minor, currency=payment.currency, card=card
        )
        if auth.approved:
            payment = await _finish(
                svc,
                payment,
                PaymentStatus.AUTHORIZED,
                frm={PaymentStatus.AUTHORIZING},
                authorization_id=auth.authorization_id,
            )
        else:
            payment = await _finish(
                svc, payment, PaymentStatus.DECLINED, frm={PaymentStatus.AUTHORIZING}, decline_code=auth.decline_code
            )
    if payment.status == PaymentStatus.AUTHORIZED:
        confirmed, payment = await _confirm_then_capture(svc, payment, order)
        if confirmed and payment.status == PaymentStatus.AUTHORIZED:
            # The order is confirmed and the money authorized; the capture is finished by the recovery worker.
            return {"order_id": payment.order_id, "status": "confirmed", "payment_id": payment.id}
    return _outcome(payment)


async def _confirm_then_capture(svc: PaymentsService, payment: Any, order: dict[str, Any]) -> tuple[bool, Any]:
    """(whether booking confirmed the order for this payment, the payment afterwards)."""
    response = await svc.clients.get("booking").post(
        f"/internal/orders/{payment.order_id}/confirm",
        json={"hold_id": order["hold_id"], "hold_version": order["hold_version"], "payment_id": payment.id},
        headers={"Idempotency-Key": payment.id},  # confirmation is idempotent by payment id: safe to retry
    )
    if response.status_code == 200:
        try:
            await svc.processor.capture(authorization_id=payment.authorization_id, amount_minor=payment.amount_minor)
        except Exception as exc:
            log.warning("capture failed; recovery will retry it", payment_id=payment.id, error=repr(exc))
            return True, payment
        return True, await _finish(svc, payment, PaymentStatus.CAPTURED, frm={PaymentStatus.AUTHORIZED})
    if response.status_code in (404, 409):
        reason = str(response.json().get("type", "")).rsplit("/", 1)[-1] or "not-confirmed"
        await svc.processor.void(authorization_id=payment.authorization_id)
        voided = await _finish(svc, payment, PaymentStatus.VOIDED, frm={PaymentStatus.AUTHORIZED}, failure=reason)
        return False, voided
    # Booking did not answer: the payment stays authorized; the retry or the recovery worker finishes it.
    raise ServiceUnavailable("The payment is authorized but the order could not be confirmed yet; retry.")


async def _finish(svc: PaymentsService, payment: Any, to: PaymentStatus, *, frm: set[str], **values: Any) -> Any:
    """Move the payment to ``to`` and return it as it now stands (as someone else left it, if they were
    first: the move is conditional)."""
    async with svc.db.uow() as uow:
        moved = await store.move(uow.conn, payment.id, frm=frm, to=to, now=svc.now(), **values)
        if moved:
            if to in (PaymentStatus.CAPTURED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED):
                _publish(uow, to.value, payment)
            await uow.commit()
    if not moved:
        async with svc.db.read() as conn:
            return await store.payment_row(conn, payment.id)
    PAYMENTS.labels(to.value).inc()
    fields = payment._asdict() if hasattr(payment, "_asdict") else dict(vars(payment))
    return SimpleNamespace(**{**fields, **values, "status": to})


def _outcome(payment: Any) -> dict[str, Any]:
    if payment.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
        return {"order_id": payment.order_id, "status": "confirmed", "payment_id": payment.id}
    if payment.status == PaymentStatus.DECLINED:
        messages = {code: text for code, text in domain.DECLINES.values()}
        raise domain.PaymentDeclined(
            messages.get(payment.decline_code or "", "The payment was declined."),
            decline_code=payment.decline_code,
            payment_id=payment.id,
        )
    if payment.status == PaymentStatus.VOIDED:
        if payment.failure == "hold-expired":
            raise domain.HoldExpired(
                "The hold on these seats expired before payment; nothing was charged.", payment_id=payment.id
            )
        raise domain.OrderNotPayable("This order could not be confirmed; nothing was charged.", payment_id=payment.id)
    raise ServiceUnavailable("The payment is still being processed; retry with the same Idempotency-Key.")


async def recover_stuck_payments(svc: PaymentsService, *, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Finish payments a crash left half-way: confirmed orders get their capture, the rest are voided."""
    async with svc.db.read() as conn:
        rows = await store.stuck(conn, svc.now() - older_than)
    for payment in rows:
        order = await _order(svc, payment.order_id)
        if order is None:
            continue
        try:
            await _advance(svc, payment, order, card=None)
        except Exception as exc:
            log.info("recovered payment", payment_id=payment.id, outcome=type(exc).__name__)
    return len(rows)


async def refund_cancelled_order(svc: PaymentsService, envelope: Envelope, group: str) -> None:
    """``ticket-bookings`` with status cancelled: refund what was captured for that order, once."""
    data = envelope.data
    if data.get("status") != "cancelled":
        return
    async with svc.db.read() as conn:
        captured = await store.captured_for_order(conn, str(data["order_id"]))
    for payment in captured:
        await svc.processor.refund(authorization_id=payment.authorization_id, amount_minor=payment.amount_minor)
    async with svc.db.uow() as uow:
        if not await claim_inbox(uow.conn, group, envelope.id):
            return
        for payment in captured:
            if await store.move(
                uow.conn, payment.id, frm={PaymentStatus.CAPTURED}, to=PaymentStatus.REFUNDED, now=svc.now()
            ):
                _publish(uow, "refunded", payment)
                PAYMENTS.labels("refunded").inc()
        await uow.commit()
