"""Covers and creator pictures through the upload pipeline: checked, thumbnailed as WebP, replaced (releasing
the old one's storage), rejected when damaged, and shown on the public page."""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from psycopg.rows import dict_row

from tests.catalog.conftest import CreatorSetup, new_item, run_jobs
from tests.catalog.pipeline_helpers import (
    THUMBS,
    cover_src,
    fragment,
    keys_under,
    polls,
    publish,
    stored_bytes,
)
from tests.catalog.upload_helpers import Conn, row, send, storage_used, temp_files
from tests.conftest import csrf_token
from tests.media import samples

# -------------------------------------------------------------------------------- covers


@pytest.mark.parametrize("make", [samples.write_png, samples.write_jpeg], ids=["png", "jpeg"])
def test_cover_gets_webp_thumbnails_and_shows_on_the_public_page(
        creator: CreatorSetup, db: Conn, sources: Path, tmp_path: Path, stranger: TestClient,
        make: Any) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio", title="Night Songs", ai_label="handmade")
    song = send(client, item, samples.write_mp3(sources))
    cover_path = make(sources)
    cover = send(client, item, cover_path, purpose="cover")
    run_jobs(settings)

    uploaded = row(db, cover)
    assert uploaded["state"] == "ready", uploaded["reason"]
    assert uploaded["thumbnails"] == list(THUMBS)
    assert uploaded["sha256"] == hashlib.sha256(cover_path.read_bytes()).hexdigest()
    assert uploaded["meta"]["width"] == (200 if cover_path.suffix == ".png" else 300)
    item_row = db.cursor(row_factory=dict_row).execute(
        "SELECT id, cover_upload_id FROM items WHERE public_id = %s", (item,)).fetchone()
    assert item_row["cover_upload_id"] == uploaded["id"]
    keys = keys_under(settings, f"uploads/{cover}/")
    assert keys == {uploaded["storage_key"], *(f"uploads/{cover}/thumb-{s}.webp" for s in THUMBS)}
    for size in THUMBS:
        thumb = stored_bytes(settings, f"uploads/{cover}/thumb-{size}.webp", tmp_path)
        assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"
    assert storage_used(db) == row(db, song)["size_bytes"] + uploaded["size_bytes"]

    publish(client, item)
    page = stranger.get(f"/i/{item}")
    assert page.status_code == 200
    src = cover_src(page.text)
    assert f"uploads/{cover}/thumb-1280.webp" in src
    image = stranger.get(src)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/webp"
    assert image.content == stored_bytes(settings, f"uploads/{cover}/thumb-1280.webp", tmp_path)


def test_a_new_cover_replaces_the_old_one_and_releases_its_storage(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    first = send(client, item, samples.write_png(sources), purpose="cover")
    run_jobs(settings)
    second = send(client, item, samples.write_jpeg(sources), purpose="cover")
    run_jobs(settings)

    assert row(db, second)["state"] == "ready", row(db, second)["reason"]
    assert row(db, first)["deleted_at"] is not None
    assert row(db, second)["deleted_at"] is None
    assert db.execute("SELECT cover_upload_id FROM items").fetchone()[0] == row(db, second)["id"]
    assert storage_used(db) == row(db, second)["size_bytes"]


def test_covers_processed_at_the_same_time_leave_one_cover_counted(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    ids = [send(client, item, samples.write_png(sources, f"cover-{i}.png"), purpose="cover")
           for i in range(4)]
    run_jobs(creator.settings)  # a real worker runs up to 4 jobs at once

    rows = [row(db, public_id) for public_id in ids]
    assert all(r["state"] == "ready" for r in rows)
    current = db.execute("SELECT cover_upload_id FROM items").fetchone()[0]
    live = [r for r in rows if r["deleted_at"] is None]
    assert [r["id"] for r in live] == [current]
    assert storage_used(db) == live[0]["size_bytes"]


def test_corrupt_cover_is_rejected_and_nothing_is_stored(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_truncated_png(sources), purpose="cover")
    run_jobs(settings)

    rejected = row(db, public_id)
    assert rejected["state"] == "rejected"
    assert "damaged or incomplete" in rejected["reason"]
    assert rejected["thumbnails"] == [] and rejected["storage_key"] is None
    assert db.execute("SELECT cover_upload_id FROM items").fetchone()[0] is None
    assert keys_under(settings, "uploads/") == set()
    assert storage_used(db) == 0
    assert temp_files(settings) == []
    shown = fragment(client, public_id)
    assert "rejected" in shown and "damaged or incomplete" in html.unescape(shown) and not polls(shown)


def test_a_program_is_not_a_cover(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client = creator.client
    item = new_item(client, "file")
    public_id = send(client, item, samples.write_exe(sources, "cover.png"), purpose="cover")
    run_jobs(creator.settings)
    assert row(db, public_id)["state"] == "rejected"
    assert "Covers must be PNG, JPEG, WebP or GIF" in row(db, public_id)["reason"]


# -------------------------------------------------------------------------------- creator picture


def test_a_creator_picture_is_checked_thumbnailed_and_replaced(creator: CreatorSetup, db, tmp_path) -> None:
    client = creator.client
    token = csrf_token(client)

    def send(path):  # type: ignore[no-untyped-def]
        with path.open("rb") as handle:
            return client.post("/creator/avatar", data={"_csrf_token": token},
                               files={"file": (path.name, handle, "image/png")}, follow_redirects=False)

    assert send(samples.write_png(tmp_path, "me.png")).status_code == 303
    run_jobs(creator.settings)
    first = db.execute("SELECT avatar_upload_id FROM creators").fetchone()[0]
    assert first is not None
    assert db.execute("SELECT state, thumbnails FROM uploads WHERE id = %s", (first,)).fetchone() == (
        "ready", [320, 640, 1280])
    page = client.get("/creator/profile").text
    assert '<img class="cover-thumb" src="/media/uploads/' in page

    assert send(samples.write_jpeg(tmp_path, "me-again.jpg")).status_code == 303
    run_jobs(creator.settings)
    second = db.execute("SELECT avatar_upload_id FROM creators").fetchone()[0]
    assert second != first
    assert db.execute("SELECT deleted_at IS NOT NULL FROM uploads WHERE id = %s", (first,)).fetchone()[0]
    used = db.execute("SELECT storage_used_bytes FROM creators").fetchone()[0]
    assert used == db.execute("SELECT size_bytes FROM uploads WHERE id = %s", (second,)).fetchone()[0]

    refused = send(samples.write_fake_mp3(tmp_path, "me.png"))
    assert refused.status_code == 303
    run_jobs(creator.settings)
    assert db.execute("SELECT avatar_upload_id FROM creators").fetchone()[0] == second
