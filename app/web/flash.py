"""One-shot messages carried across a redirect in a signed cookie (works for visitors and signed-in people)."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from litestar import Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.types import Message, Scope

COOKIE = "fairshelf_flash"
LEVELS = {"success", "info", "warning", "error"}


def _serializer(scope: Scope) -> URLSafeSerializer:
    return URLSafeSerializer(scope["app"].state.settings.secret_key, salt="flash")


def flash(request: Request[Any, Any, Any], message: str, level: str = "success") -> None:
    """Show `message` on the next page this browser renders."""
    assert level in LEVELS
    request.state.setdefault("flash_out", []).append([level, message])


def get_flashes(request: Request[Any, Any, Any]) -> list[tuple[str, str]]:
    """The messages waiting for this browser; reading them clears the cookie."""
    raw = request.cookies.get(COOKIE)
    pending = [tuple(m) for m in request.state.get("flash_out", [])]
    if not raw:
        request.state["flash_out"] = []
        return pending  # type: ignore[return-value]
    request.state["flash_consumed"] = True
    request.state["flash_out"] = []
    try:
        stored = _serializer(request.scope).loads(raw)
    except BadSignature:
        return pending  # type: ignore[return-value]
    return [(str(level), str(msg)) for level, msg in stored if level in LEVELS] + pending  # type: ignore[misc]


async def write_flash_cookie(message: Message, scope: Scope) -> None:
    """before_send hook: persist new messages, or clear the cookie once the page showed them."""
    if message["type"] != "http.response.start":
        return
    state = scope.get("state", {})
    pending = state.get("flash_out")
    if pending:
        value = _serializer(scope).dumps(pending)
        cookie = Cookie(key=COOKIE, value=value, path="/", httponly=True, samesite="lax", max_age=300,
                        secure=scope["app"].state.settings.secure_cookies)
    elif state.get("flash_consumed"):
        cookie = Cookie(key=COOKIE, value="", path="/", max_age=0, expires=0)
    else:
        return
    MutableScopeHeaders.from_message(message).add("set-cookie", cookie.to_header(header=""))


__all__ = ["flash", "get_flashes", "write_flash_cookie"]
