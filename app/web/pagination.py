"""Keyset pagination: a page ends with a cursor holding the sort key of its last row, and the next page starts
strictly after it. Unlike OFFSET, nothing is skipped or shown twice while new rows arrive, and page 1,000 costs
what page 1 costs."""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime
from typing import Any

from app.web.errors import AppError

MAX_CURSOR = 400  # characters; a real cursor is well under 100


class BadCursor(AppError):
    status_code = 400
    title = "This page link is broken"


def encode(values: tuple[Any, ...]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None, kinds: tuple[type, ...]) -> tuple[Any, ...] | None:
    """The sort key in `cursor`, checked against the expected kinds (int, float, str, datetime)."""
    if not cursor:
        return None
    message = "This “more results” link is broken or out of date. Start again from the first page."
    if len(cursor) > MAX_CURSOR:
        raise BadCursor(message)
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor(message) from None
    if not isinstance(raw, list) or len(raw) != len(kinds):
        raise BadCursor(message)
    values: list[Any] = []
    for value, kind in zip(raw, kinds, strict=True):
        if kind is datetime:
            try:
                value = datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                value = None
            if value is None or value.tzinfo is None:
                raise BadCursor(message)
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise BadCursor(message)
            value = float(value)
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**63 - 1:
                raise BadCursor(message)
        elif not isinstance(value, kind):
            raise BadCursor(message)
        values.append(value)
    return tuple(values)


def page_size(raw: str | None, default: int = 24, largest: int = 60) -> int:
    """A requested page size, capped: absurd or malformed sizes fall back to something sensible."""
    try:
        wanted = int(raw) if raw else default
    except ValueError:
        return default
    return max(1, min(wanted, largest))
