"""Account pages: sign up, log in and out, the account page with sessions, verification and password reset."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.accounts import sessions
from app.accounts.auth import clear_cookie, current_user, requires_login, with_session
from app.accounts.forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    ResetPasswordForm,
    SignupForm,
    safe_next,
)
from app.accounts.service import Accounts
from app.checkout import orders
from app.db.engine import Db
from app.web.errors import AppError, NotFound
from app.web.flash import flash
from app.web.forms import read_form
from app.web.security import client_ip

Req = Request[Any, Any, Any]


def _form_page(template: str, **context: Any) -> Template:
    return Template(template_name=template, context={"errors": {}, "form": {}, **context})


async def _start_session(request: Req, db: Db, user_id: int, target: str) -> Response[Any]:
    """Open a fresh session (a new id every time: no fixation), end the one the browser had, and redirect."""
    settings = request.app.state.settings
    token = await sessions.create(db, user_id, settings, request.headers.get("user-agent", ""), client_ip(request))
    old_token = request.cookies.get(sessions.cookie_name(settings))
    if old_token:
        await sessions.end(db, old_token)
    await db.commit()
    return with_session(Redirect(target, status_code=303), settings, token)


@get("/signup", name="signup")
async def signup_page(request: Req, next: FromQuery[str] = "") -> Response[Any]:
    if current_user(request):
        return Redirect(safe_next(next) if next else "/account", status_code=303)
    return _form_page("accounts/signup.html", form={"next": safe_next(next) if next else ""})


@post("/signup", opt={"form_template": "accounts/signup.html"})
async def signup(request: Req, db: Db, accounts: NamedDependency[Accounts]) -> Response[Any]:
    data = await read_form(request)
    form = SignupForm.parse(data)
    user = await accounts.signup(db, form)
    flash(request, f"Welcome to Fairshelf, {user.display_name}! We sent a confirmation link to {user.email}.")
    # Where they were going (a purchase to claim, say), else their account.
    return await _start_session(request, db, user.id, safe_next(data["next"]) if data.get("next") else "/account")


@post("/signup/check-username")
async def check_username_available(request: Req, db: Db, accounts: NamedDependency[Accounts]) -> Template:
    """Inline validation on blur: is this username well-formed and free?"""
    username, problem = await accounts.username_problem(db, (await read_form(request)).get("username", ""))
    return Template(template_name="accounts/_username_check.html",
                    context={"errors": {"username": problem} if problem else {}, "form": {"username": username},
                             "checked": True})


@get("/login", name="login")
async def login_page(request: Req, next: FromQuery[str] = "/") -> Response[Any]:
    if current_user(request):
        return Redirect(safe_next(next), status_code=303)
    return _form_page("accounts/login.html", form={"next": safe_next(next)})


@post("/login", opt={"form_template": "accounts/login.html"})
async def login(request: Req, db: Db, accounts: NamedDependency[Accounts]) -> Response[Any]:
    form = LoginForm.parse(await read_form(request))
    user = await accounts.authenticate(db, form, client_ip(request))
    flash(request, f"Welcome back, {user.display_name}.")
    return await _start_session(request, db, user.id, form.next)


@post("/logout")
async def logout(request: Req, db: Db) -> Response[Any]:
    settings = request.app.state.settings
    token = request.cookies.get(sessions.cookie_name(settings))
    if token:
        await sessions.end(db, token)
        await db.commit()
    flash(request, "You are logged out.", "info")
    response = Redirect("/", status_code=303)
    response.set_cookie(clear_cookie(settings))
    return response


@get("/account", guards=[requires_login])
async def account_page(request: Req, db: Db) -> Template:
    user = current_user(request)
    assert user is not None
    return Template(
        template_name="accounts/account.html",
        context={"sessions": await sessions.list_for(db, user.id), "errors": {}, "form": {}},
    )


@get("/account/password", guards=[requires_login])
async def change_password_page() -> Template:
    return _form_page("accounts/change_password.html")


@post("/account/password", guards=[requires_login], opt={"form_template": "accounts/change_password.html"})
async def change_password(request: Req, db: Db, accounts: NamedDependency[Accounts]) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    form = ChangePasswordForm.parse(await read_form(request))
    await accounts.change_password(db, user.id, form)
    flash(request, "Your password is changed. Other devices were signed out.")
    return await _start_session(request, db, user.id, "/account")


@post("/account/sessions/end-others", guards=[requires_login])
async def end_other_sessions(request: Req, db: Db) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    ended = await sessions.end_others(db, user.id, keep_session_id=user.session_id)
    await db.commit()
    flash(request, f"Signed out {ended} other session{'s' if ended != 1 else ''}.", "info")
    return Redirect("/account", status_code=303)


@post("/account/sessions/{session_id:int}/end", guards=[requires_login])
async def end_session(request: Req, db: Db, session_id: FromPath[int]) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    if not await sessions.end_one(db, user.id, session_id):
        raise NotFound("That session is not one of yours, or it has already ended.")
    await db.commit()
    flash(request, "That session is signed out.", "info")
    return Redirect("/account", status_code=303)


@post("/account/verify/resend", guards=[requires_login])
async def resend_verification(request: Req, db: Db, accounts: NamedDependency[Accounts]) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    await accounts.send_verification(db, user.id)
    await db.commit()
    flash(request, f"We sent a new confirmation link to {user.email}.", "info")
    return Redirect("/account", status_code=303)


@get("/verify-email")
async def verify_email(request: Req, db: Db, accounts: NamedDependency[Accounts], token: FromQuery[str] = "") -> Response[Any]:
    user = await accounts.verify_email(db, token)
    # Purchases made with this address before the account existed (or without logging in) are theirs now.
    claimed = await orders.claim_by_email(db, user.id, user.email)
    await db.commit()
    flash(request, "Thanks — your email address is confirmed."
          + (f" {claimed} earlier purchase{'s are' if claimed != 1 else ' is'} now in your library." if claimed else ""))
    return Redirect("/account" if current_user(request) else "/login", status_code=303)


@get("/forgot-password")
async def forgot_password_page() -> Template:
    return _form_page("accounts/forgot_password.html")


@post("/forgot-password", opt={"form_template": "accounts/forgot_password.html"})
async def forgot_password(request: Req, db: Db, accounts: NamedDependency[Accounts]) -> Response[Any]:
    form = ForgotPasswordForm.parse(await read_form(request))
    await accounts.request_password_reset(db, form.email)
    await db.commit()
    flash(request, f"If {form.email} has a Fairshelf account, a reset link is on its way. It works for one hour.",
          "info")
    return Redirect("/login", status_code=303)


@get("/reset-password")
async def reset_password_page(db: Db, accounts: NamedDependency[Accounts], token: FromQuery[str] = "") -> Template:
    try:
        await accounts.check_reset_token(db, token)
    except AppError as exc:
        return _form_page("accounts/forgot_password.html", problem=exc.message)
    return _form_page("accounts/reset_password.html", form={"token": token})


@post("/reset-password", opt={"form_template": "accounts/reset_password.html"})
async def reset_password(request: Req, db: Db, accounts: NamedDependency[Accounts]) -> Response[Any]:
    form = ResetPasswordForm.parse(await read_form(request))
    try:
        await accounts.reset_password(db, form)
    except AppError as exc:
        return Template(template_name="accounts/forgot_password.html",
                        context={"errors": {}, "form": {}, "problem": exc.message}, status_code=400)
    await db.commit()
    flash(request, "Your password is reset and every device was signed out. Log in with the new password.")
    return Redirect("/login", status_code=303)


ROUTES = [
    signup_page, signup, check_username_available, login_page, login, logout, account_page, change_password_page, change_password,
    end_other_sessions, end_session, resend_verification, verify_email, forgot_password_page, forgot_password,
    reset_password_page, reset_password,
]
