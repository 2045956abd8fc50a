"""Identity rules, free of I/O: passwords, one-time codes, login throttling, refresh-token families."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Literal

from boxoffice.platform.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
OTP_DIGITS = 6


# Errors a client sees.
class EmailTaken(Conflict):
    slug, title = "email-taken", "E-mail already registered"


class WeakPassword(Unprocessable):
    slug, title = "weak-password", "Password too weak"


class InvalidCredentials(Unauthorized):
    slug, title = "invalid-credentials", "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("The e-mail or the password is wrong.")


class NotVerified(Forbidden):
    slug, title = "not-verified", "E-mail not verified"

    def __init__(self) -> None:
        super().__init__("Verify your e-mail address with the code we sent before logging in.")


class LoginThrottled(TooManyRequests):
    slug, title = "login-throttled", "Too many failed logins"


class InvalidCode(BadRequest):
    slug, title = "invalid-code", "Invalid code"


class CodeExpired(BadRequest):
    slug, title = "code-expired", "Code expired"


class CodeLocked(BadRequest):
    slug, title = "code-locked", "Too many wrong codes"


class ResendTooSoon(TooManyRequests):
    slug, title = "resend-too-soon", "Code sent recently"


class WrongPassword(Forbidden):
    slug, title = "wrong-password", "Wrong password"

    def __init__(self) -> None:
        super().__init__("The current password is wrong.")


class InvalidRefreshToken(Unauthorized):
    slug, title = "invalid-refresh-token", "Invalid refresh token"


class AccountGone(NotFound):
    """A valid token names an account that no longer exists."""


# What identity keeps and answers.
@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    password_hash: str
    roles: tuple[str, ...]
    verified: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One refresh token of a family (the chain of rotations from one login); only its hash is kept."""

    id: str
    family_id: str
    user_id: str
    token_hash: str
    expires_at: datetime
    used_at: datetime | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class QueuedMail:
    """An e-mail waiting in identity's mail outbox."""

    id: int
    recipient: str
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


# Commands: what a caller asks identity to do.
@dataclass(frozen=True, slots=True)
class RegisterUser:
    email: str
    password: str
    name: str


@dataclass(frozen=True, slots=True)
class VerifyEmail:
    email: str
    code: str


@dataclass(frozen=True, slots=True)
class LogIn:
    email: str
    password: str


@dataclass(frozen=True, slots=True)
class ResetPassword:
    """Set a new password with the code a "forgot password" e-mail carried."""

    email: str
    code: str
    password: str


@dataclass(frozen=True, slots=True)
class ChangePassword:
    current_password: str
    new_password: str


CodePurpose = Literal["verify", "reset"]
"""What a one-time code is for: a code of one purpose never works for the other."""


def with_role(roles: tuple[str, ...], role: str) -> tuple[str, ...]:
    """``roles`` plus ``role``, in order, once."""
    return tuple(dict.fromkeys([*roles, role]))


# Passwords.
@cache
def common_passwords() -> frozenset[str]:
    """The passwords people pick most (zxcvbn's list of ~30 000, from real leaks)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def password_problems(password: str, *, email: str, name: str) -> list[str]:
    """Reasons the password is refused; empty when it is acceptable."""
    reasons = []
    if len(password) < MIN_PASSWORD_LENGTH:
        reasons.append(f"it must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        reasons.append(f"it must have at most {MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if lowered in common_passwords():
        reasons.append("it is in a list of commonly used passwords")
    if lowered in {email.lower(), email.split("@")[0].lower(), name.lower()}:
        reasons.append("it must not be your e-mail address or your name")
    if len(set(password)) < 4:
        reasons.append("it repeats too few different characters")
    return reasons


def check_password(password: str, *, email: str, name: str) -> None:
    reasons = password_problems(password, email=email, name=name)
    if reasons:
        raise WeakPassword("Choose another password: " + "; ".join(reasons) + ".")


def normalize_email(email: str) -> str:
    return email.strip().lower()


# One-time codes: stored as a keyed hash, never in clear; a 6-digit code is only safe with a secret key.
def new_otp_code() -> str:
    return f"{secrets.randbelow(10**OTP_DIGITS):0{OTP_DIGITS}d}"


def otp_digest(secret: bytes, user_id: str, code: str, purpose: CodePurpose = "verify") -> str:
    subject = user_id if purpose == "verify" else f"{purpose}:{user_id}"
    return hmac.new(secret, f"{subject}:{code}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class OtpState:
    code_hash: str
    expires_at: datetime
    attempts: int
    sent_at: datetime


def check_otp(state: OtpState | None, *, digest: str, now: datetime, max_attempts: int) -> None:
    """Raise unless ``digest`` matches a live code whose attempt was already counted (``state.attempts``
    includes this one), so concurrent guesses can never check more than ``max_attempts`` codes."""
    if state is None:
        raise InvalidCode("No code is waiting for this address; ask for a new one.")
    if now >= state.expires_at:
        raise CodeExpired("This code has expired; ask for a new one.")
    if not hmac.compare_digest(state.code_hash, digest):
        left = max(0, max_attempts - state.attempts)
        raise InvalidCode(f"The code is wrong ({left} tries left).", tries_left=left)


def resend_wait(state: OtpState | None, *, now: datetime, interval: timedelta) -> int:
    """Seconds until another code may be sent (0 = now)."""
    if state is None:
        return 0
    wait = (state.sent_at + interval - now).total_seconds()
    return max(0, int(wait) + (1 if wait % 1 else 0))


# Login throttling: the ``max_failures``-th attempt in a row locks the account, each further one twice as long.
LOCKOUT_DOUBLINGS = 6


def lockout_steps(lockout: timedelta) -> tuple[timedelta, ...]:
    """How long the account waits after the ``max_failures + k``-th attempt in a row (the last for all later)."""
    return tuple(lockout * 2**k for k in range(LOCKOUT_DOUBLINGS + 1))


def seconds_locked(locked_until: datetime | None, now: datetime) -> int:
    if locked_until is None or locked_until <= now:
        return 0
    return int((locked_until - now).total_seconds()) + 1


# Refresh tokens: "<token id>.<secret>"; the database keeps only a hash of the secret.
def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def refresh_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_refresh_token(token: str) -> tuple[str, str]:
    token_id, sep, secret = token.partition(".")
    if not sep or not token_id or not secret or len(token) > 200:
        raise InvalidRefreshToken("The refresh token is malformed.")
    return token_id, secret


def check_refresh(token: RefreshToken | None, *, secret: str, now: datetime) -> RefreshToken:
    """The live token matching ``secret``; a used one is returned too (the caller revokes its family)."""
    if token is None or not hmac.compare_digest(token.token_hash, refresh_digest(secret)):
        raise InvalidRefreshToken("The refresh token is not valid.")
    if token.revoked or token.expires_at <= now:
        raise InvalidRefreshToken("The refresh token has expired or was revoked; log in again.")
    return token


def email_taken() -> EmailTaken:
    return EmailTaken("An account with this e-mail address already exists; log in or verify it.")
