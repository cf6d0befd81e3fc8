"""Preview clips, and playing a free item (or your own) from its page."""

from __future__ import annotations

from pathlib import Path

import psycopg
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, run_jobs, upload
from tests.catalog.item_helpers import publish, publishable_audio
from tests.conftest import post_form
from tests.media.samples import write_mp3


def test_a_preview_clip_plays_for_visitors_of_a_paid_item(creator: CreatorSetup, visitor: TestClient,
                                                           tmp_path: Path, db: psycopg.Connection) -> None:
    public_id = publishable_audio(creator, tmp_path)
    clip = write_mp3(tmp_path, "clip.mp3")
    assert upload(creator.client, public_id, clip, purpose="preview").status_code == 303
    run_jobs(creator.settings)
    assert publish(creator.client, public_id).status_code == 303
    (preview_id,) = db.execute("SELECT preview_upload_id FROM items WHERE public_id = %s", (public_id,)).fetchone()
    assert db.execute("SELECT purpose, state FROM uploads WHERE id = %s", (preview_id,)).fetchone() == (
        "preview", "ready")

    page = visitor.get(f"/i/{public_id}").text
    assert f'src="/i/{public_id}/preview"' in page and "Preview" in page
    assert f"/i/{public_id}/stream" not in page  # the full file is for buyers
    assert visitor.get(f"/i/{public_id}/stream", follow_redirects=False).status_code == 403

    link = visitor.get(f"/i/{public_id}/preview", follow_redirects=False)
    assert link.status_code == 302 and link.headers["cache-control"] == "private, no-store"
    played = visitor.get(link.headers["location"], headers={"Range": "bytes=0-99"})
    assert played.status_code == 206 and played.content == clip.read_bytes()[:100]

    # The owner plays the real thing.
    assert f'src="/i/{public_id}/stream"' in creator.client.get(f"/i/{public_id}").text
    assert creator.client.get(f"/i/{public_id}/stream", follow_redirects=False).status_code == 302


def test_a_new_preview_replaces_the_old_one(creator: CreatorSetup, tmp_path: Path, db: psycopg.Connection) -> None:
    public_id = publishable_audio(creator, tmp_path)
    for name in ("one.mp3", "two.mp3"):
        assert upload(creator.client, public_id, write_mp3(tmp_path, name), purpose="preview").status_code == 303
    run_jobs(creator.settings)
    rows = db.execute("SELECT filename, deleted_at IS NULL FROM uploads WHERE purpose = 'preview' ORDER BY id").fetchall()
    assert rows == [("one.mp3", False), ("two.mp3", True)]
    assert db.execute("SELECT u.filename FROM items i JOIN uploads u ON u.id = i.preview_upload_id").fetchone() == (
        "two.mp3",)


def test_previews_are_for_audio_and_video_only(creator: CreatorSetup, tmp_path: Path) -> None:
    public_id = post_form(creator.client, "/creator/items/new", {"type": "text"}).headers["location"].split("/")[3]
    refused = upload(creator.client, public_id, write_mp3(tmp_path), purpose="preview")
    assert refused.status_code == 400 and "Only audio and video items have a preview clip." in refused.text


def test_a_free_audio_item_plays_inline_for_everyone(creator: CreatorSetup, visitor: TestClient,
                                                     tmp_path: Path) -> None:
    public_id = publishable_audio(creator, tmp_path)
    assert post_form(creator.client, f"/creator/items/{public_id}/pricing", {"price_mode": "free"}).status_code == 303
    assert publish(creator.client, public_id).status_code == 303
    page = visitor.get(f"/i/{public_id}").text
    assert f'<audio controls preload="none" src="/i/{public_id}/stream">' in page and "Free to play" in page
    link = visitor.get(f"/i/{public_id}/stream", follow_redirects=False)
    assert link.status_code == 302
    assert visitor.get(link.headers["location"]).content == (tmp_path / "song.mp3").read_bytes()
