"""Versions of a published item over HTTP: starting one, its files, publishing it, and what fans and the owner
see."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, field_of, main_of, new_item, ready_file, upload
from tests.catalog.item_helpers import details, publish, publishable_audio, versions
from tests.conftest import post_form
from tests.media.samples import write_mp3

# -------------------------------------------------------------------------------- versions


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


def test_no_second_version_while_the_first_is_unpublished(creator: CreatorSetup,
                                                          db: psycopg.Connection) -> None:
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
