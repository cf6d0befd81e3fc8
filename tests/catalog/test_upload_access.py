"""Who may touch which upload (another creator, an anonymous visitor, a fan who does not sell), and removing
files: what is released, what stays for buyers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, become_creator, new_item, run_jobs, upload
from tests.catalog.upload_helpers import Conn, count, error_text, row, send, storage_used, temp_files
from tests.conftest import post_form, sign_up
from tests.media import samples

# -------------------------------------------------------------------------------- authorisation


@pytest.fixture
def intruder(browser: TestClient) -> TestClient:
    become_creator(browser, "intruder")
    return browser


def test_another_creator_cannot_touch_your_uploads(creator: CreatorSetup, db: Conn, sources: Path,
                                                   intruder: TestClient) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))
    run_jobs(settings)
    before = row(db, public_id)
    used = storage_used(db)

    theirs = upload(intruder, item, samples.write_mp3(sources, "mine.mp3"))
    assert theirs.status_code == 404
    assert upload(intruder, item, samples.write_png(sources), purpose="cover").status_code == 404
    assert intruder.get(f"/creator/uploads/{public_id}").status_code == 404
    assert intruder.get(f"/creator/uploads/{public_id}", headers={"HX-Request": "true"}).status_code == 404
    assert post_form(intruder, f"/creator/uploads/{public_id}/remove", {}).status_code == 404
    assert intruder.get(f"/creator/items/{item}/files").status_code == 404

    after = row(db, public_id)
    assert after["deleted_at"] is None and after["state"] == before["state"] == "ready"
    assert storage_used(db) == used and storage_used(db, "intruder") == 0
    assert count(db, "uploads") == 1
    assert temp_files(settings) == []

    # Their own item works as usual, and is just as private from the first creator.
    own = new_item(intruder, "audio")
    their_upload = send(intruder, own, samples.write_mp3(sources, "theirs.mp3"))
    assert client.get(f"/creator/uploads/{their_upload}").status_code == 404
    assert upload(client, own, samples.write_mp3(sources)).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(creator: CreatorSetup, db: Conn, sources: Path,
                                               browser: TestClient) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))

    response = upload(browser, item, samples.write_mp3(sources))
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/creator/items/{item}/uploads"
    hx = upload(browser, item, samples.write_mp3(sources), htmx=True)
    assert hx.headers["hx-redirect"].startswith("/login?next=")
    fragment = browser.get(f"/creator/uploads/{public_id}", follow_redirects=False)
    assert fragment.status_code == 303 and fragment.headers["location"].startswith("/login")
    removal = post_form(browser, f"/creator/uploads/{public_id}/remove", {})
    assert removal.status_code == 303 and removal.headers["location"].startswith("/login")
    assert count(db, "uploads") == 1 and row(db, public_id)["deleted_at"] is None
    assert len(temp_files(settings)) == 1


def test_a_fan_who_does_not_sell_cannot_upload(creator: CreatorSetup, db: Conn, sources: Path,
                                               browser: TestClient) -> None:
    item = new_item(creator.client, "audio")
    sign_up(browser, "just_a_fan")
    response = upload(browser, item, samples.write_mp3(sources))
    assert response.status_code == 403
    assert "Start selling first" in error_text(response)
    assert count(db, "uploads") == 0


# -------------------------------------------------------------------------------- removing


def remove(client: TestClient, public_id: str) -> httpx.Response:
    return post_form(client, f"/creator/uploads/{public_id}/remove", {})


def test_removing_a_file_of_an_unpublished_version_releases_its_storage(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    kept = send(client, item, samples.write_mp3(sources, "kept.mp3"))
    gone = send(client, item, samples.write_wav(sources, "gone.wav"))
    run_jobs(settings)
    assert storage_used(db) == row(db, kept)["size_bytes"] + row(db, gone)["size_bytes"]

    response = remove(client, gone)
    assert response.status_code == 303
    assert response.headers["location"] == f"/creator/items/{item}/files"
    assert row(db, gone)["deleted_at"] is not None
    assert storage_used(db) == row(db, kept)["size_bytes"]
    page = client.get(f"/creator/items/{item}/files").text
    assert f'id="upload-{kept}"' in page and f'id="upload-{gone}"' not in page
    assert client.get(f"/creator/uploads/{gone}").status_code == 404
    assert remove(client, gone).status_code == 404  # removing twice releases nothing twice
    assert storage_used(db) == row(db, kept)["size_bytes"]


def test_removing_a_rejected_file_does_not_release_its_storage_again(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    kept = send(client, item, samples.write_mp3(sources))
    fake = send(client, item, samples.write_exe(sources, "fake.mp3"))
    run_jobs(settings)
    assert row(db, fake)["state"] == "rejected"
    assert storage_used(db) == row(db, kept)["size_bytes"]
    assert remove(client, fake).status_code == 303
    assert storage_used(db) == row(db, kept)["size_bytes"]


def test_a_file_still_being_processed_cannot_be_removed(creator: CreatorSetup, db: Conn,
                                                        sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    public_id = send(client, item, samples.write_mp3(sources))
    response = remove(client, public_id)
    assert response.status_code == 409
    assert "still being processed" in error_text(response)
    assert row(db, public_id)["deleted_at"] is None
    assert storage_used(db) == row(db, public_id)["size_bytes"]


def test_files_of_a_published_version_stay(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio", title="Night Songs", ai_label="handmade")
    published = send(client, item, samples.write_mp3(sources))
    run_jobs(settings)
    assert post_form(client, f"/creator/items/{item}/publish", {}).status_code == 303
    used = storage_used(db)

    refused = remove(client, published)
    assert refused.status_code == 409
    assert "stay available to buyers" in error_text(refused)
    assert row(db, published)["deleted_at"] is None
    assert storage_used(db) == used

    # Files go into a new version instead, which can be changed until it is published.
    started = post_form(client, f"/creator/items/{item}/versions",
                        {"label": "1.1", "changelog": "Remastered"})
    assert started.status_code == 303, started.text
    draft = send(client, item, samples.write_wav(sources))
    run_jobs(settings)
    assert remove(client, draft).status_code == 303
    assert storage_used(db) == used
    assert remove(client, published).status_code == 409


# -------------------------------------------------------------------------------- found on the way


def test_a_creator_can_start_two_items_before_naming_either(creator: CreatorSetup, db: Conn) -> None:
    client = creator.client
    first = post_form(client, "/creator/items/new", {"type": "audio"})
    assert first.status_code == 303
    second = post_form(client, "/creator/items/new", {"type": "file"})
    assert second.status_code == 303, second.status_code
    assert count(db, "items") == 2
