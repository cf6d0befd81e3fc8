"""Becoming a creator (/sell), the dashboard (tier in force, storage), the profile, and projects — over HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, become_creator, field_of, main_of, new_item, ready_file
from tests.conftest import post_form, sign_up

TIERS = {"basic": "Basic", "small_files": "Small Files", "big_files": "Big Files", "everything": "Everything"}


def creator_row(db: psycopg.Connection, username: str) -> tuple | None:
    return db.execute(
        "SELECT c.tier, c.tier_status, c.currency, c.bio, c.links, c.storage_used_bytes FROM creators c "
        "JOIN users u ON u.id = c.user_id WHERE u.username = %s", (username,)).fetchone()


def stats(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", s).strip() for s in re.findall(r'class="stat">(.*?)</p>', html, re.S)]


# ----------------------------------------------------------------------------------------------- /sell


def test_sell_needs_login(client: TestClient, db: psycopg.Connection) -> None:
    page = client.get("/sell", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/sell"

    posted = post_form(client, "/sell", {"tier": "basic", "currency": "USD"})
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/login")
    assert db.execute("SELECT count(*) FROM creators").fetchone() == (0,)


def test_sell_page_offers_every_tier_and_says_which_applies_until_billing(client: TestClient) -> None:
    sign_up(client, "newbie")
    page = client.get("/sell")
    assert page.status_code == 200
    for key, name in TIERS.items():
        assert f'value="{key}"' in page.text
        assert name in page.text
    assert "every creator gets the Basic tier's limits (10 MB per file)" in page.text


@pytest.mark.parametrize("tier", list(TIERS))
def test_each_tier_is_accepted_and_recorded_unpaid(client: TestClient, db: psycopg.Connection, tier: str) -> None:
    sign_up(client, "newbie")
    response = post_form(client, "/sell", {"tier": tier, "currency": "EUR", "bio": "I make  noise.",
                                           "links": "https://example.com/me\n\n http://band.example.org "})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/creator"
    assert creator_row(db, "newbie") == (tier, "unpaid", "EUR", "I make  noise.",
                                         [{"url": "https://example.com/me"}, {"url": "http://band.example.org"}], 0)
    assert "set up to sell" in client.get("/creator").text


BAD_SELL = [
    ({"tier": "platinum"}, "tier", "Pick one of the tiers."),
    ({"tier": ""}, "tier", "Pick one of the tiers."),
    ({"currency": "JPY"}, "currency", "Pick one of the currencies."),
    ({"links": "javascript:alert(1)"}, "links", "“javascript:alert(1)” is not a web address"),
    ({"links": "ftp://files.example.com"}, "links", "is not a web address"),
    ({"links": "example.com"}, "links", "“example.com” is not a web address"),
    ({"links": "https://example.com/a b"}, "links", "is not a web address"),
    ({"links": "\n".join(f"https://example.com/{n}" for n in range(11))}, "links", "Add at most 10 links."),
    ({"bio": "x" * 2001}, "bio", "Bio must be at most 2000 characters."),
]


@pytest.mark.parametrize(("override", "name", "message"), BAD_SELL)
def test_bad_sell_form_is_refused_with_a_message(client: TestClient, db: psycopg.Connection,
                                                  override: dict[str, str], name: str, message: str) -> None:
    sign_up(client, "newbie")
    data = {"tier": "small_files", "currency": "USD", "bio": "Hello there", "links": "", **override}
    response = post_form(client, "/sell", data)
    assert response.status_code == 422
    if name == "tier":  # the tier radios are a fieldset of their own
        tiers = response.text[response.text.index('class="tiers"'):]
        assert f'<p class="field-error">{message}</p>' in tiers[:tiers.index("</fieldset>")]
    else:
        assert message in field_of(response.text, name)
        assert 'aria-invalid="true"' in field_of(response.text, name)
    assert db.execute("SELECT count(*) FROM creators").fetchone() == (0,)
    if name != "bio":  # the form comes back filled in as typed
        assert "Hello there</textarea>" in response.text


def test_a_second_sell_redirects_or_is_refused(creator: CreatorSetup, db: psycopg.Connection) -> None:
    page = creator.client.get("/sell", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/creator"

    again = post_form(creator.client, "/sell", {"tier": "everything", "currency": "GBP"})
    assert again.status_code == 409
    assert "You already sell on Fairshelf." in again.text
    assert creator_row(db, "maker")[:3] == ("basic", "unpaid", "USD")  # type: ignore[index]


# ----------------------------------------------------------------------------------------------- dashboard


@pytest.mark.parametrize("path", ["/creator", "/creator/profile", "/creator/projects/new", "/creator/items/new"])
def test_creator_pages_refuse_someone_who_does_not_sell(client: TestClient, path: str) -> None:
    anonymous = client.get(path, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next={path}"

    sign_up(client, "justafan")
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 403
    assert "Start selling first: pick a tier and set up your creator profile." in response.text


def test_non_creator_cannot_create_items_or_projects(client: TestClient, db: psycopg.Connection) -> None:
    sign_up(client, "justafan")
    assert post_form(client, "/creator/items/new", {"type": "audio"}).status_code == 403
    assert post_form(client, "/creator/projects/new", {"name": "Mine"}).status_code == 403
    assert post_form(client, "/creator/profile", {"bio": "hi"}).status_code == 403
    assert db.execute("SELECT (SELECT count(*) FROM items) + (SELECT count(*) FROM projects) "
                      "+ (SELECT count(*) FROM creators)").fetchone() == (0,)


def stats_card(client: TestClient) -> str:
    page = main_of(client.get("/creator").text)
    return page[page.index('class="card stats"'):page.index("</section>", page.index('class="card stats"'))]


def test_dashboard_shows_the_default_tier_in_force_until_billing(client: TestClient, db: psycopg.Connection) -> None:
    become_creator(client, "bigmaker", tier="big_files")
    card = stats_card(client)
    assert stats(card)[0] == "Basic"
    assert "files up to 10 MB" in card
    assert 'Big Files (your choice) starts once <a href="/creator/billing">you subscribe</a>.' in card  # remembered
    assert stats(card)[1] == '0 bytes <span class="muted">of 50 GB</span>'

    # Once the chosen tier is paid for, it is the one in force.
    db.execute("UPDATE creators SET tier_status = 'active'")
    card = stats_card(client)
    assert stats(card)[0] == "Big Files"
    assert "files up to 20 GB" in card
    assert "your choice" not in card
    assert stats(card)[1] == '0 bytes <span class="muted">of 500 GB</span>'


def test_dashboard_shows_storage_used_after_an_upload(creator: CreatorSetup, db: psycopg.Connection,
                                                      tmp_path: Path) -> None:
    public_id = new_item(creator.client, "audio", title="Tone")
    ready_file(creator.client, creator.settings, public_id, tmp_path)
    assert (tmp_path / "song.mp3").stat().st_size == 16680
    assert creator_row(db, "maker")[5] == 16680  # type: ignore[index]
    page = main_of(creator.client.get("/creator").text)
    assert stats(page)[1] == '16.3 KB <span class="muted">of 50 GB</span>'
    assert 'value="16680"' in page
    assert "Tone" in page


def test_dashboard_lists_only_the_creators_own_items(creator: CreatorSetup, rival: TestClient) -> None:
    new_item(creator.client, "text", title="Mine only")
    new_item(rival, "text", title="Rival's work")
    mine, theirs = main_of(creator.client.get("/creator").text), main_of(rival.get("/creator").text)
    assert "Mine only" in mine and "Rival&#39;s work" not in mine
    assert "Rival&#39;s work" in theirs and "Mine only" not in theirs


# ----------------------------------------------------------------------------------------------- profile


def test_profile_edit_saves_bio_and_links(creator: CreatorSetup, db: psycopg.Connection) -> None:
    client = creator.client
    response = post_form(client, "/creator/profile", {
        "bio": "  Field recordist.\nBased in Lisbon.  ",
        "links": "https://example.com\n\nhttps://sound.example.org/maker\n",
    })
    assert response.status_code == 303
    assert response.headers["location"] == "/creator"
    assert creator_row(db, "maker")[3:5] == (  # type: ignore[index]
        "Field recordist.\nBased in Lisbon.",
        [{"url": "https://example.com"}, {"url": "https://sound.example.org/maker"}],
    )
    page = client.get("/creator/profile").text
    assert "Field recordist.\nBased in Lisbon.</textarea>" in page
    assert "https://example.com\nhttps://sound.example.org/maker</textarea>" in page


@pytest.mark.parametrize(("data", "name", "message"), [
    ({"bio": "ok", "links": "https://example.com\nnot a link"}, "links", "“not a link” is not a web address"),
    ({"bio": "ok", "links": "javascript:alert(document.cookie)"}, "links", "is not a web address"),
    ({"bio": "ok", "links": "\n".join(f"https://e.example/{n}" for n in range(11))}, "links", "Add at most 10 links."),
    ({"bio": "é" * 2001, "links": ""}, "bio", "Bio must be at most 2000 characters."),
])
def test_profile_edit_refuses_bad_input(creator: CreatorSetup, db: psycopg.Connection, data: dict[str, str],
                                        name: str, message: str) -> None:
    before = creator_row(db, "maker")
    response = post_form(creator.client, "/creator/profile", data)
    assert response.status_code == 422
    assert message in field_of(response.text, name)
    assert creator_row(db, "maker") == before


# ----------------------------------------------------------------------------------------------- projects


def projects(db: psycopg.Connection) -> list[tuple]:
    return db.execute("SELECT u.username, p.name, p.slug, p.description_md FROM projects p "
                      "JOIN users u ON u.id = p.creator_id ORDER BY p.id").fetchall()


def create_project(client: TestClient, **data: str):  # type: ignore[no-untyped-def]
    return post_form(client, "/creator/projects/new", {"name": "", "slug": "", "description": "", **data})


def project_id(db: psycopg.Connection, slug: str) -> str:
    return db.execute("SELECT public_id FROM projects WHERE slug = %s", (slug,)).fetchone()[0]  # type: ignore[index]


def test_create_project_derives_the_slug_from_the_name(creator: CreatorSetup, db: psycopg.Connection) -> None:
    assert creator.client.get("/creator/projects/new").status_code == 200
    response = create_project(creator.client, name="  Night Drives, Vol. 1  ", description="**Late** tapes")
    assert response.status_code == 303
    assert response.headers["location"] == "/creator"
    assert projects(db) == [("maker", "Night Drives, Vol. 1", "night-drives-vol-1", "**Late** tapes")]
    html = db.execute("SELECT description_html FROM projects").fetchone()[0]  # type: ignore[index]
    assert "<strong>Late</strong>" in html
    page = main_of(creator.client.get("/creator").text)
    assert f'href="/creator/projects/{project_id(db, "night-drives-vol-1")}">Night Drives, Vol. 1</a>' in page


def test_project_with_a_typed_slug(creator: CreatorSetup, db: psycopg.Connection) -> None:
    assert create_project(creator.client, name="Album", slug="My-Album-2").status_code == 303
    assert projects(db)[0][2] == "my-album-2"


@pytest.mark.parametrize(("data", "name", "message"), [
    ({"name": ""}, "name", "Name is required."),
    ({"name": "x" * 121}, "name", "Name must be at most 120 characters."),
    ({"name": "!!!"}, "slug", "Give the project a URL name made of letters or digits."),
    ({"name": "Fine", "slug": "not ok"}, "slug", "The URL name may use lowercase letters, digits and single hyphens"),
    ({"name": "Fine", "slug": "double--hyphen"}, "slug", "single hyphens"),
    ({"name": "Fine", "slug": "a" * 81}, "slug", "The URL name must be at most 80 characters."),
    ({"name": "Fine", "description": "d" * 20_001}, "description", "Description must be at most 20000 characters."),
])
def test_bad_project_is_refused(creator: CreatorSetup, db: psycopg.Connection, data: dict[str, str], name: str,
                                message: str) -> None:
    response = create_project(creator.client, **data)
    assert response.status_code == 422
    assert message in field_of(response.text, name)
    assert projects(db) == []


def test_project_slug_is_unique_per_creator_only(creator: CreatorSetup, rival: TestClient,
                                                 db: psycopg.Connection) -> None:
    assert create_project(creator.client, name="Tapes").status_code == 303
    clash = create_project(creator.client, name="Other", slug="tapes")
    assert clash.status_code == 422
    assert "You already have a project with this URL name; pick another." in field_of(clash.text, "slug")
    assert 'value="Other"' in field_of(clash.text, "name")
    derived_clash = create_project(creator.client, name="TAPES")
    assert derived_clash.status_code == 422

    assert create_project(rival, name="Tapes").status_code == 303
    assert projects(db) == [("maker", "Tapes", "tapes", ""), ("rival", "Tapes", "tapes", "")]


def test_edit_project(creator: CreatorSetup, db: psycopg.Connection) -> None:
    client = creator.client
    create_project(client, name="Tapes", description="old")
    create_project(client, name="Demos")
    tapes = project_id(db, "tapes")
    page = client.get(f"/creator/projects/{tapes}")
    assert page.status_code == 200
    assert 'value="Tapes"' in field_of(page.text, "name")
    assert 'value="tapes"' in field_of(page.text, "slug")
    assert "old</textarea>" in page.text

    saved = post_form(client, f"/creator/projects/{tapes}", {"name": "Tapes 2", "slug": "tapes", "description": "new"})
    assert saved.status_code == 303
    assert projects(db)[0] == ("maker", "Tapes 2", "tapes", "new")

    clash = post_form(client, f"/creator/projects/{tapes}", {"name": "Tapes 3", "slug": "demos", "description": "x"})
    assert clash.status_code == 422
    assert "You already have a project with this URL name" in field_of(clash.text, "slug")
    bad = post_form(client, f"/creator/projects/{tapes}", {"name": "", "slug": "", "description": ""})
    assert bad.status_code == 422
    assert "Name is required." in field_of(bad.text, "name")
    assert projects(db) == [("maker", "Tapes 2", "tapes", "new"), ("maker", "Demos", "demos", "")]


def test_another_creator_cannot_open_or_edit_a_project(creator: CreatorSetup, rival: TestClient, visitor: TestClient,
                                                      db: psycopg.Connection) -> None:
    create_project(creator.client, name="Tapes", description="mine")
    tapes = project_id(db, "tapes")
    before = projects(db)

    assert rival.get(f"/creator/projects/{tapes}").status_code == 404
    edit = post_form(rival, f"/creator/projects/{tapes}", {"name": "Stolen", "slug": "stolen", "description": ""})
    assert edit.status_code == 404
    assert "There is no such project among yours." in edit.text

    anonymous = post_form(visitor, f"/creator/projects/{tapes}", {"name": "Stolen"})
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next=/creator/projects/{tapes}"
    assert visitor.get(f"/creator/projects/{tapes}", follow_redirects=False).status_code == 303
    assert projects(db) == before


def test_item_can_join_own_project_but_not_anothers(creator: CreatorSetup, rival: TestClient,
                                                    db: psycopg.Connection) -> None:
    create_project(creator.client, name="Tapes")
    create_project(rival, name="Theirs")
    mine, theirs = project_id(db, "tapes"), project_id(db, "theirs")

    refused = post_form(creator.client, "/creator/items/new", {"type": "audio", "project": theirs})
    assert refused.status_code == 422
    assert "Pick one of your projects." in refused.text
    assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)

    assert creator.client.get(f"/creator/items/new?project={mine}").text.count(f'value="{mine}" selected') == 1
    public_id = new_item(creator.client, "audio", title="In a project", project=mine)
    assert db.execute("SELECT p.slug FROM items i JOIN projects p ON p.id = i.project_id").fetchone() == ("tapes",)
    assert ">Tapes</a>" in creator.client.get(f"/i/{public_id}").text  # the owner's view of the draft


def test_item_cannot_move_into_anothers_project(creator: CreatorSetup, rival: TestClient,
                                                db: psycopg.Connection) -> None:
    create_project(creator.client, name="Tapes")
    create_project(rival, name="Theirs")
    public_id = new_item(creator.client, "audio", title="In a project", project=project_id(db, "tapes"))
    moved = post_form(creator.client, f"/creator/items/{public_id}/details",
                      {"title": "In a project", "project": project_id(db, "theirs")})
    assert db.execute("SELECT p.slug FROM items i JOIN projects p ON p.id = i.project_id").fetchone() == ("tapes",)
    assert moved.status_code == 422
    assert "Pick one of your projects." in field_of(moved.text, "project")
