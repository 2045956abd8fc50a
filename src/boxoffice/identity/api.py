"""Identity's HTTP API (ARCHITECTURE.md section 5): parse, call a handler, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from boxoffice.identity import handlers
from boxoffice.identity.deps import IdentityDeps
from boxoffice.identity.schemas import (
    AcceptedOut,
    ChangePasswordIn,
    EmailIn,
    JwksOut,
    LoginIn,
    MailboxOut,
    MailOut,
    MeOut,
    RefreshIn,
    RegisterIn,
    ResetPasswordIn,
    TokenPairOut,
    UserOut,
    VerifyIn,
)
from boxoffice.platform.app import provide
from boxoffice.platform.auth import CurrentUser
from boxoffice.platform.mail import DevMailbox
from boxoffice.platform.problem_http import problem_responses
from boxoffice.platform.problems import NotFound

Deps = Annotated[IdentityDeps, Depends(provide(IdentityDeps))]

router = APIRouter(tags=["identity"])


@router.post("/api/auth/register", status_code=201, responses=problem_responses(400, 409, 422))
async def register(body: RegisterIn, deps: Deps) -> UserOut:
    return UserOut.of(await handlers.register_user(deps, body.command()))


@router.post("/api/auth/verify", responses=problem_responses(400, 422))
async def verify(body: VerifyIn, deps: Deps) -> TokenPairOut:
    return TokenPairOut.of(await handlers.verify_email(deps, body.command()))


@router.post("/api/auth/resend", status_code=202, responses=problem_responses(400, 422, 429))
async def resend(body: EmailIn, deps: Deps) -> AcceptedOut:
    await handlers.resend_code(deps, email=body.email)
    return AcceptedOut(status="accepted", detail="If the address waits for verification, a new code is on its way.")


@router.post("/api/auth/login", responses=problem_responses(400, 401, 403, 422, 429))
async def login(body: LoginIn, deps: Deps) -> TokenPairOut:
    return TokenPairOut.of(await handlers.login(deps, body.command()))


@router.post("/api/auth/password/forgot", status_code=202, responses=problem_responses(400, 422, 429))
async def forgot_password(body: EmailIn, deps: Deps) -> AcceptedOut:
    await handlers.forgot_password(deps, email=body.email)
    return AcceptedOut(status="accepted", detail="If an account has this address, a code is on its way.")


@router.post("/api/auth/password/reset", responses=problem_responses(400, 422))
async def reset_password(body: ResetPasswordIn, deps: Deps) -> TokenPairOut:
    """A new password with the e-mailed code; every session of the account ends and a new one begins."""
    return TokenPairOut.of(await handlers.reset_password(deps, body.command()))


@router.post("/api/auth/refresh", responses=problem_responses(400, 401, 422))
async def refresh(body: RefreshIn, deps: Deps) -> TokenPairOut:
    return TokenPairOut.of(await handlers.refresh(deps, refresh_token=body.refresh_token))


@router.post("/api/auth/logout", status_code=204, response_class=Response, responses=problem_responses(400, 422))
async def logout(body: RefreshIn, deps: Deps) -> None:
    await handlers.logout(deps, refresh_token=body.refresh_token)


@router.get("/api/me", responses=problem_responses(401, 404))
async def me(user: CurrentUser, deps: Deps) -> MeOut:
    return MeOut.of(await handlers.get_user(deps, user.id))


@router.post(
    "/api/me/password", status_code=204, response_class=Response, responses=problem_responses(400, 401, 403, 404, 422)
)
async def change_password(body: ChangePasswordIn, user: CurrentUser, deps: Deps) -> None:
    """A new password (the current one is asked again). Every refresh token of the account is revoked, so
    every session ends when its access token expires; log in again with the new password to go on."""
    await handlers.change_password(deps, user.id, body.command())


@router.post("/api/auth/logout-all", status_code=204, response_class=Response, responses=problem_responses(401))
async def log_out_everywhere(user: CurrentUser, deps: Deps) -> None:
    """Revoke every refresh token of the caller: no device can renew its session."""
    await handlers.log_out_everywhere(deps, user.id)


@router.get("/.well-known/jwks.json")
async def jwks(deps: Deps, response: Response) -> JwksOut:
    response.headers["Cache-Control"] = "public, max-age=300"
    return JwksOut.model_validate(deps.keys.current().jwks())


@router.get("/api/dev/mailbox", responses=problem_responses(404, 422))
async def dev_mailbox(
    deps: Deps,
    to: Annotated[str | None, Query(max_length=320, description="only messages to this address")] = None,
) -> MailboxOut:
    """Messages the dev mail backend 'sent', newest first (only with BOXOFFICE_MAIL_BACKEND=dev)."""
    if not isinstance(deps.mailer, DevMailbox):
        raise NotFound("The dev mailbox exists only with the dev mail backend.")
    return MailboxOut(items=[MailOut.of(m) for m in deps.mailer.messages(to)])
