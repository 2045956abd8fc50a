"""Identity's use cases: register, verify, resend, log in, refresh, log out; the admin; the mail sender.

Each handler validates outside the transaction, checks and writes inside one unit of work, and leaves the
side effects (e-mail, events) to outboxes that commit with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from boxoffice.identity import domain, store
from boxoffice.identity.keys import KeyRing
from boxoffice.platform.bus.envelope import uuid7
from boxoffice.platform.keys import load_or_create_keys
from boxoffice.platform.metrics import counter

if TYPE_CHECKING:
    from boxoffice.identity.service import IdentityService

log = structlog.get_logger("boxoffice.identity")

USERS_TOPIC = "identity.users"
REGISTERED = counter("boxoffice_users_registered_total", "Accounts registered")
VERIFIED = counter("boxoffice_users_verified_total", "Accounts that verified their e-mail")
LOGINS = counter("boxoffice_logins_total", "Login attempts", ("outcome",))

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when the e-mail is unknown, so a login takes as long whether or not the account exists.
_DUMMY_HASH = _hasher.hash("boxoffice-dummy-password")


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


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


async def _send_new_code(svc: IdentityService, conn: Any, user: Any) -> None:
    now = svc.now()
    code = domain.new_otp_code()
    ttl = svc.config.otp_ttl_seconds
    await store.replace_otp(
        conn,
        user.id,
        code_hash=domain.otp_digest(svc.settings.secret, user.id, code),
        expires_at=now + timedelta(seconds=ttl),
        now=now,
    )
    subject, body = _otp_mail(user.name, code, ttl // 60)
    await store.queue_mail(conn, recipient=user.email, subject=subject, body=body, now=now)


async def register_user(svc: IdentityService, *, email: str, password: str, name: str) -> Any:
    email, name = domain.normalize_email(email), name.strip()
    domain.check_password(password, email=email, name=name)
    password_hash = await hash_password(password)
    async with svc.db.uow() as uow:
        if await store.user_by_email(uow.conn, email) is not None:
            raise domain.email_taken()
        user_id = uuid7()
        await store.insert_user(
            uow.conn,
            id=user_id,
            email=email,
            name=name,
            password_hash=password_hash,
            roles="customer",
            verified=False,
            failed_logins=0,
            created_at=svc.now(),
        )
        user = await store.user_by_id(uow.conn, user_id)
        await _send_new_code(svc, uow.conn, user)
        uow.publish(USERS_TOPIC, "identity.user-registered", key=user_id, data={"user_id": user_id, "name": name})
        await uow.commit()
    svc.mail_signal.set()
    REGISTERED.inc()
    return user


async def resend_code(svc: IdentityService, *, email: str) -> None:
    """Send a fresh code. Unknown or already verified addresses get no mail and the same 202."""
    async with svc.db.uow() as uow:
        user = await store.user_by_email(uow.conn, domain.normalize_email(email))
        if user is None or user.verified:
            return
        interval = timedelta(seconds=svc.config.otp_resend_interval_seconds)
        wait = domain.resend_wait(await store.otp_state(uow.conn, user.id), now=svc.now(), interval=interval)
        if wait:
            message = f"A code was sent less than a minute ago; try again in {wait} s."
            raise domain.ResendTooSoon(message, retry_after=wait)
        await _send_new_code(svc, uow.conn, user)
        await uow.commit()
    svc.mail_signal.set()


async def verify_email(svc: IdentityService, *, email: str, code: str) -> TokenPair:
    async with svc.db.uow() as uow:
        user = await store.user_by_email(uow.conn, domain.normalize_email(email))
        state = await store.otp_state(uow.conn, user.id) if user is not None else None
        digest = domain.otp_digest(svc.settings.secret, user.id, code) if user is not None else ""
        try:
            domain.check_otp(state, digest=digest, now=svc.now(), max_attempts=svc.config.otp_max_attempts)
        except domain.InvalidCode:
            if state is not None:
                await store.count_otp_attempt(uow.conn, user.id)
                await uow.commit()
            raise
        await store.delete_otp(uow.conn, user.id)
        await store.update_user(uow.conn, user.id, verified=True)
        uow.publish(USERS_TOPIC, "identity.user-verified", key=user.id, data={"user_id": user.id})
        pair = await _issue_tokens(svc, uow.conn, user, family_id=None)
        await uow.commit()
    VERIFIED.inc()
    return pair


async def login(svc: IdentityService, *, email: str, password: str) -> TokenPair:
    email = domain.normalize_email(email)
    async with svc.db.read() as conn:
        user = await store.user_by_email(conn, email)
    if user is None:
        await password_matches(_DUMMY_HASH, password)
        LOGINS.labels("failed").inc()
        raise domain.InvalidCredentials()
    now = svc.now()
    if locked := domain.seconds_locked(user.locked_until, now):
        LOGINS.labels("throttled").inc()
        raise domain.LoginThrottled(f"Too many failed logins; try again in {locked} s.", retry_after=locked)
    ok = await password_matches(user.password_hash, password)
    async with svc.db.uow() as uow:
        if not ok:
            fresh = await store.user_by_id(uow.conn, user.id)
            failures = fresh.failed_logins + 1
            locked_until = domain.lockout_after_failure(
                failures,
                now=now,
                max_failures=svc.config.login_max_failures,
                lockout=timedelta(seconds=svc.config.login_lockout_seconds),
            )
            await store.update_user(uow.conn, user.id, failed_logins=failures, locked_until=locked_until)
            await uow.commit()
            LOGINS.labels("failed").inc()
            raise domain.InvalidCredentials()
        if not user.verified:
            raise domain.NotVerified()
        if user.failed_logins or user.locked_until:
            await store.update_user(uow.conn, user.id, failed_logins=0, locked_until=None)
        pair = await _issue_tokens(svc, uow.conn, user, family_id=None)
        await uow.commit()
    LOGINS.labels("ok").inc()
    return pair


async def refresh(svc: IdentityService, *, refresh_token: str) -> TokenPair:
    """Rotate: a refresh token works once. Presenting a used one revokes its whole family (it was stolen)."""
    token_id, secret = domain.split_refresh_token(refresh_token)
    now = svc.now()
    async with svc.db.uow() as uow:
        row = await store.refresh_token(uow.conn, token_id)
        if row is None or row.token_hash != domain.refresh_digest(secret):
            raise domain.InvalidRefreshToken("The refresh token is not valid.")
        if row.revoked or row.expires_at <= now:
            raise domain.InvalidRefreshToken("The refresh token has expired or was revoked; log in again.")
        if row.used_at is not None or not await store.mark_refresh_used(uow.conn, token_id, now):
            await store.revoke_family(uow.conn, row.family_id)
            await uow.commit()
            log.warning("refresh token reused; family revoked", user_id=row.user_id, family_id=row.family_id)
            raise domain.InvalidRefreshToken("This refresh token was already used; every session from it is ended.")
        user = await store.user_by_id(uow.conn, row.user_id)
        pair = await _issue_tokens(svc, uow.conn, user, family_id=row.family_id)
        await uow.commit()
    return pair


async def logout(svc: IdentityService, *, refresh_token: str) -> None:
    with contextlib.suppress(domain.InvalidRefreshToken):
        token_id, secret = domain.split_refresh_token(refresh_token)
        async with svc.db.uow() as uow:
            row = await store.refresh_token(uow.conn, token_id)
            if row is not None and row.token_hash == domain.refresh_digest(secret):
                await store.revoke_family(uow.conn, row.family_id)
                await uow.commit()


async def _issue_tokens(svc: IdentityService, conn: Any, user: Any, *, family_id: str | None) -> TokenPair:
    now = svc.now()
    ttl = svc.config.access_token_ttl_seconds
    access = svc.keyring().issue_access_token(
        user_id=user.id,
        email=user.email,
        name=user.name,
        roles=user.roles.split(),
        now=now,
        ttl=timedelta(seconds=ttl),
    )
    token_id, secret = str(uuid.uuid4()), domain.new_refresh_secret()
    await store.insert_refresh_token(
        conn,
        id=token_id,
        family_id=family_id or str(uuid.uuid4()),
        user_id=user.id,
        token_hash=domain.refresh_digest(secret),
        expires_at=now + timedelta(seconds=svc.config.refresh_token_ttl_seconds),
        revoked=False,
        created_at=now,
    )
    return TokenPair(access_token=access, refresh_token=f"{token_id}.{secret}", expires_in=ttl)


async def load_keyring(svc: IdentityService) -> KeyRing:
    """The active signing keys; the first start makes one."""
    return KeyRing(await load_or_create_keys(svc.db, svc.settings.secret, now=svc.now()))


async def ensure_admin(svc: IdentityService, *, email: str, password: str) -> None:
    """The admin named in settings exists, is verified, holds the admin role and has that password."""
    email = domain.normalize_email(email)
    async with svc.db.read() as conn:
        existing = await store.user_by_email(conn, email)
    if existing is not None and await password_matches(existing.password_hash, password):
        password_hash = existing.password_hash
    else:
        password_hash = await hash_password(password)
    async with svc.db.uow() as uow:
        user = await store.user_by_email(uow.conn, email)
        if user is None:
            await store.insert_user(
                uow.conn,
                id=uuid7(),
                email=email,
                name="Administrator",
                password_hash=password_hash,
                roles="customer admin",
                verified=True,
                failed_logins=0,
                created_at=svc.now(),
            )
        else:
            roles = " ".join(dict.fromkeys([*user.roles.split(), "admin"]))
            await store.update_user(uow.conn, user.id, roles=roles, verified=True, password_hash=password_hash)
        await uow.commit()
    log.info("admin ready", email=email)


async def send_pending_mail(svc: IdentityService, *, batch: int = 20) -> int:
    """Send queued e-mails; a row goes only once its message went out (a crash may send one twice)."""
    async with svc.db.read() as conn:
        rows = await store.pending_mail(conn, batch)
    for row in rows:
        await svc.mailer.send(row.recipient, row.subject, row.body)
        async with svc.db.uow() as uow:
            await store.delete_mail(uow.conn, row.id)
            await uow.commit()
    return len(rows)
