"""Security headers on every response, and the client IP as seen through trusted proxies."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.web.errors import AppError

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
}


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in HEADERS.items():
        if name not in headers:
            headers[name] = value


class NulInAddress(AppError):
    title = "This address is not valid"


def refuse_nul_middleware(app: ASGIApp) -> ASGIApp:
    """No address has a NUL character in it, and PostgreSQL text cannot hold one: refuse it before any route
    passes it on (a clear 400 rather than a database error)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")):
            raise NulInAddress("Web addresses cannot contain NUL characters.")
        await app(scope, receive, send)

    return middleware


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The address of the person making the request.

    X-Forwarded-For is believed only when the direct peer is a trusted proxy, and then we take the right-most
    address that is not itself a trusted proxy (everything left of it could be forged by the client).
    """
    peer = request.client.host if request.client else ""
    trusted = request.app.state.settings.trusted_proxies
    if peer not in trusted:
        return peer
    forwarded = [p.strip() for p in request.headers.get("x-forwarded-for", "").split(",") if p.strip()]
    for candidate in reversed(forwarded):
        try:
            ip_address(candidate)
        except ValueError:
            return peer
        if candidate not in trusted:
            return candidate
    return peer
