"""Payment rules without I/O: card numbers (Luhn), expiry, the state machine, what the customer is told, and
refunds; properties with Hypothesis where the rule is an invariant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxoffice.payments import domain
from boxoffice.payments.domain import (
    Card,
    CardProcessorSimulator,
    IllegalTransition,
    Payment,
    PaymentResult,
    PaymentStatus,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
S = PaymentStatus


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass Luhn (computed independently of ``luhn_ok``)."""
    total = 0
    for i, d in enumerate(reversed(body)):
        n = int(d)
        if i % 2 == 0:  # doubled once the check digit is appended
            n = n * 2 - 9 if n * 2 > 9 else n * 2
        total += n
    return str((10 - total % 10) % 10)


def payment(status: PaymentStatus = S.AUTHORIZING, amount: int = 4500, **changes: object) -> Payment:
    values: dict[str, object] = {
        "id": "p1",
        "order_id": "o1",
        "user_id": "u1",
        "idempotency_key": "k1",
        "request_hash": "h",
        "amount_minor": amount,
        "currency": "EUR",
        "status": status,
        "card_last4": "4242",
        "created_at": NOW,
        "updated_at": NOW,
        **changes,
    }
    return Payment(**values)  # type: ignore[arg-type]


# Cards.
@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("4242424242424242", True),
        ("4000000000000002", True),
        ("5555555555554444", True),
        ("378282246310005", True),
        ("4242424242424241", False),
        ("1234567812345678", False),
    ],
)
def test_luhn_on_known_numbers(number: str, ok: bool) -> None:
    assert domain.luhn_ok(number) is ok


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_the_right_check_digit_passes_and_every_other_fails(body: str) -> None:
    right = luhn_check_digit(body)
    assert domain.luhn_ok(body + right)
    assert not any(domain.luhn_ok(body + d) for d in "0123456789" if d != right)


@given(st.text(alphabet="0123456789", min_size=12, max_size=19), st.integers(0, 18), st.integers(1, 9))
def test_changing_one_digit_of_a_valid_number_is_always_caught(body: str, position: int, delta: int) -> None:
    number = body[:-1] + luhn_check_digit(body[:-1])
    position %= len(number)
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    assert not domain.luhn_ok(changed)


def test_what_customers_type_is_normalized() -> None:
    assert domain.normalize_card_number("4242 4242-4242 4242") == "4242424242424242"


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        (Card("4242424242424241", 12, 2030, "123"), "not valid"),
        (Card("42424242424", 12, 2030, "123"), "not valid"),  # 11 digits
        (Card("4242x24242424242", 12, 2030, "123"), "not valid"),
        (Card("4242424242424242", 13, 2030, "123"), "month"),
        (Card("4242424242424242", 10, 2026, "123"), "expired"),
        (Card("4242424242424242", 12, 2025, "123"), "expired"),
        (Card("4242424242424242", 12, 2030, "12"), "CVC"),
        (Card("4242424242424242", 12, 2030, "12a"), "CVC"),
        (Card("424242424242424²", 12, 2030, "123"), "not valid"),  # str.isdigit() says yes; int() fails
        (Card("٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", 12, 2030, "123"), "not valid"),  # Arabic-Indic digits
        (Card("4242424242424242", 12, 2030, "\uff11\uff12\uff13"), "CVC"),  # fullwidth digits
    ],
)
def test_invalid_cards_are_refused_with_a_reason(card: Card, reason: str) -> None:
    with pytest.raises(domain.InvalidCard, match=reason):
        domain.check_card(card, NOW)


@given(st.text(max_size=25), st.integers(-5, 20), st.integers(1990, 2110), st.text(max_size=5))
def test_any_card_is_accepted_or_refused_as_invalid_never_crashes(number: str, month: int, year: int, cvc: str) -> None:
    try:
        domain.check_card(Card(number, month, year, cvc), NOW)
    except domain.InvalidCard:
        return
    assert number.isascii() and number.isdigit() and domain.luhn_ok(number) and 1 <= month <= 12


@given(st.integers(2000, 2100), st.integers(1, 12))
def test_a_card_is_valid_through_the_last_day_of_its_expiry_month(year: int, month: int) -> None:
    card = Card("4242424242424242", month, year, "123")
    if (year, month) >= (NOW.year, NOW.month):
        domain.check_card(card, NOW)
    else:
        with pytest.raises(domain.InvalidCard, match="expired"):
            domain.check_card(card, NOW)


