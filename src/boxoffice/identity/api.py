"""Identity's HTTP API (ARCHITECTURE.md section 5): parse, call a handler, shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from boxoffice.identity import handlers, store
from boxoffice.identity.service import IdentityService
from boxoffice.platform.app import running_service
from boxoffice.platform.auth import CurrentUser
from boxoffice.platform.mail import DevMailbox
from boxoffice.platform.problems import NotFound

Svc = Annotated[IdentityService, Depends(running_service(IdentityService))]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class RegisterIn(In):
    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field(min_length=1, max_length=200)


class VerifyIn(In):
    email: EmailStr = Field(max_length=320)
    code: str = Field(pattern=r"^\d{6}$", description="the 6-digit code from the e-mail")


class EmailIn(In):
    email: EmailStr = Field(max_length=320)


class LoginIn(In):
    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(In):
    refresh_token: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    verified: bool


class MeOut(UserOut):
    roles: list[str]


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class MailOut(BaseModel):
    to: str
    subject: str
    text: str
    sent_at: datetime


class MailboxOut(BaseModel):
    items: list[MailOut]


def _pair(pair: handlers.TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


router = APIRouter(tags=["identity"])


@router.post("/api/auth/register", status_code=201, response_model=UserOut)
async def register(body: RegisterIn, svc: Svc) -> Any:
    user = await handlers.register_user(svc, email=body.email, password=body.password, name=body.name)
    return UserOut(id=user.id, email=user.email, name=user.name, verified=user.verified)


@router.post("/api/auth/verify", response_model=TokenPairOut)
async def verify(body: VerifyIn, svc: Svc) -> Any:
    return _pair(await handlers.verify_email(svc, email=body.email, code=body.code))


@router.post("/api/auth/resend", status_code=202)
async def resend(body: EmailIn, svc: Svc) -> dict[str, str]:
    await handlers.resend_code(svc, email=body.email)
    return {"status": "accepted", "detail": "If the address waits for verification, a new code is on its way."}


@router.post("/api/auth/login", response_model=TokenPairOut)
async def login(body: LoginIn, svc: Svc) -> Any:
    return _pair(await handlers.login(svc, email=body.email, password=body.password))


@router.post("/api/auth/refresh", response_model=TokenPairOut)
async def refresh(body: RefreshIn, svc: Svc) -> Any:
    return _pair(await handlers.refresh(svc, refresh_token=body.refresh_token))


@router.post("/api/auth/logout", status_code=204)
async def logout(body: RefreshIn, svc: Svc) -> Response:
    await handlers.logout(svc, refresh_token=body.refresh_token)
    return Response(status_code=204)


@router.get("/api/me", response_model=MeOut)
async def me(user: CurrentUser, svc: Svc) -> Any:
    async with svc.db.read() as conn:
        row = await store.user_by_id(conn, user.id)
    if row is None:
        raise NotFound("This account no longer exists.")
    return MeOut(id=row.id, email=row.email, name=row.name, roles=row.roles.split(), verified=row.verified)


@router.get("/.well-known/jwks.json")
async def jwks(svc: Svc, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return svc.keyring().jwks()


@router.get("/api/dev/mailbox", response_model=MailboxOut)
async def dev_mailbox(
    svc: Svc,
    to: Annotated[str | None, Query(max_length=320, description="only messages to this address")] = None,
) -> Any:
    """Messages the dev mail backend 'sent', newest first (only with BOXOFFICE_MAIL_BACKEND=dev)."""
    if not isinstance(svc.mailer, DevMailbox):
        raise NotFound("The dev mailbox exists only with the dev mail backend.")
    items = svc.mailer.messages(to)
    return MailboxOut(items=[MailOut(to=m.to, subject=m.subject, text=m.text, sent_at=m.sent_at) for m in items])
