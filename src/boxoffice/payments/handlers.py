"""Paying for an order: authorize, let booking confirm (fenced by hold id and version), then capture.

Every step is idempotent (the processor by our payment id, booking's confirmation by payment id, our state
changes are conditional), so a retried request or the recovery worker can repeat any step after a crash:
one Idempotency-Key never charges twice, a captured payment always belongs to a confirmed order, and a
confirmed order always ends with exactly one capture. Every state change commits with its audit entry and,
for captured, voided and refunded, its event.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.payments import domain, store
from boxoffice.payments.clients import Confirmed
from boxoffice.payments.deps import PaymentsDeps
from boxoffice.payments.domain import BookingOrder, Card, Payment, PaymentResult, PaymentStatus, PayOrder
from boxoffice.platform import audit
from boxoffice.platform.audit import SYSTEM, AuditEntry
from boxoffice.platform.auth import Principal
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.bus.tables import claim_inbox
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.idempotency import IdempotencyMismatch, mark_replayed, request_hash
from boxoffice.platform.metrics import counter

log = structlog.get_logger("boxoffice.payments")
TOPIC = "payments"
PUBLISHED = frozenset({PaymentStatus.CAPTURED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED})
PAYMENTS = counter("boxoffice_payments_total", "Payments by how they ended", ("status",))


# Paying.
async def pay_order(deps: PaymentsDeps, cmd: PayOrder, *, actor: Principal) -> PaymentResult:
    domain.check_card(cmd.card, deps.now())
    key = cmd.idempotency_key or f"auto-{secrets.token_hex(16)}"
    card = cmd.card
    body_hash = request_hash({"order_id": cmd.order_id, "card": card.number, "exp": [card.exp_month, card.exp_year]})
    order = await deps.orders.get(cmd.order_id)
    if order is None or order.user_id != actor.id:
        raise domain.OrderNotFound()
    if order.payable:
        # Inserted at once: the unique index finds the payment a retry with this key started (no read first).
        payment, started = await _start(deps, actor, order, card, key, body_hash)
    else:
        async with deps.db.read() as conn:
            found = await store.payment_by_key(conn, actor.id, key)
        if found is None:
            raise domain.not_payable(order)
        payment, started = found, False
    if not started:
        if payment.request_hash != body_hash:
            raise IdempotencyMismatch("This Idempotency-Key was used for another payment.")
        mark_replayed()  # the same key and body: the answer says it is a replay (Idempotent-Replayed: true)
    return await _advance(deps, payment, order, card, actor=actor.id)


async def _start(
    deps: PaymentsDeps, actor: Principal, order: BookingOrder, card: Card, key: str, body_hash: str
) -> tuple[Payment, bool]:
    """(the payment of this key, whether this call started it): a new one, or the one the key has."""
    now = deps.now()
    payment = Payment(
        id=uuid7(),
        order_id=order.id,
        user_id=actor.id,
        idempotency_key=key,
        request_hash=body_hash,
        amount_minor=order.total,
        currency=order.currency,
        status=PaymentStatus.AUTHORIZING,
        card_last4=card.last4,
        created_at=now,
        updated_at=now,
    )
    async with deps.db.uow() as uow:
        if started := await store.insert_payment(uow.conn, payment):
            detail: dict[str, str | int | None] = {
                "amount_minor": payment.amount_minor,
                "currency": payment.currency,
                "card_last4": card.last4,
            }
            await _audit(uow.conn, payment, "payment.started", actor.id, detail)
            await uow.commit()
    if started:
        return payment, True
    async with deps.db.read() as conn:
        existing = await store.payment_by_key(conn, actor.id, key)
    if existing is None:  # the key's payment was there a moment ago: it cannot go away, but never guess
        raise domain.StillProcessing("The payment is being started; retry with the same Idempotency-Key.")
    return existing, False


async def _advance(
    deps: PaymentsDeps, payment: Payment, order: BookingOrder, card: Card | None, *, actor: str
) -> PaymentResult:
    """Take a payment from wherever it stands to its end; each step may be repeated safely."""
    if payment.status == PaymentStatus.AUTHORIZING:
        if card is None:  # only the customer's request has the card; without it the attempt is abandoned
            payment = await _move(deps, payment, PaymentStatus.DECLINED, actor=actor, decline_code="abandoned")
            return domain.result_of(payment)
        auth = await deps.processor.authorize(
            payment_id=payment.id, amount_minor=payment.amount_minor, currency=payment.currency, card=card
        )
        if auth.approved:
            payment = await _move(
                deps, payment, PaymentStatus.AUTHORIZED, actor=actor, authorization_id=auth.authorization_id
            )
        else:
            payment = await _move(deps, payment, PaymentStatus.DECLINED, actor=actor, decline_code=auth.decline_code)
    if payment.status == PaymentStatus.AUTHORIZED:
        confirmed, payment = await _confirm_then_capture(deps, payment, order, actor=actor)
        return domain.result_of(payment, order_confirmed=confirmed)
    return domain.result_of(payment)


async def _confirm_then_capture(
    deps: PaymentsDeps, payment: Payment, order: BookingOrder, *, actor: str
) -> tuple[bool, Payment]:
    """(whether booking confirmed the order for this payment, the payment afterwards). Raises
    ``ServiceUnavailable`` when booking did not answer: the payment stays authorized for a retry or the
    recovery worker."""
    confirmation = await deps.orders.confirm(order, payment_id=payment.id)
    if isinstance(confirmation, Confirmed):
        try:
            await deps.processor.capture(authorization_id=payment.authorization, amount_minor=payment.amount_minor)
        except Exception as exc:
            log.warning("capture failed; recovery will retry it", payment_id=payment.id, error=repr(exc))
            return True, payment
        return True, await _move(deps, payment, PaymentStatus.CAPTURED, actor=actor)
    await deps.processor.void(authorization_id=payment.authorization)
    voided = await _move(deps, payment, PaymentStatus.VOIDED, actor=actor, failure=confirmation.reason[:40])
    return False, voided


async def _move(
    deps: PaymentsDeps,
    payment: Payment,
    to: PaymentStatus,
    *,
    actor: str,
    authorization_id: str | None = None,
    decline_code: str | None = None,
    failure: str | None = None,
) -> Payment:
    """Move the payment to ``to`` and return it as it now stands (as someone else left it, if they were
    first: the move is conditional)."""
    moved = payment.moved(
        to, at=deps.now(), authorization_id=authorization_id, decline_code=decline_code, failure=failure
    )
    async with deps.db.uow() as uow:
        done = await _record_move(uow, moved, actor=actor)
        if done:
            await uow.commit()
    if not done:
        async with deps.db.read() as conn:
            current = await store.payment_row(conn, payment.id)
        if current is None:
            raise domain.PaymentNotFound()
        return current
    PAYMENTS.labels(to.value).inc()
    return moved


async def _record_move(uow: UnitOfWork, moved: Payment, *, actor: str) -> bool:
    """The conditional update, its audit entry and its event, in the caller's transaction."""
    if not await store.move(uow.conn, moved, frm=domain.sources(moved.status)):
        return False
    detail: dict[str, str | int | None] = {}
    if moved.status == PaymentStatus.DECLINED:
        detail = {"decline_code": moved.decline_code}
    elif moved.status == PaymentStatus.VOIDED:
        detail = {"reason": moved.failure}
    elif moved.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
        detail = {"amount_minor": moved.amount_minor, "currency": moved.currency}
    await _audit(uow.conn, moved, f"payment.{moved.status.value}", actor, detail)
    if moved.status in PUBLISHED:
        uow.publish(
            TOPIC,
            f"payments.{moved.status.value}",
            key=moved.order_id,
            data={
                "payment_id": moved.id,
                "order_id": moved.order_id,
                "user_id": moved.user_id,
                "amount_minor": moved.amount_minor,
                "currency": moved.currency,
            },
        )
    return True