def test_the_card_in_its_expiry_month_is_valid_on_the_last_day() -> None:
    domain.check_card(Card("4242424242424242", 11, 2026, "1234"), datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    with pytest.raises(domain.InvalidCard):
        domain.check_card(Card("4242424242424242", 11, 2026, "1234"), datetime(2026, 12, 1, tzinfo=UTC))


# The state machine.
def test_the_allowed_moves() -> None:
    allowed = {(a, b) for a in S for b in S if domain.can_move(a, b)}
    assert allowed == {
        (S.AUTHORIZING, S.AUTHORIZED),
        (S.AUTHORIZING, S.DECLINED),
        (S.AUTHORIZED, S.CAPTURED),
        (S.AUTHORIZED, S.VOIDED),
        (S.CAPTURED, S.REFUNDED),
    }
    assert domain.sources(S.CAPTURED) == {S.AUTHORIZED}
    assert domain.sources(S.AUTHORIZING) == frozenset()


@given(st.lists(st.sampled_from(list(S)), max_size=12))
def test_any_sequence_of_moves_keeps_the_money_rules(targets: list[PaymentStatus]) -> None:
    """Whatever is asked, in whatever order: money is captured only after an authorization, refunded only
    after a capture, at most once each, and nothing leaves a final state but captured -> refunded."""
    current = payment()
    history = [current.status]
    for to in targets:
        try:
            current = current.moved(to, at=NOW, authorization_id="auth_1" if to == S.AUTHORIZED else None)
        except IllegalTransition:
            assert not domain.can_move(history[-1], to)
            continue
        history.append(current.status)
    assert history.count(S.CAPTURED) <= 1 and history.count(S.REFUNDED) <= 1
    if S.CAPTURED in history:
        assert history.index(S.AUTHORIZED) < history.index(S.CAPTURED)
    if S.REFUNDED in history:
        assert history.index(S.CAPTURED) < history.index(S.REFUNDED)
    assert not ({S.DECLINED, S.VOIDED} & set(history[:-1]))  # those end a payment
    assert (S.DECLINED in history) + (S.AUTHORIZED in history) <= 1


def test_a_move_keeps_what_was_recorded_before() -> None:
    authorized = payment().moved(S.AUTHORIZED, at=NOW, authorization_id="auth_1")
    voided = authorized.moved(S.VOIDED, at=NOW, failure="hold-expired")
    assert (voided.status, voided.authorization_id, voided.failure) == (S.VOIDED, "auth_1", "hold-expired")
    with pytest.raises(IllegalTransition):
        payment().authorization  # noqa: B018 - nothing authorized, nothing to capture or void


# What the customer is told.
def test_results_of_each_end() -> None:
    paid = PaymentResult(order_id="o1", payment_id="p1")
    assert domain.result_of(payment(S.CAPTURED)) == paid
    assert domain.result_of(payment(S.REFUNDED)) == paid
    assert domain.result_of(payment(S.AUTHORIZED), order_confirmed=True) == paid
    with pytest.raises(domain.StillProcessing):
        domain.result_of(payment(S.AUTHORIZED))
    with pytest.raises(domain.StillProcessing):
        domain.result_of(payment(S.AUTHORIZING))
    with pytest.raises(domain.PaymentDeclined) as declined:
        domain.result_of(payment(S.DECLINED, decline_code="insufficient_funds"))
    assert declined.value.status == 402 and declined.value.extra["decline_code"] == "insufficient_funds"
    assert "insufficient funds" in declined.value.detail
    with pytest.raises(domain.HoldExpired):
        domain.result_of(payment(S.VOIDED, failure="hold-expired"))
    with pytest.raises(domain.OrderNotPayable):
        domain.result_of(payment(S.VOIDED, failure="order-not-payable"))


def test_only_an_order_waiting_for_payment_is_payable() -> None:
    order = domain.BookingOrder("o1", "u1", "pending_payment", "h1", 1, 4500, "EUR")
    domain.check_payable(order)
    with pytest.raises(domain.HoldExpired):
        domain.check_payable(domain.BookingOrder("o1", "u1", "expired", "h1", 1, 4500, "EUR"))
    for status in ("confirmed", "cancelled"):
        with pytest.raises(domain.OrderNotPayable, match=status):
            domain.check_payable(domain.BookingOrder("o1", "u1", status, "h1", 1, 4500, "EUR"))


# Refunds.
@given(st.lists(st.tuples(st.sampled_from(list(S)), st.integers(0, 10**7), st.sampled_from("abc")), max_size=10))
def test_a_cancellation_refunds_exactly_what_was_captured_once(rows: list[tuple[PaymentStatus, int, str]]) -> None:
    payments = [payment(status, amount, id=pid) for status, amount, pid in rows]
    due = domain.refundable(payments)
    assert all(p.status == S.CAPTURED for p in due)
    assert len({p.id for p in due}) == len(due)
    first_captured = {p.id: p for p in reversed(payments) if p.status == S.CAPTURED and p.amount_minor > 0}
    assert {p.id for p in due} == set(first_captured)
    assert sum(domain.refund_amount(p) for p in due) <= sum(p.amount_minor for p in payments if p.status == S.CAPTURED)
    refunded = [p.moved(S.REFUNDED, at=NOW) for p in due]
    assert domain.refundable(refunded) == []  # a second cancellation event refunds nothing


def test_refund_amounts() -> None:
    assert domain.refund_amount(payment(S.CAPTURED, 9000)) == 9000
    for status in (S.AUTHORIZING, S.AUTHORIZED, S.DECLINED, S.VOIDED, S.REFUNDED):
        assert domain.refund_amount(payment(status, 9000)) == 0


# The simulator.
async def test_the_simulator_declines_its_test_cards_and_recognises_its_own_authorizations() -> None:
    processor = CardProcessorSimulator(b"k" * 32)
    card = Card("4242424242424242", 12, 2030, "123")
    auth = await processor.authorize(payment_id="p1", amount_minor=100, currency="EUR", card=card)
    assert auth.approved and auth.authorization_id
    await processor.capture(authorization_id=auth.authorization_id, amount_minor=100)
    declined = await processor.authorize(
        payment_id="p2", amount_minor=100, currency="EUR", card=Card("4000000000000002", 12, 2030, "123")
    )
    assert not declined.approved and declined.decline_code == "card_declined"
    with pytest.raises(ValueError, match="unknown authorization"):
        await CardProcessorSimulator(b"x" * 32).capture(authorization_id=auth.authorization_id, amount_minor=100)
