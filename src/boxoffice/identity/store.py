"""Identity's tables and the queries on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from boxoffice.identity.domain import CodePurpose, OtpState, QueuedMail, RefreshToken, User, with_role
from boxoffice.platform.bus.tables import BigId, add_messaging_tables
from boxoffice.platform.db import UtcDateTime
from boxoffice.platform.keys import add_signing_keys_table

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("roles", String(200), nullable=False, server_default="customer"),
    Column("verified", Boolean, nullable=False, server_default="0"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

otp_codes = Table(
    "otp_codes",
    metadata,
    Column("user_id", String(36), primary_key=True),  # one live code per user; a new one replaces it
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("sent_at", UtcDateTime, nullable=False),
)

# "Forgot password" codes: the same shape as otp_codes, kept apart so that asking for a reset never
# replaces a pending sign-up code, and a code of one kind never works for the other.
password_resets = Table(
    "password_resets",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("sent_at", UtcDateTime, nullable=False),
)
_CODES = {"verify": otp_codes, "reset": password_resets}

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("family_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("revoked", Boolean, nullable=False, server_default="0"),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_refresh_tokens_family_id", "family_id"),
    Index("ix_refresh_tokens_user_id", "user_id"),  # "log out everywhere" and password changes
)

signing_keys = add_signing_keys_table(metadata)

# E-mails waiting to be sent, written in the transaction that decided to send them (an outbox for mail:
# the one-time code must not travel on the shared bus). A row is deleted once the message is sent.
mail_queue = Table(
    "mail_queue",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

outbox, inbox = add_messaging_tables(metadata)


def _user(row: Row[Any] | None) -> User | None:
    if row is None:
        return None
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        password_hash=row.password_hash,
        roles=tuple(row.roles.split()),
        verified=bool(row.verified),
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        created_at=row.created_at,
    )


async def user_by_email(conn: AsyncConnection, email: str) -> User | None:
    return _user((await conn.execute(select(users).where(users.c.email == email))).first())


async def user_by_id(conn: AsyncConnection, user_id: str) -> User | None:
    return _user((await conn.execute(select(users).where(users.c.id == user_id))).first())


async def insert_user(conn: AsyncConnection, user: User) -> None:
    await conn.execute(
        insert(users).values(
            id=user.id,
            email=user.email,
            name=user.name,
            password_hash=user.password_hash,
            roles=" ".join(user.roles),
            verified=user.verified,
            failed_logins=user.failed_logins,
            locked_until=user.locked_until,
            created_at=user.created_at,
        )
    )


async def count_login_attempt(
    conn: AsyncConnection, user_id: str, *, now: datetime, lock_at: int, locks: Sequence[timedelta]
) -> int | None:
    """Count one login attempt before its password is checked; None when the account is locked.

    One statement is the referee between concurrent attempts: it counts only while the account is not
    locked, and the attempt that reaches ``lock_at`` locks the account at once (for ``locks[k]`` when it is
    the ``lock_at + k``-th in a row, the last entry for every later one). A right password clears both.
    """
    attempts = users.c.failed_logins + 1
    last = len(locks) - 1
    until = case(
        *[(attempts == lock_at + k, literal(now + lock, UtcDateTime)) for k, lock in enumerate(locks[:last])],
        (attempts >= lock_at + last, literal(now + locks[last], UtcDateTime)),
        else_=users.c.locked_until,
    )
    unlocked = or_(users.c.locked_until.is_(None), users.c.locked_until <= literal(now, UtcDateTime))
    result = await conn.execute(
        update(users)
        .where(and_(users.c.id == user_id, unlocked))
        .values(failed_logins=attempts, locked_until=until)
        .returning(users.c.failed_logins)
    )
    count = result.scalar_one_or_none()
    return None if count is None else int(count)


async def locked_until(conn: AsyncConnection, user_id: str) -> datetime | None:
    value: datetime | None = await conn.scalar(select(users.c.locked_until).where(users.c.id == user_id))
    return value


async def clear_login_failures(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(failed_logins=0, locked_until=None))


async def mark_verified(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(verified=True))


async def make_admin(conn: AsyncConnection, user: User, *, password_hash: str) -> None:
    await conn.execute(update(users).where(users.c.id == user.id).values(
        roles=" ".join(with_role(user.roles, "admin")), verified=True, password_hash=password_hash))


def _otp(row: Row[Any] | None) -> OtpState | None:
    if row is None:
        return None
    return OtpState(code_hash=row.code_hash, expires_at=row.expires_at, attempts=row.attempts, sent_at=row.sent_at)


async def otp_state(conn: AsyncConnection, user_id: str, purpose: CodePurpose = "verify") -> OtpState | None:
    table = _CODES[purpose]
    return _otp((await conn.execute(select(table).where(table.c.user_id == user_id))).first())


async def replace_otp(
    conn: AsyncConnection,
    user_id: str,
    *,
    code_hash: str,
    expires_at: datetime,
    now: datetime,
    purpose: CodePurpose = "verify",
) -> None:
    table = _CODES[purpose]
    await conn.execute(delete(table).where(table.c.user_id == user_id))
    await conn.execute(
        insert(table).values(user_id=user_id, code_hash=code_hash, expires_at=expires_at, attempts=0, sent_at=now)
    )


async def count_otp_attempt(
    conn: AsyncConnection, user_id: str, *, purpose: CodePurpose, max_attempts: int
) -> OtpState | None:
    """Count one try of the user's code before it is compared; None when there is none or it is used up.

    The UPDATE is the referee between concurrent tries: no more than ``max_attempts`` are ever counted.
    """
    table = _CODES[purpose]
    result = await conn.execute(
        update(table)
        .where(and_(table.c.user_id == user_id, table.c.attempts < max_attempts))
        .values(attempts=table.c.attempts + 1)
        .returning(table.c.code_hash, table.c.expires_at, table.c.attempts, table.c.sent_at)
    )
    return _otp(result.first())


async def delete_otp(conn: AsyncConnection, user_id: str, purpose: CodePurpose = "verify") -> None:
    table = _CODES[purpose]
    await conn.execute(delete(table).where(table.c.user_id == user_id))


async def set_password(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


async def revoke_user_tokens(conn: AsyncConnection, user_id: str) -> int:
    """End every session of the user: each of its refresh tokens stops working."""
    result = await conn.execute(
        update(refresh_tokens)
        .where(and_(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked.is_(False)))
        .values(revoked=True)
    )
    return int(result.rowcount or 0)


async def queue_mail(conn: AsyncConnection, *, recipient: str, subject: str, body: str, now: datetime) -> None:
    await conn.execute(insert(mail_queue).values(recipient=recipient, subject=subject, body=body, created_at=now))


async def insert_refresh_token(conn: AsyncConnection, token: RefreshToken, *, now: datetime) -> None:
    await conn.execute(
        insert(refresh_tokens).values(
            id=token.id,
            family_id=token.family_id,
            user_id=token.user_id,
            token_hash=token.token_hash,
            expires_at=token.expires_at,
            used_at=token.used_at,
            revoked=token.revoked,
            created_at=now,
        )
    )


async def refresh_token(conn: AsyncConnection, token_id: str) -> RefreshToken | None:
    row = (await conn.execute(select(refresh_tokens).where(refresh_tokens.c.id == token_id))).first()
    if row is None:
        return None
    return RefreshToken(
        id=row.id,
        family_id=row.family_id,
        user_id=row.user_id,
        token_hash=row.token_hash,
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked=bool(row.revoked),
    )


async def mark_refresh_used(conn: AsyncConnection, token_id: str, now: datetime) -> bool:
    """Mark the token used; False if someone else used it first (the UPDATE is the race's referee)."""
    result = await conn.execute(
        update(refresh_tokens)
        .where(and_(refresh_tokens.c.id == token_id, refresh_tokens.c.used_at.is_(None)))
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)


async def revoke_family(conn: AsyncConnection, family_id: str) -> None:
    await conn.execute(update(refresh_tokens).where(refresh_tokens.c.family_id == family_id).values(revoked=True))


async def pending_mail(conn: AsyncConnection, limit: int) -> list[QueuedMail]:
    rows = await conn.execute(select(mail_queue).order_by(mail_queue.c.id).limit(limit))
    return [QueuedMail(id=r.id, recipient=r.recipient, subject=r.subject, body=r.body) for r in rows]


async def delete_mail(conn: AsyncConnection, mail_id: int) -> None:
    await conn.execute(delete(mail_queue).where(mail_queue.c.id == mail_id))
