"""Typed domain errors and the one place that maps every error to an HTTP response.

Normal requests get a full error page; HTMX requests get a toast (HX-Trigger) and no swap; invalid forms are
re-rendered with field messages and status 422.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger("fairshelf.errors")


class AppError(Exception):
    """An error a person can understand; `message` is shown to them."""

    status_code = 400
    title = "Something is not right"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class NotFound(AppError):
    status_code = 404
    title = "Not found"


class Forbidden(AppError):
    status_code = 403
    title = "Not allowed"


class Conflict(AppError):
    status_code = 409
    title = "Conflict"


class Throttled(AppError):
    status_code = 429
    title = "Too many attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class LoginRequired(AppError):
    status_code = 401
    title = "Please log in"


class FormInvalid(AppError):
    """Field-level problems with submitted input; the route's form template is rendered again with them."""

    status_code = 422
    title = "Please check the form"

    def __init__(self, errors: dict[str, str], values: dict[str, Any] | None = None) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors
        self.values = values or {}


GENERIC = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Please log in", "You need to log in to see this page."),
    403: ("Not allowed", "You do not have permission to do that."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Not allowed", "That method is not allowed here."),
    413: ("Too large", "What you sent is larger than allowed."),
    429: ("Too many requests", "Please wait a moment and try again."),
    500: ("Something went wrong", "Sorry — something broke on our side. It has been logged; please try again."),
    507: ("Out of space", "The server is out of space right now; please try again later."),
    503: ("Temporarily unavailable", "This part of the site is briefly unavailable; please try again shortly."),
}


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def _toast(status: int, message: str, headers: dict[str, str]) -> Response[bytes]:
    trigger = json.dumps({"toast": {"level": "error", "message": message}})
    return Response(b"", status_code=status, media_type="text/plain",
                    headers={**headers, "HX-Trigger": trigger, "HX-Reswap": "none"})


def error_response(request: Request[Any, Any, Any], status: int, message: str, headers: dict[str, str] | None = None,
                   title: str | None = None) -> Response[Any]:
    headers = headers or {}
    if _is_htmx(request):
        return _toast(status, message, headers)
    accept = request.headers.get("accept", "*/*")
    if "text/html" not in accept and "*/*" not in accept:  # probes and scrapers get data, not a page
        return Response({"error": message}, status_code=status, headers=headers)
    return Template(
        template_name="errors/error.html",
        context={"status": status, "title": title or GENERIC.get(status, GENERIC[400])[0], "message": message},
        status_code=status,
        headers=headers,
    )


def handle_app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    if isinstance(exc, LoginRequired):
        return login_redirect(request)
    if isinstance(exc, FormInvalid):
        opt = request.route_handler.opt
        template = opt.get("form_partial") if _is_htmx(request) and opt.get("form_partial") else opt.get("form_template")
        if template:
            extra = opt.get("form_context", {})
            # A callable builds context that depends on the request (settings, the person); it must not do I/O.
            context = {"errors": exc.errors, "form": exc.values, **(extra(request) if callable(extra) else extra)}
            return Template(template_name=template, context=context, status_code=422)
    return error_response(request, exc.status_code, exc.message, exc.headers, exc.title)


def login_redirect(request: Request[Any, Any, Any]) -> Response[Any]:
    target = "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if _is_htmx(request):
        return Response(b"", status_code=200, media_type="text/plain", headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException):
        return login_redirect(request)
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        message = "Your form expired or came from another site. Reload the page and try again."
    elif isinstance(exc, NotFoundException) or status not in GENERIC:
        message = GENERIC.get(status, GENERIC[400])[1]
    else:
        message = exc.detail if status < 500 and exc.detail and exc.detail != GENERIC[status][0] else GENERIC[status][1]
        if status == 400 and isinstance(exc.extra, list | dict):
            message = GENERIC[400][1]
    return error_response(request, status, message, dict(exc.headers or {}))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR, GENERIC[500][1])


EXCEPTION_HANDLERS = {
    AppError: handle_app_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