async def _audit(
    conn: AsyncConnection, payment: Payment, action: str, actor: str, detail: Mapping[str, str | int | None]
) -> None:
    await audit.record(
        conn,
        entity="payment",
        entity_id=payment.id,
        action=action,
        actor=actor,
        at=payment.updated_at,
        order_id=payment.order_id,
        detail=detail,
    )


# Background work.
async def recover_stuck_payments(deps: PaymentsDeps, *, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Finish payments a crash left half-way: confirmed orders get their capture, the rest are voided."""
    async with deps.db.read() as conn:
        payments = await store.stuck(conn, deps.now() - older_than)
    for payment in payments:
        order = await deps.orders.get(payment.order_id)
        if order is None:
            continue
        try:
            await _advance(deps, payment, order, card=None, actor=SYSTEM)
        except Exception as exc:
            log.info("recovered payment", payment_id=payment.id, outcome=type(exc).__name__)
    return len(payments)


async def refund_cancelled_order(deps: PaymentsDeps, order_id: str, *, inbox: tuple[str, str]) -> int:
    """Booking cancelled a paid order: refund what was captured for it, once. ``inbox``: (consumer group,
    event id) of the cancellation. Returns how many payments were refunded."""
    async with deps.db.read() as conn:
        due = domain.refundable(await store.captured_for_order(conn, order_id))
    for payment in due:  # idempotent by authorization: a redelivered cancellation refunds nothing twice
        await deps.processor.refund(authorization_id=payment.authorization, amount_minor=domain.refund_amount(payment))
    refunded = 0
    async with deps.db.uow() as uow:
        if not await claim_inbox(uow.conn, *inbox):
            return 0
        for payment in due:
            if await _record_move(uow, payment.moved(PaymentStatus.REFUNDED, at=deps.now()), actor=SYSTEM):
                refunded += 1
        await uow.commit()
    PAYMENTS.labels(PaymentStatus.REFUNDED.value).inc(refunded)
    return refunded


# Reading.
async def get_payment(deps: PaymentsDeps, payment_id: str, *, viewer: Principal) -> Payment:
    """A payment, for the customer who made it or an admin."""
    async with deps.db.read() as conn:
        payment = await store.payment_row(conn, payment_id)
    if payment is None or (payment.user_id != viewer.id and not viewer.has_role("admin")):
        raise domain.PaymentNotFound()
    return payment


async def order_history(deps: PaymentsDeps, order_id: str) -> list[AuditEntry]:
    """Payments' audit entries of one order, oldest first (booking merges them into the order's history)."""
    async with deps.db.read() as conn:
        return await audit.order_history(conn, order_id)
