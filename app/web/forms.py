"""Small helpers shared by every area's forms: read a submitted form, collect field errors, raise them once."""

from __future__ import annotations

import unicodedata
from typing import Any

from litestar import Request

from app.web.errors import FormInvalid


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The submitted fields as plain strings (the last value wins; files are ignored here)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "_csrf_token"}


def clean_text(value: str) -> str:
    """Trimmed, NFC-normalised, without control characters."""
    value = unicodedata.normalize("NFC", value).strip()
    return "".join(ch for ch in value if unicodedata.category(ch)[0] != "C" or ch in "\n\t")


class Errors:
    """Collects field messages; `raise_if_any` stops with a 422 carrying the values to re-fill the form."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, message)

    def length(self, field: str, value: str, label: str, low: int, high: int) -> None:
        if not value and low > 0:
            self.add(field, f"{label} is required.")
        elif len(value) < low:
            self.add(field, f"{label} must be at least {low} characters.")
        elif len(value) > high:
            self.add(field, f"{label} must be at most {high} characters.")

    def raise_if_any(self, values: dict[str, Any]) -> None:
        if self.fields:
            raise FormInvalid(self.fields, values)
