"""Publishing an item and its public page over HTTP: what publishing asks for, files that are not ready yet,
slugged links, and drafts seen only by their owner — with real files through the real upload pipeline and
worker."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, main_of, new_item, run_jobs, upload
from tests.catalog.item_helpers import details, item_row, publish, publishable_audio, versions
from tests.conftest import csrf_token, post_form
from tests.media.samples import write_fake_mp3, write_mp3

# -------------------------------------------------------------------------------- publishing


def test_publish_is_refused_with_the_list_of_problems(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "audio")
    step = creator.client.get(f"/creator/items/{public_id}/publish").text
    problems = re.findall(r"<li>(.*?)</li>",
                          step[step.index("Before publishing:"):step.index("</ul>", step.index("Before"))])
    assert problems == ["Give it a title (Details).", "Say whether and how AI was used (Details).",
                        "Upload at least one file and wait until it is ready (Files)."]
    assert f'action="/creator/items/{public_id}/publish"' not in step  # no Publish button yet

    response = publish(creator.client, public_id)
    assert response.status_code == 409
    assert ("Not ready to publish yet: Give it a title (Details). Say whether and how AI was used (Details). "
            "Upload at least one file and wait until it is ready (Files).") in response.text
    assert item_row(db, public_id, "status", "published_at") == ("draft", None)
    assert versions(db, public_id) == [("1.0", "", False)]

    # From HTMX, the same refusal is a toast and no swap.
    toast = creator.client.post(f"/creator/items/{public_id}/publish",
                                data={"_csrf_token": csrf_token(creator.client)},
                                headers={"HX-Request": "true"}, follow_redirects=False)
    assert toast.status_code == 409
    assert toast.headers["HX-Reswap"] == "none"
    assert "Not ready to publish yet: Give it a title (Details)." in json.loads(
        toast.headers["HX-Trigger"])["toast"]["message"]
    assert item_row(db, public_id, "status") == ("draft",)


def test_text_without_body_cannot_be_published(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "text", title="Essay", ai_label="assisted", body="   ")
    response = publish(creator.client, public_id)
    assert response.status_code == 409
    assert "Not ready to publish yet: Write the text (Details)." in response.text
    assert "Upload at least one file" not in response.text
    assert item_row(db, public_id, "status") == ("draft",)

    post_form(creator.client, f"/creator/items/{public_id}/details",
              {"title": "Essay", "ai_label": "assisted", "body": "Now there is text."})
    assert publish(creator.client, public_id).status_code == 303
    assert item_row(db, public_id, "status") == ("published",)


@pytest.mark.parametrize("kind", ["video", "image"])
def test_file_like_items_need_a_file_that_is_ready(creator: CreatorSetup, db: psycopg.Connection,
                                                   tmp_path: Path, kind: str) -> None:
    public_id = new_item(creator.client, kind, title="Thing", ai_label="generated")
    refused = publish(creator.client, public_id)
    assert refused.status_code == 409
    assert ("Not ready to publish yet: Upload at least one file and wait until it is ready (Files)."
            in refused.text)

    # A file that the worker rejects does not count.
    assert upload(creator.client, public_id, write_fake_mp3(tmp_path)).status_code == 303
    run_jobs(creator.settings)
    assert db.execute("SELECT state FROM uploads").fetchall() == [("rejected",)]
    assert publish(creator.client, public_id).status_code == 409
    assert item_row(db, public_id, "status") == ("draft",)


def test_a_file_still_being_checked_does_not_count(creator: CreatorSetup, db: psycopg.Connection,
                                                  tmp_path: Path) -> None:
    public_id = new_item(creator.client, "audio", **details())
    assert upload(creator.client, public_id, write_mp3(tmp_path)).status_code == 303
    assert db.execute("SELECT state FROM uploads").fetchall() == [("received",)]
    assert publish(creator.client, public_id).status_code == 409
    run_jobs(creator.settings)
    assert publish(creator.client, public_id).status_code == 303
    assert item_row(db, public_id, "status") == ("published",)


def test_publish_with_a_ready_mp3_and_the_public_page(creator: CreatorSetup, visitor: TestClient,
                                                      db: psycopg.Connection, tmp_path: Path) -> None:
    public_id = publishable_audio(creator, tmp_path)
    step = creator.client.get(f"/creator/items/{public_id}/publish").text
    assert "Before publishing:" not in step
    assert f'action="/creator/items/{public_id}/publish"' in step

    response = publish(creator.client, public_id)
    assert response.status_code == 303
    assert response.headers["location"] == f"/i/{public_id}"
    status, published_at = item_row(db, public_id, "status", "published_at")
    assert status == "published" and published_at is not None
    assert versions(db, public_id) == [("1.0", "", True)]
    assert "“Night Drive” is published." in creator.client.get(f"/i/{public_id}").text

    page = visitor.get(f"/i/{public_id}")
    assert page.status_code == 200
    content = main_of(page.text)
    assert "<h1>Night Drive</h1>" in content
    assert '<p class="price">' in content and "$4.99" in content
    assert re.findall(r'<a class="tag" href="([^"]*)">(.*?)</a>', content) == [
        ("/t/music/electronic/ambient", "music / electronic / ambient"), ("/t/field_recordings", "field recordings")]
    assert "Recorded <strong>at night</strong> on the coast." in content
    assert '<a href="https://example.com/notes" rel="nofollow noopener ugc">Liner notes</a>' in content
    assert '<span class="badge badge-ai">Handmade</span>' in content
    assert "<dt>Released</dt><dd>2026-03-14</dd>" in content
    assert "@maker" in content
    assert "<strong>1.0</strong>" in content
    assert "Only you can see" not in content
    assert "song.mp3" not in content  # the file list is for the owner only
    assert f'<link rel="canonical" href="http://testserver.local/i/{public_id}">' in page.text
    assert "This item is published at" in creator.client.get(f"/creator/items/{public_id}/publish").text


@pytest.mark.parametrize("suffix", ["night-drive", "anything-at-all", "old-title"])
def test_slugged_links_redirect_permanently_to_the_item(creator: CreatorSetup, visitor: TestClient,
                                                        suffix: str) -> None:
    public_id = new_item(creator.client, "text", title="Night Drive", ai_label="handmade", body="Words.")
    publish(creator.client, public_id)
    response = visitor.get(f"/i/{public_id}/{suffix}", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == f"/i/{public_id}"
    assert visitor.get(f"/i/{public_id}/{suffix}").status_code == 200


def test_unknown_item_is_404(visitor: TestClient) -> None:
    response = visitor.get("/i/doesnotexist1")
    assert response.status_code == 404
    assert "There is no item at this address." in response.text


def test_a_draft_is_seen_only_by_its_owner(creator: CreatorSetup, rival: TestClient,
                                           visitor: TestClient) -> None:
    public_id = new_item(creator.client, "text", title="Secret draft", ai_label="handmade", body="Words.")
    assert visitor.get(f"/i/{public_id}").status_code == 404
    assert "Secret draft" not in visitor.get(f"/i/{public_id}").text
    assert rival.get(f"/i/{public_id}").status_code == 404
    own = creator.client.get(f"/i/{public_id}")
    assert own.status_code == 200
    assert "Only you can see this draft item." in own.text
    assert f'<a href="/creator/items/{public_id}">Edit it</a>' in own.text
