"""Payment rules, free of I/O: cards, payments and their states, the processor port and its simulator.

A payment moves ``authorizing -> authorized -> captured``, or ends ``declined`` or ``voided``; a captured
payment may end ``refunded`` (``TRANSITIONS``). Every processor call is idempotent by our payment id, so a
retry after a crash repeats a step instead of charging twice.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from boxoffice.platform.problems import Conflict, NotFound, Problem, ServiceUnavailable, Unprocessable


class PaymentStatus(StrEnum):
    AUTHORIZING = "authorizing"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    VOIDED = "voided"
    REFUNDED = "refunded"


FINAL = frozenset({PaymentStatus.CAPTURED, PaymentStatus.DECLINED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED})
"""States in which the attempt to pay has ended (a captured payment may still be refunded later)."""

TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.AUTHORIZING: frozenset({PaymentStatus.AUTHORIZED, PaymentStatus.DECLINED}),
    PaymentStatus.AUTHORIZED: frozenset({PaymentStatus.CAPTURED, PaymentStatus.VOIDED}),
    PaymentStatus.CAPTURED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.DECLINED: frozenset(),
    PaymentStatus.VOIDED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}


def can_move(frm: PaymentStatus, to: PaymentStatus) -> bool:
    return to in TRANSITIONS[frm]


def sources(to: PaymentStatus) -> frozenset[PaymentStatus]:
    """The states a payment may be in to move to ``to`` (the condition of the store's conditional update)."""
    return frozenset(frm for frm, targets in TRANSITIONS.items() if to in targets)


class PaymentDeclined(Problem):
    status, slug, title = 402, "payment-declined", "Payment declined"


class InvalidCard(Unprocessable):
    slug, title = "invalid-card", "Invalid card"


class HoldExpired(Conflict):
    slug, title = "hold-expired", "Hold expired"


class OrderNotPayable(Conflict):
    slug, title = "order-not-payable", "Order cannot be paid"


class OrderNotFound(NotFound):
    slug, title = "not-found", "Not found"

    def __init__(self, detail: str = "No such order.") -> None:
        super().__init__(detail)


class PaymentNotFound(NotFound):
    slug, title = "not-found", "Not found"

    def __init__(self, detail: str = "No such payment.") -> None:
        super().__init__(detail)


class StillProcessing(ServiceUnavailable):
    """The payment has not reached an end yet (booking could not be asked, or a concurrent request runs)."""


class IllegalTransition(Exception):
    """A bug, not a client's error: code asked for a move ``TRANSITIONS`` does not allow."""


@dataclass(frozen=True, slots=True)
class Card:
    number: str
    exp_month: int
    exp_year: int
    cvc: str

    @property
    def last4(self) -> str:
        return self.number[-4:]


def normalize_card_number(text: str) -> str:
    """What a customer types (``4242 4242-4242 4242``) as the digits a processor takes."""
    return text.replace(" ", "").replace("-", "")


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²" and "٤", which are no card's digits."""
    return text.isascii() and text.isdigit()


def check_card(card: Card, now: datetime) -> None:
    if not (_digits(card.number) and 12 <= len(card.number) <= 19 and luhn_ok(card.number)):
        raise InvalidCard("The card number is not valid.")
    if not (1 <= card.exp_month <= 12):
        raise InvalidCard("The expiry month must be 1 to 12.")
    if (card.exp_year, card.exp_month) < (now.year, now.month):
        raise InvalidCard("The card has expired.")
    if not (_digits(card.cvc) and len(card.cvc) in (3, 4)):
        raise InvalidCard("The CVC must be 3 or 4 digits.")


# Payments.
@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    order_id: str
    user_id: str
    idempotency_key: str
    """One payment per (customer, Idempotency-Key): a retry resumes it instead of charging again."""
    request_hash: str
    amount_minor: int
    currency: str
    status: PaymentStatus
    card_last4: str
    created_at: datetime
    updated_at: datetime
    authorization_id: str | None = None
    decline_code: str | None = None
    failure: str | None = None
    """Why an authorized payment was voided (booking's problem slug, e.g. ``hold-expired``)."""

    @property
    def authorization(self) -> str:
        """The processor's id of the authorization; only an authorized (or later) payment has one."""
        if self.authorization_id is None:
            raise IllegalTransition(f"payment {self.id} ({self.status}) has no authorization")
        return self.authorization_id

    def moved(
        self,
        to: PaymentStatus,
        *,
        at: datetime,
        authorization_id: str | None = None,
        decline_code: str | None = None,
        failure: str | None = None,
    ) -> Payment:
        """This payment after a move to ``to``; raises ``IllegalTransition`` for a move the rules forbid."""
        if not can_move(self.status, to):
            raise IllegalTransition(f"payment {self.id}: {self.status} -> {to}")
        return replace(
            self,
            status=to,
            updated_at=at,
            authorization_id=authorization_id or self.authorization_id,
            decline_code=decline_code or self.decline_code,
            failure=failure or self.failure,
        )


@dataclass(frozen=True, slots=True)
class BookingOrder:
    """What payments needs to know of booking's order (booking's ``GET /internal/orders/{id}``)."""

    id: str
    user_id: str
    status: str  # pending_payment | confirmed | expired | cancelled
    hold_id: str
    hold_version: int
    total: int
    currency: str

    @property
    def payable(self) -> bool:
        """Whether a new payment may start for it: it waits for one."""
        return self.status == "pending_payment"


def check_payable(order: BookingOrder) -> None:
    """A new payment may only start for an order waiting for one."""
    if not order.payable:
        raise not_payable(order)


def not_payable(order: BookingOrder) -> Problem:
    """Why no new payment may start for this order (it waits for none: expired, confirmed, cancelled)."""
    if order.status == "expired":
        return HoldExpired("The hold on these seats expired before payment; hold them again.")
    return OrderNotPayable(f"This order is {order.status}.")


@dataclass(frozen=True, slots=True)
class PayOrder:
    """The customer's request to pay an order with a card."""

    order_id: str
    card: Card
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """A paid order: ``status`` is always ``confirmed`` (every other end is an error)."""

    order_id: str
    payment_id: str
    status: str = "confirmed"


def decline_message(code: str | None) -> str:
    messages = {c: text for c, text in DECLINES.values()}
    return messages.get(code or "", "The payment was declined.")


def result_of(payment: Payment, *, order_confirmed: bool = False) -> PaymentResult:
    """What the customer is told about a payment as it stands: the paid order, or the error that ended it.

    ``order_confirmed``: booking confirmed the order for this payment, though the capture is still to come
    (the recovery worker finishes it); the customer has paid."""
    if payment.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED) or (
        order_confirmed and payment.status == PaymentStatus.AUTHORIZED
    ):
        return PaymentResult(order_id=payment.order_id, payment_id=payment.id)
    if payment.status == PaymentStatus.DECLINED:
        raise PaymentDeclined(
            decline_message(payment.decline_code), decline_code=payment.decline_code, payment_id=payment.id
        )
    if payment.status == PaymentStatus.VOIDED:
        if payment.failure == "hold-expired":
            raise HoldExpired(
                "The hold on these seats expired before payment; nothing was charged.", payment_id=payment.id
            )
        raise OrderNotPayable("This order could not be confirmed; nothing was charged.", payment_id=payment.id)
    raise StillProcessing("The payment is still being processed; retry with the same Idempotency-Key.")


