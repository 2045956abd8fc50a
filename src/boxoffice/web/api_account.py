"""Account pages: register, verify the e-mailed code, log in and out, the account itself (change password,
log out everywhere), forgot password; the dev mailbox in dev mode."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from boxoffice.web import domain
from boxoffice.web.clients import not_found
from boxoffice.web.handlers import ApiProblem
from boxoffice.web.pages import VisitorDep, form, redirect, render, text, with_query
from boxoffice.web.resources import Registration

router = APIRouter(include_in_schema=False)


@router.get("/account/register")
async def register_form(request: Request, visitor: VisitorDep) -> Response:
    return render(request, "register.html", "register", form={}, next=request.query_params.get("next", ""))


@router.post("/account/register")
async def register(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    fields = {"name": text(data, "name"), "email": text(data, "email")}
    next_url = domain.safe_next(text(data, "next"), "")
    try:
        password = data.get("password")
        await visitor.identity.register(
            Registration(**fields, password=password if isinstance(password, str) else "")
        )
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return render(request, "register.html", "register", form=fields, error=_field_message(exc),
                      next=next_url, status=exc.status)
    return redirect(with_query("/account/verify", email=fields["email"], next=next_url, sent=1), request)


# Identity's one-time code problems say what to do next ("wrong, 4 tries left"); the shop's friendly text for
# "invalid-code" is about tickets at the gate, which shares the slug.
_CODE_PROBLEMS = frozenset({"invalid-code", "code-expired", "code-locked", "wrong-password"})


def _field_message(exc: ApiProblem) -> str:
    """Validation problems name the field; say it the way a form would."""
    if exc.slug in _CODE_PROBLEMS:
        return exc.problem.detail
    if exc.slug == "validation-error":
        params = exc.problem.extra.get("invalid_params") or []
        if params and isinstance(params[0], dict):
            name = str(params[0].get("name", "")).replace("_", " ")
            return f"Please check the {name}: {params[0].get('reason', 'it is not valid')}."
    return exc.message


@router.get("/account/verify")
async def verify_form(request: Request, visitor: VisitorDep) -> Response:
    q = request.query_params
    return render(request, "verify.html", "verify", email=q.get("email", ""), next=q.get("next", ""),
                  sent=q.get("sent") == "1")


@router.post("/account/verify")
async def verify(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    email, code, next_url = text(data, "email"), text(data, "code").replace(" ", ""), text(data, "next")
    try:
        tokens = await visitor.identity.verify(email, code)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return render(request, "verify.html", "verify", email=email, next=next_url, error=_field_message(exc),
                      status=exc.status)
    await visitor.log_in_with(tokens)
    return redirect(domain.safe_next(next_url, "/?welcome=1"), request)


@router.post("/account/resend")
async def resend(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    email = text(data, "email")
    try:
        await visitor.identity.resend(email)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return render(request, "verify.html", "verify", email=email, next=text(data, "next"), error=exc.message,
                      status=exc.status)
    return redirect(with_query("/account/verify", email=email, next=text(data, "next"), sent=1), request)


@router.get("/account/login")
async def login_form(request: Request, visitor: VisitorDep) -> Response:
    q = request.query_params
    return render(request, "login.html", "login", email="", next=q.get("next", ""), ended=q.get("ended") == "1")


@router.post("/account/login")
async def login(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    email, next_url = text(data, "email"), text(data, "next")
    try:
        password = data.get("password")
        tokens = await visitor.identity.login(email, password if isinstance(password, str) else "")
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        if exc.status == 403:
            return redirect(with_query("/account/verify", email=email, next=next_url), request)
        return render(request, "login.html", "login", email=email, next=next_url, error=_field_message(exc),
                      status=exc.status)
    await visitor.log_in_with(tokens)
    return redirect(domain.safe_next(next_url), request)


@router.post("/account/logout")
async def logout(request: Request, visitor: VisitorDep) -> Response:
    await form(request)
    if visitor.tokens is not None:
        try:
            await visitor.identity.logout(visitor.tokens.refresh)
        except ApiProblem:
            pass  # the cookie goes either way; an unknown refresh token is already as good as gone
    visitor.log_out()
    return redirect("/", request)


@router.get("/account")
async def account(request: Request, visitor: VisitorDep) -> Response:
    user = visitor.require_user()
    q = request.query_params
    return render(request, "account.html", "account", account=user, changed=q.get("changed") == "1",
                  reset=q.get("reset") == "1")


def _password(data: FormData, name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


@router.post("/account/password")
async def change_password(request: Request, visitor: VisitorDep) -> Response:
    user = visitor.require_user()
    data = await form(request)
    new = _password(data, "new_password")
    if new != _password(data, "confirm_password"):
        return render(request, "account.html", "account", account=user, status=422,
                      error="The new password and its repetition differ.")
    try:
        await visitor.identity.change_password(_password(data, "current_password"), new)
    except ApiProblem as exc:
        if exc.status >= 500 or exc.status == 401:
            raise
        return render(request, "account.html", "account", account=user, error=_field_message(exc),
                      status=exc.status)
    # Every session ended with the old password; this one goes on with a pair the new password gives.
    await visitor.log_in_with(await visitor.identity.login(user.email, new))
    return redirect("/account?changed=1", request)


@router.post("/account/logout-all")
async def log_out_everywhere(request: Request, visitor: VisitorDep) -> Response:
    visitor.require_user()
    await form(request)
    await visitor.identity.log_out_everywhere()
    visitor.log_out()
    return redirect("/account/login?ended=1", request)


@router.get("/account/forgot")
async def forgot_form(request: Request, visitor: VisitorDep) -> Response:
    return render(request, "forgot.html", "forgot", email=request.query_params.get("email", ""))


@router.post("/account/forgot")
async def forgot(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    email = text(data, "email")
    try:
        await visitor.identity.forgot_password(email)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return render(request, "forgot.html", "forgot", email=email, error=_field_message(exc), status=exc.status)
    return redirect(with_query("/account/reset", email=email, sent=1), request)


@router.get("/account/reset")
async def reset_form(request: Request, visitor: VisitorDep) -> Response:
    q = request.query_params
    return render(request, "reset.html", "reset", email=q.get("email", ""), sent=q.get("sent") == "1")


@router.post("/account/reset")
async def reset(request: Request, visitor: VisitorDep) -> Response:
    data = await form(request)
    email, code = text(data, "email"), text(data, "code").replace(" ", "")
    try:
        tokens = await visitor.identity.reset_password(email, code, _password(data, "password"))
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return render(request, "reset.html", "reset", email=email, error=_field_message(exc), status=exc.status)
    await visitor.log_in_with(tokens)
    return redirect("/account?reset=1", request)


@router.get("/dev/mailbox")
async def dev_mailbox(request: Request, visitor: VisitorDep) -> Response:
    if not visitor.deps.dev_mode:
        raise not_found("No such page.")
    to = request.query_params.get("to", "")
    box = await visitor.identity.mailbox(to)
    return render(request, "mailbox.html", "mailbox", to=to, messages=box.items)
