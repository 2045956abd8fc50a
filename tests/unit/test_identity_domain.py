from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxoffice.identity import domain

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SECRET = b"test-secret"


def state(code: str = "123456", *, attempts: int = 0, age: timedelta = timedelta(0)) -> domain.OtpState:
    return domain.OtpState(
        code_hash=domain.otp_digest(SECRET, "u1", code),
        expires_at=NOW - age + timedelta(minutes=10),
        attempts=attempts,
        sent_at=NOW - age,
    )


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 10"),
        ("password123", "commonly used"),
        ("Qwertyuiop", "commonly used"),
        ("aaaaaaaaaaaa", "different characters"),
        ("ann@example.com", "e-mail"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, reason: str) -> None:
    problems = domain.password_problems(password, email="ann@example.com", name="Ann")
    assert any(reason in p for p in problems), problems


def test_a_long_uncommon_password_is_accepted() -> None:
    assert domain.password_problems("blue-train-to-glasgow", email="ann@example.com", name="Ann") == []


def test_codes_are_six_digits() -> None:
    codes = {domain.new_otp_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150


def test_right_code_passes_wrong_code_says_tries_left() -> None:
    domain.check_otp(state(), digest=domain.otp_digest(SECRET, "u1", "123456"), now=NOW, max_attempts=5)
    with pytest.raises(domain.InvalidCode) as wrong:
        domain.check_otp(state(attempts=2), digest=domain.otp_digest(SECRET, "u1", "654321"), now=NOW, max_attempts=5)
    assert wrong.value.extra["tries_left"] == 3  # the attempt was counted before the check


def test_code_is_bound_to_its_user_and_secret() -> None:
    assert domain.otp_digest(SECRET, "u1", "123456") != domain.otp_digest(SECRET, "u2", "123456")
    assert domain.otp_digest(SECRET, "u1", "123456") != domain.otp_digest(b"other", "u1", "123456")


def test_a_sign_up_code_is_no_password_reset_code() -> None:
    assert domain.otp_digest(SECRET, "u1", "123456") != domain.otp_digest(SECRET, "u1", "123456", "reset")


def test_expired_and_missing_codes_fail_even_when_right() -> None:
    right = domain.otp_digest(SECRET, "u1", "123456")
    with pytest.raises(domain.CodeExpired):
        domain.check_otp(state(age=timedelta(minutes=10)), digest=right, now=NOW, max_attempts=5)
    with pytest.raises(domain.InvalidCode):
        domain.check_otp(None, digest=right, now=NOW, max_attempts=5)


@given(st.integers(min_value=0, max_value=120))
def test_resend_wait_is_never_negative_and_zero_after_the_interval(age_seconds: int) -> None:
    wait = domain.resend_wait(state(age=timedelta(seconds=age_seconds)), now=NOW, interval=timedelta(seconds=60))
    assert wait == max(0, 60 - age_seconds)


def test_lockout_starts_at_the_limit_and_doubles_up_to_a_cap() -> None:
    steps = domain.lockout_steps(timedelta(minutes=5))
    assert steps[0] == timedelta(minutes=5) and steps[1] == timedelta(minutes=10)
    assert all(later == 2 * earlier for earlier, later in itertools.pairwise(steps))
    assert steps[-1] == timedelta(minutes=5 * 64)


@pytest.mark.parametrize("token", ["", "abc", ".secret", "id.", "x" * 300])
def test_malformed_refresh_tokens(token: str) -> None:
    with pytest.raises(domain.InvalidRefreshToken):
        domain.split_refresh_token(token)


def refresh_token(secret: str = "s3cret", **changes: Any) -> domain.RefreshToken:
    token = domain.RefreshToken(
        id="t1", family_id="f1", user_id="u1", token_hash=domain.refresh_digest(secret),
        expires_at=NOW + timedelta(days=1), used_at=None, revoked=False,
    )
    return dataclasses.replace(token, **changes)


def test_a_live_refresh_token_with_its_secret_is_accepted_even_when_used() -> None:
    used = refresh_token(used_at=NOW)
    assert domain.check_refresh(used, secret="s3cret", now=NOW) is used  # the caller revokes the family


@pytest.mark.parametrize(
    ("token", "secret", "detail"),
    [
        (None, "s3cret", "not valid"),
        (refresh_token(), "guess", "not valid"),
        (refresh_token(revoked=True), "s3cret", "expired or was revoked"),
        (refresh_token(expires_at=NOW), "s3cret", "expired or was revoked"),
    ],
)
def test_unknown_wrong_revoked_or_expired_refresh_tokens_are_refused(
    token: domain.RefreshToken | None, secret: str, detail: str
) -> None:
    with pytest.raises(domain.InvalidRefreshToken, match=detail):
        domain.check_refresh(token, secret=secret, now=NOW)


@given(st.lists(st.sampled_from(["customer", "admin", "operator"]), max_size=5))
def test_adding_a_role_keeps_order_and_holds_each_role_once(roles: list[str]) -> None:
    granted = domain.with_role(tuple(roles), "admin")
    assert granted[-1] == "admin" or "admin" in roles
    assert len(set(granted)) == len(granted) and set(granted) == {*roles, "admin"}
