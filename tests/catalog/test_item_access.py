"""Who may touch an item over HTTP: another creator and an anonymous visitor change nothing, the owner can do
all of it, and every post needs the CSRF token."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, new_item, ready_file, upload
from tests.catalog.item_helpers import item_row, publish, publishable_audio, snapshot
from tests.conftest import csrf_token, post_form
from tests.media.samples import write_mp3

# -------------------------------------------------------------------------------- who may do what


@pytest.fixture
def shelf(creator: CreatorSetup, tmp_path: Path) -> dict[str, str]:
    """The first creator's items, in states where each action would change something if it were allowed:
    a published audio item with a version 1.1 in progress (with a ready file), and a text draft ready to
    publish."""
    audio = publishable_audio(creator, tmp_path)
    publish(creator.client, audio)
    assert post_form(creator.client, f"/creator/items/{audio}/versions", {"label": "1.1"}).status_code == 303
    ready_file(creator.client, creator.settings, audio, tmp_path, name="take-two.mp3")
    text = new_item(creator.client, "text", title="Draft letter", ai_label="handmade", body="Words.")
    return {"audio": audio, "text": text}


def item_requests(public_id: str) -> list[tuple[str, str, dict[str, str]]]:
    url = f"/creator/items/{public_id}"
    return [
        ("GET", url, {}),
        *[("GET", f"{url}/{step}", {}) for step in ("details", "files", "pricing", "publish")],
        ("POST", f"{url}/details", {"title": "Hijacked", "ai_label": "generated", "body": "Mine now"}),
        ("POST", f"{url}/validate/details", {"title": ""}),
        ("POST", f"{url}/validate/pricing", {"price_mode": "fixed", "price": "x"}),
        ("POST", f"{url}/files", {}),
        ("POST", f"{url}/versions", {"label": "6.6", "changelog": "hijack"}),
        ("POST", f"{url}/versions/publish", {}),
        ("POST", f"{url}/pricing", {"price_mode": "fixed", "price": "999"}),
        ("POST", f"{url}/publish", {}),
        ("POST", f"{url}/status", {"status": "draft"}),
        ("POST", f"{url}/status", {"status": "archived"}),
        ("POST", f"{url}/status", {"status": "unlisted"}),
        ("POST", f"{url}/delete", {}),
    ]


def send(client: TestClient, method: str, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(url, follow_redirects=False)
    return post_form(client, url, data)


def test_another_creator_gets_404_everywhere_and_changes_nothing(shelf: dict[str, str], rival: TestClient,
                                                                db: psycopg.Connection,
                                                                tmp_path: Path) -> None:
    before = snapshot(db)
    for public_id in shelf.values():
        for method, url, data in item_requests(public_id):
            response = send(rival, method, url, data)
            assert response.status_code == 404, (method, url)
            assert "There is no such item among yours." in response.text, (method, url)
        uploaded = upload(rival, public_id, write_mp3(tmp_path, "intruder.mp3"))
        assert uploaded.status_code == 404
    assert snapshot(db) == before
    assert "Draft letter" not in rival.get("/creator").text


def test_an_anonymous_visitor_is_sent_to_log_in_and_changes_nothing(
        shelf: dict[str, str], visitor: TestClient, db: psycopg.Connection, tmp_path: Path) -> None:
    before = snapshot(db)
    for public_id in shelf.values():
        for method, url, data in item_requests(public_id):
            response = send(visitor, method, url, data)
            assert response.status_code == 303, (method, url)
            assert response.headers["location"] == f"/login?next={url}", (method, url)
        uploaded = upload(visitor, public_id, write_mp3(tmp_path, "intruder.mp3"))
        assert uploaded.status_code == 303
        assert uploaded.headers["location"].startswith("/login?next=")
    assert snapshot(db) == before


def test_the_owner_can_do_all_of_it(shelf: dict[str, str], creator: CreatorSetup,
                                    db: psycopg.Connection) -> None:
    """The control for the two tests above: the same requests from the owner do change the shelf."""
    before = snapshot(db)
    for method, url, data in item_requests(shelf["text"])[:-1]:  # all but deleting it
        if url.endswith("/files"):
            continue  # text items have no files step
        response = send(creator.client, method, url, data)
        assert response.status_code in (200, 303, 409), (method, url, response.status_code)
    assert post_form(creator.client, f"/creator/items/{shelf['audio']}/versions/publish",
                     {}).status_code == 303
    assert snapshot(db) != before
    assert item_row(db, shelf["text"], "title", "price_cents") == ("Hijacked", 99900)


def test_every_post_needs_the_csrf_token(shelf: dict[str, str], creator: CreatorSetup, db: psycopg.Connection,
                                         tmp_path: Path) -> None:
    client = creator.client
    project = post_form(client, "/creator/projects/new", {"name": "Tapes"})
    assert project.status_code == 303
    project_id = db.execute("SELECT public_id FROM projects").fetchone()[0]  # type: ignore[index]
    before = snapshot(db)
    posts = [(url, data) for public_id in shelf.values()
             for method, url, data in item_requests(public_id) if method == "POST"]
    posts += [("/creator/items/new", {"type": "audio"}), ("/creator/profile", {"bio": "changed"}),
              ("/creator/projects/new", {"name": "Other"}),
              (f"/creator/projects/{project_id}", {"name": "Renamed"}),
              ("/sell", {"tier": "basic", "currency": "USD"})]
    for url, data in posts:
        for token in ({}, {"_csrf_token": "forged"}):
            response = client.post(url, data={**data, **token}, follow_redirects=False)
            assert response.status_code == 403, (url, token)
            assert ("Your form expired or came from another site. Reload the page and try again."
                    in response.text)
    # Uploads parse their own body; the token is checked there.
    with write_mp3(tmp_path, "no-token.mp3").open("rb") as handle:
        response = client.post(f"/creator/items/{shelf['audio']}/uploads", files={"file": ("a.mp3", handle)},
                               follow_redirects=False)
    assert response.status_code == 403
    assert "Your form expired or came from another site." in response.text
    assert snapshot(db) == before
    assert csrf_token(client)  # the cookie was there all along: only the form field was missing
