"""Identity's use cases: register, verify, resend, log in, refresh, log out; the admin; the mail sender.

Each handler validates outside the transaction, checks and writes inside one unit of work, and leaves the
side effects (e-mail, events) to outboxes that commit with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from datetime import timedelta

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.identity import domain, store
from boxoffice.identity.deps import IdentityDeps
from boxoffice.identity.domain import (
    ChangePassword,
    LogIn,
    RefreshToken,
    RegisterUser,
    ResetPassword,
    TokenPair,
    User,
    VerifyEmail,
)
from boxoffice.identity.keys import KeyRing
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.db import UnitOfWork
from boxoffice.platform.keys import load_or_create_keys
from boxoffice.platform.metrics import counter

log = structlog.get_logger("boxoffice.identity")

USERS_TOPIC = "identity.users"
REGISTERED = counter("boxoffice_users_registered_total", "Accounts registered")
VERIFIED = counter("boxoffice_users_verified_total", "Accounts that verified their e-mail")
LOGINS = counter("boxoffice_logins_total", "Login attempts", ("outcome",))

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so a login takes as long whether or not the account exists.
    Made on first need (in the login's thread), not at import: hashing takes ~150 ms of CPU, which every
    boxoffice process paid at start, also those that never see a login (workers, the other services)."""
    return _hasher.hash("boxoffice-dummy-password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)  # ~50 ms of CPU: keep it off the event loop


async def password_matches(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def _otp_mail(name: str, code: str, minutes: int) -> tuple[str, str]:
    subject = f"Your boxoffice code: {code}"
    body = (
        f"Hello {name},\n\nyour boxoffice verification code is {code}.\n"
        f"It is valid for {minutes} minutes. If you did not ask for it, ignore this message.\n"
    )
    return subject, body


def _reset_mail(name: str, code: str, minutes: int) -> tuple[str, str]:
    subject = f"Reset your boxoffice password: {code}"
    body = (
        f"Hello {name},\n\nsomeone (we hope you) asked to reset the password of your boxoffice account.\n"
        f"Your code is {code}; it is valid for {minutes} minutes. Setting a new password logs out every\n"
        "device that is signed in. If you did not ask for it, ignore this message: your password stays.\n"
    )
    return subject, body


async def _send_new_code(
    deps: IdentityDeps, conn: AsyncConnection, user: User, purpose: domain.CodePurpose = "verify"
) -> None:
    now = deps.now()
    code = domain.new_otp_code()
    ttl = deps.config.otp_ttl_seconds
    await store.replace_otp(
        conn,
        user.id,
        code_hash=domain.otp_digest(deps.secret, user.id, code, purpose),
        expires_at=now + timedelta(seconds=ttl),
        now=now,
        purpose=purpose,
    )
    subject, body = (_otp_mail if purpose == "verify" else _reset_mail)(user.name, code, ttl // 60)
    await store.queue_mail(conn, recipient=user.email, subject=subject, body=body, now=now)


async def _use_code(
    deps: IdentityDeps, uow: UnitOfWork, user: User | None, code: str, purpose: domain.CodePurpose
) -> User:
    """Count a try of ``code`` (committed even when it is wrong), then check it; the user it belongs to."""
    limit = deps.config.otp_max_attempts
    state = await store.count_otp_attempt(uow.conn, user.id, purpose=purpose, max_attempts=limit) if user else None
    if user is not None and state is None and await store.otp_state(uow.conn, user.id, purpose) is not None:
        raise domain.CodeLocked("This code was entered wrongly too often; ask for a new one.")
    digest = domain.otp_digest(deps.secret, user.id, code, purpose) if user is not None else ""
    try:
        domain.check_otp(state, digest=digest, now=deps.now(), max_attempts=limit)
    except domain.InvalidCode:
        await uow.commit()  # the try counts
        raise
    assert user is not None  # a code was found, and only a user has one
    await store.delete_otp(uow.conn, user.id, purpose)
    return user


async def register_user(deps: IdentityDeps, cmd: RegisterUser) -> User:
    email, name = domain.normalize_email(cmd.email), cmd.name.strip()
    domain.check_password(cmd.password, email=email, name=name)
    password_hash = await hash_password(cmd.password)
    async with deps.db.uow() as uow:
        if await store.user_by_email(uow.conn, email) is not None:
            raise domain.email_taken()
        user = User(
            id=uuid7(),
            email=email,
            name=name,
            password_hash=password_hash,
            roles=("customer",),
            verified=False,
            failed_logins=0,
            locked_until=None,
            created_at=deps.now(),
        )
        await store.insert_user(uow.conn, user)
        await _send_new_code(deps, uow.conn, user)
        uow.publish(USERS_TOPIC, "identity.user-registered", key=user.id, data={"user_id": user.id, "name": name})
        await uow.commit()
    deps.mail_signal.set()
    REGISTERED.inc()
    return user


async def resend_code(deps: IdentityDeps, *, email: str) -> None:
    """A new code for an unverified account; silent for unknown or verified addresses (no account probing)."""
    async with deps.db.uow() as uow:
        user = await store.user_by_email(uow.conn, domain.normalize_email(email))
        if user is None or user.verified:
            return
        interval = timedelta(seconds=deps.config.otp_resend_interval_seconds)
        wait = domain.resend_wait(await store.otp_state(uow.conn, user.id), now=deps.now(), interval=interval)
        if wait:
            message = f"A code was sent less than a minute ago; try again in {wait} s."
            raise domain.ResendTooSoon(message, retry_after=wait)
        await _send_new_code(deps, uow.conn, user)
        await uow.commit()
    deps.mail_signal.set()


async def verify_email(deps: IdentityDeps, cmd: VerifyEmail) -> TokenPair:
    async with deps.db.uow() as uow:
        found = await store.user_by_email(uow.conn, domain.normalize_email(cmd.email))
        user = await _use_code(deps, uow, found, cmd.code, "verify")
        await store.mark_verified(uow.conn, user.id)
        uow.publish(USERS_TOPIC, "identity.user-verified", key=user.id, data={"user_id": user.id})
        pair = await _issue_tokens(deps, uow.conn, user, family_id=None)
        await uow.commit()
    VERIFIED.inc()
    return pair


async def login(deps: IdentityDeps, cmd: LogIn) -> TokenPair:
    email = domain.normalize_email(cmd.email)
    async with deps.db.read() as conn:
        user = await store.user_by_email(conn, email)
    if user is None:
        await asyncio.to_thread(_dummy_hash)  # the first time only; later calls return the same string
        await password_matches(_dummy_hash(), cmd.password)
        LOGINS.labels("failed").inc()
        raise domain.InvalidCredentials()
    # The attempt is counted (and commits) before the password is checked: concurrent guesses each take a
    # place in the count, so no more than ``login_max_failures`` of them are ever checked in a row.
    now = deps.now()
    async with deps.db.uow() as uow:
        attempt = await store.count_login_attempt(
            uow.conn,
            user.id,
            now=now,
            lock_at=deps.config.login_max_failures,
            locks=domain.lockout_steps(timedelta(seconds=deps.config.login_lockout_seconds)),
        )
        locked_until = await store.locked_until(uow.conn, user.id) if attempt is None else None
        await uow.commit()
    if attempt is None:
        LOGINS.labels("throttled").inc()
        locked = max(1, domain.seconds_locked(locked_until, now))
        raise domain.LoginThrottled(f"Too many failed logins; try again in {locked} s.", retry_after=locked)
    if not await password_matches(user.password_hash, cmd.password):
        LOGINS.labels("failed").inc()
        raise domain.InvalidCredentials()
    async with deps.db.uow() as uow:
        await store.clear_login_failures(uow.conn, user.id)
        if not user.verified:
            await uow.commit()
            raise domain.NotVerified()
        pair = await _issue_tokens(deps, uow.conn, user, family_id=None)
        await uow.commit()
    LOGINS.labels("ok").inc()
    return pair


async def refresh(deps: IdentityDeps, *, refresh_token: str) -> TokenPair:
    """Rotate: a refresh token works once. Presenting a used one revokes its whole family (it was stolen)."""
    token_id, secret = domain.split_refresh_token(refresh_token)
    now = deps.now()
    async with deps.db.uow() as uow:
        token = domain.check_refresh(await store.refresh_token(uow.conn, token_id), secret=secret, now=now)
        if token.used_at is not None or not await store.mark_refresh_used(uow.conn, token_id, now):
            await store.revoke_family(uow.conn, token.family_id)
            await uow.commit()
            log.warning("refresh token reused; family revoked", user_id=token.user_id, family_id=token.family_id)
            raise domain.InvalidRefreshToken("This refresh token was already used; every session from it is ended.")
        user = await store.user_by_id(uow.conn, token.user_id)
        if user is None:
            raise domain.InvalidRefreshToken("The refresh token is not valid.")
        pair = await _issue_tokens(deps, uow.conn, user, family_id=token.family_id)
        await uow.commit()
    return pair


async def logout(deps: IdentityDeps, *, refresh_token: str) -> None:
    with contextlib.suppress(domain.InvalidRefreshToken):
        token_id, secret = domain.split_refresh_token(refresh_token)
        async with deps.db.uow() as uow:
            token = await store.refresh_token(uow.conn, token_id)
            if token is not None and token.token_hash == domain.refresh_digest(secret):
                await store.revoke_family(uow.conn, token.family_id)
                await uow.commit()


async def forgot_password(deps: IdentityDeps, *, email: str) -> None:
    """E-mail a code that sets a new password; silent for unknown addresses (no account probing), and
    throttled as the sign-up code is (one per ``otp_resend_interval_seconds``)."""
    async with deps.db.uow() as uow:
        user = await store.user_by_email(uow.conn, domain.normalize_email(email))
        if user is None:
            return
        interval = timedelta(seconds=deps.config.otp_resend_interval_seconds)
        wait = domain.resend_wait(await store.otp_state(uow.conn, user.id, "reset"), now=deps.now(), interval=interval)
        if wait:
            message = f"A code was sent less than a minute ago; try again in {wait} s."
            raise domain.ResendTooSoon(message, retry_after=wait)
        await _send_new_code(deps, uow.conn, user, "reset")
        await uow.commit()
    deps.mail_signal.set()


async def reset_password(deps: IdentityDeps, cmd: ResetPassword) -> TokenPair:
    """A new password from the e-mailed code: every session of the account ends, and this one begins.

    The code proves the address, so an account that never verified it is verified now.
    """
    email = domain.normalize_email(cmd.email)
    async with deps.db.read() as conn:
        known = await store.user_by_email(conn, email)
    domain.check_password(cmd.password, email=email, name=known.name if known else "")
    password_hash = await hash_password(cmd.password)
    async with deps.db.uow() as uow:
        found = await store.user_by_email(uow.conn, email)
        user = await _use_code(deps, uow, found, cmd.code, "reset")
        await store.set_password(uow.conn, user.id, password_hash)
        await store.clear_login_failures(uow.conn, user.id)
        ended = await store.revoke_user_tokens(uow.conn, user.id)
        if not user.verified:
            await store.mark_verified(uow.conn, user.id)
            uow.publish(USERS_TOPIC, "identity.user-verified", key=user.id, data={"user_id": user.id})
        pair = await _issue_tokens(deps, uow.conn, user, family_id=None)
        await uow.commit()
    log.info("password reset", user_id=user.id, sessions_ended=ended)
    return pair


async def change_password(deps: IdentityDeps, user_id: str, cmd: ChangePassword) -> None:
    """A new password for a signed-in user who knows the current one: no session can renew itself after."""
    user = await get_user(deps, user_id)
    if not await password_matches(user.password_hash, cmd.current_password):
        raise domain.WrongPassword()
    domain.check_password(cmd.new_password, email=user.email, name=user.name)
    password_hash = await hash_password(cmd.new_password)
    async with deps.db.uow() as uow:
        await store.set_password(uow.conn, user.id, password_hash)
        await store.clear_login_failures(uow.conn, user.id)
        ended = await store.revoke_user_tokens(uow.conn, user.id)
        await uow.commit()
    log.info("password changed", user_id=user.id, sessions_ended=ended)


async def log_out_everywhere(deps: IdentityDeps, user_id: str) -> int:
    """Revoke every refresh token of the user; access tokens already given out expire on their own."""
    async with deps.db.uow() as uow:
        ended = await store.revoke_user_tokens(uow.conn, user_id)
        await uow.commit()
    log.info("logged out everywhere", user_id=user_id, sessions_ended=ended)
    return ended


async def get_user(deps: IdentityDeps, user_id: str) -> User:
    async with deps.db.read() as conn:
        user = await store.user_by_id(conn, user_id)
    if user is None:
        raise domain.AccountGone("This account no longer exists.")
    return user


async def _issue_tokens(
    deps: IdentityDeps, conn: AsyncConnection, user: User, *, family_id: str | None
) -> TokenPair:
    now = deps.now()
    ttl = deps.config.access_token_ttl_seconds
    access = deps.keys.current().issue_access_token(
        user_id=user.id,
        email=user.email,
        name=user.name,
        roles=list(user.roles),
        now=now,
        ttl=timedelta(seconds=ttl),
    )
    secret = domain.new_refresh_secret()
    token = RefreshToken(
        id=str(uuid.uuid4()),
        family_id=family_id or str(uuid.uuid4()),
        user_id=user.id,
        token_hash=domain.refresh_digest(secret),
        expires_at=now + timedelta(seconds=deps.config.refresh_token_ttl_seconds),
        used_at=None,
        revoked=False,
    )
    await store.insert_refresh_token(conn, token, now=now)
    return TokenPair(access_token=access, refresh_token=f"{token.id}.{secret}", expires_in=ttl)


async def load_keys(deps: IdentityDeps) -> None:
    """Load the active signing keys into the key ring; the first start makes one."""
    deps.keys.load(KeyRing(await load_or_create_keys(deps.db, deps.secret, now=deps.now())))


async def ensure_admin(deps: IdentityDeps, *, email: str, password: str) -> None:
    """The admin named in settings exists, is verified, holds the admin role and has that password."""
    email = domain.normalize_email(email)
    async with deps.db.read() as conn:
        existing = await store.user_by_email(conn, email)
    if existing is not None and await password_matches(existing.password_hash, password):
        password_hash = existing.password_hash
    else:
        password_hash = await hash_password(password)
    try:
        await _upsert_admin(deps, email, password_hash)
    except IntegrityError:
        # Another process of identity (``run --processes`` starts its API and its worker at once) inserted the
        # admin between our read and our insert: now it exists, so this makes it admin with the password.
        await _upsert_admin(deps, email, password_hash)
    log.info("admin ready", email=email)


async def _upsert_admin(deps: IdentityDeps, email: str, password_hash: str) -> None:
    async with deps.db.uow() as uow:
        user = await store.user_by_email(uow.conn, email)
        if user is None:
            admin = User(
                id=uuid7(),
                email=email,
                name="Administrator",
                password_hash=password_hash,
                roles=("customer", "admin"),
                verified=True,
                failed_logins=0,
                locked_until=None,
                created_at=deps.now(),
            )
            await store.insert_user(uow.conn, admin)
        else:
            await store.make_admin(uow.conn, user, password_hash=password_hash)
        await uow.commit()


async def send_pending_mail(deps: IdentityDeps, *, batch: int = 20) -> int:
    """Send queued e-mails; a row goes only once its message went out (a crash may send one twice)."""
    async with deps.db.read() as conn:
        queued = await store.pending_mail(conn, batch)
    for mail in queued:
        await deps.mailer.send(mail.recipient, mail.subject, mail.body)
        async with deps.db.uow() as uow:
            await store.delete_mail(uow.conn, mail.id)
            await uow.commit()
    return len(queued)
