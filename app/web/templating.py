"""The Jinja environment shared by pages and emails, and the helpers templates use."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from app.settings import ROOT, Settings
from app.web.flash import get_flashes
from app.web.text import duration, format_money, human_size

TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"


@lru_cache(maxsize=256)
def _fingerprint(path: Path, mtime: float) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """A static file's URL with a content fingerprint, so it can be cached forever and still change on release."""
    path = STATIC / name
    try:
        return f"/static/{name}?v={_fingerprint(path, path.stat().st_mtime)}"
    except FileNotFoundError:
        return f"/static/{name}"


def timeago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((datetime.now(UTC) - value).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def viewer(request: Any) -> Any:
    """The signed-in person, or None (also on pages, like a 404, that no route's middleware saw)."""
    return request.scope.get("user")


def choices(objects: Any, value: str | None = None, label: str | None = None,
            empty: str | None = None) -> list[tuple[str, str]]:
    """(value, label) pairs for a <select>: from plain strings, or from objects' attributes."""
    pairs = [(str(getattr(o, value)) if value else str(o), str(getattr(o, label)) if label else str(o))
             for o in objects]
    return ([("", empty)] if empty is not None else []) + pairs


def make_environment(settings: Settings, directory: Path = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        auto_reload=settings.mode != "production",
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        static_url=static_url,
        get_flashes=get_flashes,
        viewer=viewer,
        choices=choices,
        site_name="Fairshelf",
        base_url=settings.base_url,
        mode=settings.mode,
    )
    env.filters["timeago"] = timeago
    env.filters["filesize"] = human_size
    env.filters["money"] = format_money
    env.filters["duration"] = duration
    return env
