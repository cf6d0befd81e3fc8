"""Helpers for the wizard and item tests: reading an item back, forms as a browser sends them, and getting an
item published."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, new_item, ready_file
from tests.conftest import post_form

DESCRIPTION = "Recorded **at night** on the coast. [Liner notes](https://example.com/notes)"


def item_row(db: psycopg.Connection, public_id: str, *columns: str) -> tuple:
    row = db.execute(f"SELECT {', '.join(columns)} FROM items WHERE public_id = %s", (public_id,)).fetchone()
    assert row is not None
    return row


def base_details(kind: str, **override: str) -> dict[str, str]:
    """A details form as a browser sends it, valid for `kind`."""
    data = {"title": "Night Drive", "slug": "", "description": "", "tags": "", "release_date": "",
            "credits": "", "ai_label": "handmade"}
    data.update({"file": {"subtype": ""}, "text": {"body": "Once upon a time."},
                 "audio": {"chapters": ""}}.get(kind, {}))
    return {**data, **override}


def field_errors(html: str) -> list[str]:
    return re.findall(r'<p class="field-error">(.*?)</p>', html, re.S)


def details(**override: str) -> dict[str, str]:
    return {"title": "Night Drive", "ai_label": "handmade",
            "tags": "music/electronic/ambient, field recordings", "description": DESCRIPTION,
            "release_date": "2026-03-14", "credits": "Ana — cello", **override}


def versions(db: psycopg.Connection, public_id: str) -> list[tuple]:
    return db.execute("SELECT v.label, v.changelog, v.published_at IS NOT NULL FROM item_versions v "
                      "JOIN items i ON i.id = v.item_id WHERE i.public_id = %s ORDER BY v.id",
                      (public_id,)).fetchall()


def snapshot(db: psycopg.Connection) -> dict[str, list[tuple]]:
    """Everything an item action could change."""
    return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608 - fixed names
            for table in ("items", "item_versions", "uploads", "projects", "creators", "jobs")}


def publishable_audio(creator: CreatorSetup, directory: Path, price: str = "4.99", **override: str) -> str:
    """An audio draft with details, a fixed price and a ready MP3: everything publishing asks for."""
    public_id = new_item(creator.client, "audio", **details(**override))
    assert post_form(creator.client, f"/creator/items/{public_id}/pricing",
                     {"price_mode": "fixed", "price": price}).status_code == 303
    ready_file(creator.client, creator.settings, public_id, directory)
    return public_id


def publish(client: TestClient, public_id: str):  # type: ignore[no-untyped-def]
    return post_form(client, f"/creator/items/{public_id}/publish", {})
