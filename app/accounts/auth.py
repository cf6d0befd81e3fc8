"""Who is making the request: the session middleware, the guards, and setting or clearing the session cookie."""

from __future__ import annotations

from typing import Any

from litestar import Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.accounts import sessions
from app.accounts.sessions import CurrentUser
from app.settings import Settings
from app.web.errors import Forbidden, LoginRequired


def session_middleware(app: ASGIApp) -> ASGIApp:
    """Put the signed-in user (or None) in scope["user"]; clear a cookie that no longer opens a session."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        token = scope_cookie(scope, sessions.cookie_name(settings))
        user = await sessions.load(state.sessionmaker, token, settings) if token else None
        scope["user"] = user
        if not token or user is not None:
            await app(scope, receive, send)
            return

        async def clearing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                name = sessions.cookie_name(settings) + "="
                if not any(v.startswith(name) for v in headers.getall("set-cookie", [])):
                    headers.add("set-cookie", clear_cookie(settings).to_header(header=""))
            await send(message)

        await app(scope, receive, clearing_send)

    return middleware


def scope_cookie(scope: Scope, name: str) -> str | None:
    """A cookie's value straight from the ASGI scope (middleware runs before any Request exists)."""
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name and v:
                    return v
    return None


def session_cookie(settings: Settings, token: str) -> Cookie:
    return Cookie(
        key=sessions.cookie_name(settings),
        value=token,
        path="/",
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        max_age=settings.session_absolute_days * 86400,
    )


def clear_cookie(settings: Settings) -> Cookie:
    return Cookie(key=sessions.cookie_name(settings), value="", path="/", httponly=True,
                  secure=settings.secure_cookies, samesite="lax", max_age=0, expires=0)


def with_session(response: Response[Any], settings: Settings, token: str) -> Response[Any]:
    response.set_cookie(session_cookie(settings, token))
    return response


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    return connection.scope.get("user")  # type: ignore[return-value]


def requires_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if current_user(connection) is None:
        raise LoginRequired("Please log in to continue.")


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = current_user(connection)
    if user is None:
        raise LoginRequired("Please log in to continue.")
    if not user.is_admin:
        raise Forbidden("This page is for administrators.")
