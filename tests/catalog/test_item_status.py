"""An item's status over HTTP: unlisted, archived, back to draft, and deleting (softly: buyers keep what
they bought)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, main_of, new_item
from tests.catalog.item_helpers import item_row, publish, publishable_audio, snapshot, versions
from tests.conftest import post_form


def set_status(client: TestClient, public_id: str, status: str):  # type: ignore[no-untyped-def]
    return post_form(client, f"/creator/items/{public_id}/status", {"status": status})


# -------------------------------------------------------------------------------- status


@pytest.fixture
def published_text(creator: CreatorSetup) -> str:
    public_id = new_item(creator.client, "text", title="Open letter", ai_label="handmade", body="Dear all.")
    assert publish(creator.client, public_id).status_code == 303
    return public_id


def badge(dashboard_html: str, public_id: str) -> str:
    row = dashboard_html[dashboard_html.index(f'href="/creator/items/{public_id}"'):]
    return re.search(r'<span class="badge badge-(\w+)">', row).group(1)  # type: ignore[union-attr]


def test_unlisted_is_visible_by_link(creator: CreatorSetup, visitor: TestClient, db: psycopg.Connection,
                                     published_text: str) -> None:
    response = set_status(creator.client, published_text, "unlisted")
    assert response.status_code == 303
    assert response.headers["location"] == "/creator"
    assert item_row(db, published_text, "status") == ("unlisted",)
    dashboard = creator.client.get("/creator").text
    assert "Unlisted: only people with the link can find it." in dashboard
    assert badge(dashboard, published_text) == "unlisted"
    page = visitor.get(f"/i/{published_text}")
    assert page.status_code == 200
    assert "<h1>Open letter</h1>" in page.text


def test_owner_of_an_unlisted_item_is_not_told_only_they_can_see_it(creator: CreatorSetup,
                                                                    published_text: str) -> None:
    set_status(creator.client, published_text, "unlisted")
    page = creator.client.get(f"/i/{published_text}").text
    assert "Only you can see" not in page


def test_unlisting_a_draft_runs_the_publish_checks(creator: CreatorSetup, visitor: TestClient,
                                                   db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "text", title="Not yet", ai_label="handmade")
    refused = set_status(creator.client, public_id, "unlisted")
    assert refused.status_code == 409
    assert "Not ready to publish yet: Write the text (Details)." in refused.text
    assert item_row(db, public_id, "status", "published_at") == ("draft", None)
    assert visitor.get(f"/i/{public_id}").status_code == 404

    post_form(creator.client, f"/creator/items/{public_id}/details",
              {"title": "Not yet", "ai_label": "handmade", "body": "Now ready."})
    assert set_status(creator.client, public_id, "unlisted").status_code == 303
    status, published_at = item_row(db, public_id, "status", "published_at")
    assert status == "unlisted" and published_at is not None
    assert visitor.get(f"/i/{public_id}").status_code == 200


def test_archiving_a_draft_does_not_let_it_skip_the_publish_checks(creator: CreatorSetup, visitor: TestClient,
                                                                   db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "audio")  # no title, no AI label, no file
    assert set_status(creator.client, public_id, "archived").status_code == 303
    response = set_status(creator.client, public_id, "unlisted")
    assert visitor.get(f"/i/{public_id}").status_code == 404
    assert item_row(db, public_id, "status") == ("archived",)
    assert response.status_code == 409


def test_archive_and_publish_again(creator: CreatorSetup, visitor: TestClient, db: psycopg.Connection,
                                   published_text: str) -> None:
    first_published_at = item_row(db, published_text, "published_at")[0]
    assert set_status(creator.client, published_text, "archived").status_code == 303
    assert item_row(db, published_text, "status") == ("archived",)
    assert visitor.get(f"/i/{published_text}").status_code == 404
    dashboard = creator.client.get("/creator").text
    assert "Archived: hidden from your page; buyers keep their access." in dashboard
    assert badge(dashboard, published_text) == "archived"
    own = creator.client.get(f"/i/{published_text}")
    assert own.status_code == 200
    assert "Only you can see this archived item." in own.text

    assert publish(creator.client, published_text).status_code == 303
    assert item_row(db, published_text, "status", "published_at") == ("published", first_published_at)
    assert visitor.get(f"/i/{published_text}").status_code == 200


def test_unpublish_makes_it_a_draft_again(creator: CreatorSetup, visitor: TestClient, db: psycopg.Connection,
                                          published_text: str) -> None:
    assert set_status(creator.client, published_text, "draft").status_code == 303
    assert item_row(db, published_text, "status") == ("draft",)
    assert visitor.get(f"/i/{published_text}").status_code == 404
    assert "Unpublished: it is a draft again, visible only to you." in creator.client.get("/creator").text


def test_unknown_status_is_refused(creator: CreatorSetup, db: psycopg.Connection,
                                    published_text: str) -> None:
    before = snapshot(db)
    for status in ("published", "deleted", "", "ARCHIVED"):
        response = set_status(creator.client, published_text, status)
        assert response.status_code == 409, status
        assert "That is not a status an item can be moved to." in response.text
    assert snapshot(db) == before


def test_delete_is_soft(creator: CreatorSetup, visitor: TestClient, db: psycopg.Connection,
                        tmp_path: Path) -> None:
    public_id = publishable_audio(creator, tmp_path)
    publish(creator.client, public_id)
    kept = new_item(creator.client, "text", title="Still here")
    assert public_id in creator.client.get("/creator").text

    response = post_form(creator.client, f"/creator/items/{public_id}/delete", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/creator"
    status, deleted_at = item_row(db, public_id, "status", "deleted_at")
    assert status == "archived" and deleted_at is not None
    assert versions(db, public_id) == [("1.0", "", True)]  # buyers keep what they bought
    assert db.execute("SELECT state, deleted_at FROM uploads").fetchall() == [("ready", None)]

    full = creator.client.get("/creator").text
    assert "“Night Drive” is deleted. Anyone who bought it keeps access." in full
    dashboard = main_of(full)
    assert public_id not in dashboard
    assert kept in dashboard
    assert visitor.get(f"/i/{public_id}").status_code == 404
    assert creator.client.get(f"/i/{public_id}").status_code == 404
    assert creator.client.get(f"/creator/items/{public_id}", follow_redirects=False).status_code == 404
    assert post_form(creator.client, f"/creator/items/{public_id}/status",
                     {"status": "draft"}).status_code == 404
    assert item_row(db, public_id, "status") == ("archived",)