# Refunds.
def refund_amount(payment: Payment) -> int:
    """What cancelling the order gives back for this payment: everything captured, and nothing for a payment
    that took no money (declined, voided, never finished) or already gave it back (refunded)."""
    return payment.amount_minor if payment.status == PaymentStatus.CAPTURED else 0


def refundable(payments: Sequence[Payment]) -> list[Payment]:
    """The payments of a cancelled order that must be refunded, each once."""
    seen: set[str] = set()
    due = []
    for payment in payments:
        if refund_amount(payment) > 0 and payment.id not in seen:
            seen.add(payment.id)
            due.append(payment)
    return due


# The processor.
@dataclass(frozen=True, slots=True)
class Authorization:
    approved: bool
    authorization_id: str | None = None
    decline_code: str | None = None
    message: str = ""


class CardProcessor(Protocol):
    """What boxoffice needs from a card processor; a real one (Stripe, Adyen) plugs in here."""

    async def authorize(self, *, payment_id: str, amount_minor: int, currency: str, card: Card) -> Authorization: ...

    async def capture(self, *, authorization_id: str, amount_minor: int) -> None: ...

    async def void(self, *, authorization_id: str) -> None: ...

    async def refund(self, *, authorization_id: str, amount_minor: int) -> None: ...


# The simulator's test cards (the same numbers Stripe's test mode uses).
DECLINES = {
    "4000000000000002": ("card_declined", "The card was declined."),
    "4000000000009995": ("insufficient_funds", "The card has insufficient funds."),
    "4000000000000069": ("expired_card", "The card has expired."),
}


class CardProcessorSimulator:
    """Approves every valid card but the test cards in DECLINES. Authorization ids are signed with a key, so
    the simulator recognises its own ids after a restart without keeping state; every call is idempotent."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def _sign(self, payment_id: str) -> str:
        return hmac.new(self.key, payment_id.encode(), hashlib.sha256).hexdigest()[:24]

    def _check(self, authorization_id: str) -> None:
        payment_id, _, signature = authorization_id.removeprefix("auth_").rpartition("_")
        if not hmac.compare_digest(signature, self._sign(payment_id)):
            raise ValueError(f"unknown authorization {authorization_id}")

    async def authorize(self, *, payment_id: str, amount_minor: int, currency: str, card: Card) -> Authorization:
        if card.number in DECLINES:
            code, message = DECLINES[card.number]
            return Authorization(approved=False, decline_code=code, message=message)
        return Authorization(approved=True, authorization_id=f"auth_{payment_id}_{self._sign(payment_id)}")

    async def capture(self, *, authorization_id: str, amount_minor: int) -> None:
        self._check(authorization_id)

    async def void(self, *, authorization_id: str) -> None:
        self._check(authorization_id)

    async def refund(self, *, authorization_id: str, amount_minor: int) -> None:
        self._check(authorization_id)
