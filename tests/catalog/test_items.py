"""Publishing and the public item page, status changes and deleting, versions, and who may touch an item — all
over HTTP against the real database, with real files through the real upload pipeline and worker."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, field_of, main_of, new_item, ready_file, run_jobs, upload
from tests.conftest import csrf_token, post_form
from tests.media.samples import write_fake_mp3, write_mp3

DESCRIPTION = "Recorded **at night** on the coast. [Liner notes](https://example.com/notes)"


def details(**override: str) -> dict[str, str]:
    return {"title": "Night Drive", "ai_label": "handmade", "tags": "music/electronic/ambient, field recordings",
            "description": DESCRIPTION, "release_date": "2026-03-14", "credits": "Ana — cello", **override}


def item_row(db: psycopg.Connection, public_id: str, *columns: str) -> tuple:
    row = db.execute(f"SELECT {', '.join(columns)} FROM items WHERE public_id = %s", (public_id,)).fetchone()
    assert row is not None
    return row


def versions(db: psycopg.Connection, public_id: str) -> list[tuple]:
    return db.execute("SELECT v.label, v.changelog, v.published_at IS NOT NULL FROM item_versions v "
                      "JOIN items i ON i.id = v.item_id WHERE i.public_id = %s ORDER BY v.id", (public_id,)).fetchall()


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


def set_status(client: TestClient, public_id: str, status: str):  # type: ignore[no-untyped-def]
    return post_form(client, f"/creator/items/{public_id}/status", {"status": status})


# ----------------------------------------------------------------------------------------------- publishing


def test_publish_is_refused_with_the_list_of_problems(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "audio")
    step = creator.client.get(f"/creator/items/{public_id}/publish").text
    problems = re.findall(r"<li>(.*?)</li>", step[step.index("Before publishing:"):step.index("</ul>",
                                                                                           step.index("Before"))])
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
    toast = creator.client.post(f"/creator/items/{public_id}/publish", data={"_csrf_token": csrf_token(creator.client)},
                                headers={"HX-Request": "true"}, follow_redirects=False)
    assert toast.status_code == 409
    assert toast.headers["HX-Reswap"] == "none"
    assert "Not ready to publish yet: Give it a title (Details)." in json.loads(toast.headers["HX-Trigger"])["toast"][
        "message"]
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
def test_file_like_items_need_a_file_that_is_ready(creator: CreatorSetup, db: psycopg.Connection, tmp_path: Path,
                                                   kind: str) -> None:
    public_id = new_item(creator.client, kind, title="Thing", ai_label="generated")
    refused = publish(creator.client, public_id)
    assert refused.status_code == 409
    assert "Not ready to publish yet: Upload at least one file and wait until it is ready (Files)." in refused.text

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
    assert re.findall(r'<li class="tag">(.*?)</li>', content) == ["music/electronic/ambient", "field recordings"]
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
def test_slugged_links_redirect_permanently_to_the_item(creator: CreatorSetup, visitor: TestClient, suffix: str) -> None:
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


def test_a_draft_is_seen_only_by_its_owner(creator: CreatorSetup, rival: TestClient, visitor: TestClient) -> None:
    public_id = new_item(creator.client, "text", title="Secret draft", ai_label="handmade", body="Words.")
    assert visitor.get(f"/i/{public_id}").status_code == 404
    assert "Secret draft" not in visitor.get(f"/i/{public_id}").text
    assert rival.get(f"/i/{public_id}").status_code == 404
    own = creator.client.get(f"/i/{public_id}")
    assert own.status_code == 200
    assert "Only you can see this draft item." in own.text
    assert f'<a href="/creator/items/{public_id}">Edit it</a>' in own.text


# ----------------------------------------------------------------------------------------------- status


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


def test_unknown_status_is_refused(creator: CreatorSetup, db: psycopg.Connection, published_text: str) -> None:
    before = snapshot(db)
    for status in ("published", "deleted", "", "ARCHIVED"):
        response = set_status(creator.client, published_text, status)
        assert response.status_code == 409, status
        assert "That is not a status an item can be moved to." in response.text
    assert snapshot(db) == before


def test_delete_is_soft(creator: CreatorSetup, visitor: TestClient, db: psycopg.Connection, tmp_path: Path) -> None:
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
    assert post_form(creator.client, f"/creator/items/{public_id}/status", {"status": "draft"}).status_code == 404
    assert item_row(db, public_id, "status") == ("archived",)


# ----------------------------------------------------------------------------------------------- versions


def test_versions_of_a_published_item(creator: CreatorSetup, visitor: TestClient, db: psycopg.Connection,
                                      tmp_path: Path) -> None:
    client = creator.client
    public_id = publishable_audio(creator, tmp_path)
    publish(client, public_id)
    url = f"/creator/items/{public_id}"

    duplicate = post_form(client, f"{url}/versions", {"label": "1.0", "changelog": "Again"})
    assert duplicate.status_code == 422
    assert "There is already a version 1.0." in field_of(duplicate.text, "label")
    empty = post_form(client, f"{url}/versions", {"label": "  ", "changelog": ""})
    assert empty.status_code == 422
    assert "Version is required." in field_of(empty.text, "label")
    assert versions(db, public_id) == [("1.0", "", True)]

    started = post_form(client, f"{url}/versions", {"label": "1.1", "changelog": "Remastered ending."})
    assert started.status_code == 303
    assert started.headers["location"] == f"{url}/files"
    assert versions(db, public_id) == [("1.0", "", True), ("1.1", "Remastered ending.", False)]
    files_page = client.get(f"{url}/files").text
    assert "Version 1.1 started: add its files, then publish it." in files_page
    assert "Publish version 1.1" in files_page

    second = post_form(client, f"{url}/versions", {"label": "1.2", "changelog": ""})
    assert second.status_code == 409
    assert "Finish or publish the version you started before starting another." in second.text

    empty_publish = post_form(client, f"{url}/versions/publish", {})
    assert empty_publish.status_code == 409
    assert "Version 1.1 has no ready files yet." in empty_publish.text
    assert versions(db, public_id)[1] == ("1.1", "Remastered ending.", False)

    # Fans see only published versions; the owner sees the one in progress, marked.
    public = main_of(visitor.get(f"/i/{public_id}").text)
    assert "<strong>1.0</strong>" in public and "<strong>1.1</strong>" not in public
    own = main_of(client.get(f"/i/{public_id}").text)
    assert '<strong>1.1</strong> <span class="badge badge-draft">not published</span>' in own

    ready_file(client, creator.settings, public_id, tmp_path, name="song-remastered.mp3")
    published = post_form(client, f"{url}/versions/publish", {})
    assert published.status_code == 303
    assert versions(db, public_id) == [("1.0", "", True), ("1.1", "Remastered ending.", True)]
    public = main_of(visitor.get(f"/i/{public_id}").text)
    labels = re.findall(r"<li><strong>([\d.]+)</strong>", public)
    assert labels == ["1.1", "1.0"]  # newest first, the old one still listed
    assert "Remastered ending." in public

    # A published version's files are fixed: a new file needs a new version.
    refused = upload(client, public_id, write_mp3(tmp_path, "extra.mp3"))
    assert refused.status_code == 400
    assert "Start a new version before adding files" in refused.text


def test_no_second_version_while_the_first_is_unpublished(creator: CreatorSetup, db: psycopg.Connection) -> None:
    audio = new_item(creator.client, "audio", **details())
    response = post_form(creator.client, f"/creator/items/{audio}/versions", {"label": "2.0"})
    assert response.status_code == 409
    assert "Finish or publish the version you started before starting another." in response.text
    text = new_item(creator.client, "text", title="Essay", ai_label="handmade", body="Words.")
    publish(creator.client, text)
    refused = post_form(creator.client, f"/creator/items/{text}/versions", {"label": "2.0"})
    assert refused.status_code == 409
    assert "Text items do not have versions; edit the text instead." in refused.text
    assert db.execute("SELECT label FROM item_versions").fetchall() == [("1.0",)]


# ----------------------------------------------------------------------------------------------- who may do what


@pytest.fixture
def shelf(creator: CreatorSetup, tmp_path: Path) -> dict[str, str]:
    """The first creator's items, in states where each action would change something if it were allowed:
    a published audio item with a version 1.1 in progress (with a ready file), and a text draft ready to publish."""
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
                                                                db: psycopg.Connection, tmp_path: Path) -> None:
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


def test_an_anonymous_visitor_is_sent_to_log_in_and_changes_nothing(shelf: dict[str, str], visitor: TestClient,
                                                                    db: psycopg.Connection, tmp_path: Path) -> None:
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


def test_the_owner_can_do_all_of_it(shelf: dict[str, str], creator: CreatorSetup, db: psycopg.Connection) -> None:
    """The control for the two tests above: the same requests from the owner do change the shelf."""
    before = snapshot(db)
    for method, url, data in item_requests(shelf["text"])[:-1]:  # all but deleting it
        if url.endswith("/files"):
            continue  # text items have no files step
        response = send(creator.client, method, url, data)
        assert response.status_code in (200, 303, 409), (method, url, response.status_code)
    assert post_form(creator.client, f"/creator/items/{shelf['audio']}/versions/publish", {}).status_code == 303
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
              ("/creator/projects/new", {"name": "Other"}), (f"/creator/projects/{project_id}", {"name": "Renamed"}),
              ("/sell", {"tier": "basic", "currency": "USD"})]
    for url, data in posts:
        for token in ({}, {"_csrf_token": "forged"}):
            response = client.post(url, data={**data, **token}, follow_redirects=False)
            assert response.status_code == 403, (url, token)
            assert "Your form expired or came from another site. Reload the page and try again." in response.text
    # Uploads parse their own body; the token is checked there.
    with write_mp3(tmp_path, "no-token.mp3").open("rb") as handle:
        response = client.post(f"/creator/items/{shelf['audio']}/uploads", files={"file": ("a.mp3", handle)},
                               follow_redirects=False)
    assert response.status_code == 403
    assert "Your form expired or came from another site." in response.text
    assert snapshot(db) == before
    assert csrf_token(client)  # the cookie was there all along: only the form field was missing
