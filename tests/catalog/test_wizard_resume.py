"""The item wizard over HTTP: a draft saved at every step, resumed at the furthest step reached, and each
step's link back to the one before."""

from __future__ import annotations

import re

import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, field_of, main_of, new_item
from tests.catalog.item_helpers import base_details, item_row
from tests.conftest import post_form

# -------------------------------------------------------------------------------- saving and resuming


def resume(client: TestClient, public_id: str) -> str:
    response = client.get(f"/creator/items/{public_id}", follow_redirects=False)
    assert response.status_code == 303
    return response.headers["location"]


def test_draft_is_saved_at_every_step_and_resumes_at_the_furthest(creator: CreatorSetup,
                                                                   db: psycopg.Connection) -> None:
    client = creator.client
    public_id = new_item(client, "audio")
    url = f"/creator/items/{public_id}"
    assert resume(client, public_id) == f"{url}/details"

    saved = post_form(client, f"{url}/details",
                      base_details("audio", tags="music/ambient", release_date="2026-03-14",
                                   credits="Ana — cello", chapters="0:00 Intro"))
    assert saved.headers["location"] == f"{url}/files"
    assert resume(client, public_id) == f"{url}/files"
    page = client.get(f"{url}/details").text
    assert 'value="Night Drive"' in field_of(page, "title")
    assert 'value="night-drive"' in field_of(page, "slug")
    assert 'value="music/ambient"' in field_of(page, "tags")
    assert 'value="2026-03-14"' in field_of(page, "release_date")
    assert "Ana — cello</textarea>" in field_of(page, "credits")
    assert 'value="handmade" checked' in field_of(page, "ai_label")
    assert "Details saved." in page

    assert post_form(client, f"{url}/files", {}).headers["location"] == f"{url}/pricing"
    assert resume(client, public_id) == f"{url}/pricing"
    priced = post_form(client, f"{url}/pricing", {"price_mode": "fixed", "price": "3"})
    assert priced.headers["location"] == f"{url}/publish"
    assert resume(client, public_id) == f"{url}/publish"

    # Going back and saving an earlier step again does not lose the furthest step reached.
    again = post_form(client, f"{url}/details", base_details("audio", title="Night Drive II"))
    assert again.headers["location"] == f"{url}/files"
    assert resume(client, public_id) == f"{url}/publish"
    assert item_row(db, public_id, "wizard_step", "title", "price_cents") == ("publish", "Night Drive II",
                                                                               300)


def test_text_items_skip_the_files_step(creator: CreatorSetup, db: psycopg.Connection) -> None:
    client = creator.client
    public_id = new_item(client, "text")
    url = f"/creator/items/{public_id}"
    assert post_form(client, f"{url}/details", base_details("text")).headers["location"] == f"{url}/pricing"
    assert resume(client, public_id) == f"{url}/pricing"
    files = client.get(f"{url}/files")
    assert files.status_code == 404
    assert "Text items have no files step" in files.text
    assert item_row(db, public_id, "wizard_step") == ("pricing",)


BACK_LINKS = {
    "audio": {"details": None, "files": "details", "pricing": "files", "publish": "pricing"},
    "text": {"details": None, "pricing": "details", "publish": "pricing"},
}


@pytest.mark.parametrize("kind", list(BACK_LINKS))
def test_each_step_links_back_to_the_one_before(creator: CreatorSetup, kind: str) -> None:
    public_id = new_item(creator.client, kind, **base_details(kind))
    for number, (step, back) in enumerate(BACK_LINKS[kind].items(), start=1):
        page = main_of(creator.client.get(f"/creator/items/{public_id}/{step}").text)
        links = re.findall(r'<a href="([^"]+)">← Back to (\w+)</a>', page)
        assert links == ([(f"/creator/items/{public_id}/{back}", back.capitalize())] if back else []), step
        assert (f'aria-current="step" class="current"><a href="/creator/items/{public_id}/{step}">{number}.'
                in page)
        assert '<a href="/creator">Back to your shelf</a>' in page
    nav = re.findall(r"\d\. (Details|Files|Pricing|Publish)</a>", page)
    assert nav == [s.capitalize() for s in BACK_LINKS[kind]]
