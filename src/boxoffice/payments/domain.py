"""Payment rules, free of I/O: cards, the processor port, and the simulator that plays a processor.

A payment moves ``authorizing -> authorized -> captured``, or ends ``declined`` or ``voided``; a captured
payment may end ``refunded``. Every processor call is idempotent by our payment id, so a retry after a
crash repeats a step instead of charging twice.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from boxoffice.platform.problems import Conflict, Problem, Unprocessable


class PaymentStatus(StrEnum):
    AUTHORIZING = "authorizing"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    VOIDED = "voided"
    REFUNDED = "refunded"


FINAL = frozenset({PaymentStatus.CAPTURED, PaymentStatus.DECLINED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED})


class PaymentDeclined(Problem):
    status, slug, title = 402, "payment-declined", "Payment declined"


class InvalidCard(Unprocessable):
    slug, title = "invalid-card", "Invalid card"


class HoldExpired(Conflict):
    slug, title = "hold-expired", "Hold expired"


class OrderNotPayable(Conflict):
    slug, title = "order-not-payable", "Order cannot be paid"


@dataclass(frozen=True, slots=True)
class Card:
    number: str
    exp_month: int
    exp_year: int
    cvc: str

    @property
    def last4(self) -> str:
        return self.number[-4:]


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def check_card(card: Card, now: datetime) -> None:
    if not (card.number.isdigit() and 12 <= len(card.number) <= 19 and luhn_ok(card.number)):
        raise InvalidCard("The card number is not valid.")
    if not (1 <= card.exp_month <= 12):
        raise InvalidCard("The expiry month must be 1 to 12.")
    if (card.exp_year, card.exp_month) < (now.year, now.month):
        raise InvalidCard("The card has expired.")
    if not (card.cvc.isdigit() and len(card.cvc) in (3, 4)):
        raise InvalidCard("The CVC must be 3 or 4 digits.")


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
