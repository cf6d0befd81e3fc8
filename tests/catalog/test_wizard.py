"""The item wizard over HTTP: creating each type, the details rules, tags as ltree, slugs, Markdown, resuming a
draft, back links, pricing, and the inline (HTMX) validation endpoint."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import psycopg
import pytest
from litestar.testing import TestClient

from app.catalog.forms import SUBTYPES
from tests.catalog.conftest import CreatorSetup, field_of, main_of, new_item
from tests.conftest import csrf_token, post_form, sign_up

TYPES = ("audio", "video", "text", "image", "file")


def item_row(db: psycopg.Connection, public_id: str, *columns: str) -> tuple:
    row = db.execute(f"SELECT {', '.join(columns)} FROM items WHERE public_id = %s", (public_id,)).fetchone()
    assert row is not None
    return row


def base_details(kind: str, **override: str) -> dict[str, str]:
    """A details form as a browser sends it, valid for `kind`."""
    data = {"title": "Night Drive", "slug": "", "description": "", "tags": "", "release_date": "", "credits": "",
            "ai_label": "handmade"}
    data.update({"file": {"subtype": ""}, "text": {"body": "Once upon a time."}, "audio": {"chapters": ""}}.get(kind, {}))
    return {**data, **override}


def field_errors(html: str) -> list[str]:
    return re.findall(r'<p class="field-error">(.*?)</p>', html, re.S)


# ----------------------------------------------------------------------------------------------- creating


def test_new_item_page_offers_every_type(creator: CreatorSetup) -> None:
    page = creator.client.get("/creator/items/new")
    assert page.status_code == 200
    for kind in TYPES:
        assert f'name="type" value="{kind}"' in page.text
    assert "The kind of work is fixed once the item is created." in page.text


@pytest.mark.parametrize("kind", TYPES)
def test_create_an_item_of_each_type(creator: CreatorSetup, db: psycopg.Connection, kind: str) -> None:
    response = post_form(creator.client, "/creator/items/new", {"type": kind})
    assert response.status_code == 303
    public_id = response.headers["location"].split("/")[3]
    assert response.headers["location"] == f"/creator/items/{public_id}/details"
    assert len(public_id) >= 10 and not public_id.isdigit()  # not guessable
    assert item_row(db, public_id, "type", "status", "wizard_step", "currency", "price_mode", "title") == (
        kind, "draft", "details", "USD", "free", "")
    versions = db.execute("SELECT v.label, v.published_at FROM item_versions v JOIN items i ON i.id = v.item_id "
                          "WHERE i.public_id = %s", (public_id,)).fetchall()
    assert versions == ([] if kind == "text" else [("1.0", None)])

    page = creator.client.get(f"/creator/items/{public_id}/details")
    assert page.status_code == 200
    assert f"New {kind} item" in page.text
    assert ('id="field-body"' in page.text) == (kind == "text")
    assert ('id="field-chapters"' in page.text) == (kind == "audio")
    assert ('id="field-subtype"' in page.text) == (kind == "file")
    assert 'name="type"' not in page.text  # nothing on the form can change the type


@pytest.mark.parametrize("kind", ["", "podcast", "AUDIO"])
def test_unknown_type_is_refused(creator: CreatorSetup, db: psycopg.Connection, kind: str) -> None:
    response = post_form(creator.client, "/creator/items/new", {"type": kind})
    assert response.status_code == 422
    assert "Pick what kind of work this is." in response.text
    assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)


def test_two_untitled_drafts_can_exist_side_by_side(creator: CreatorSetup, db: psycopg.Connection) -> None:
    first = post_form(creator.client, "/creator/items/new", {"type": "audio"})
    second = post_form(creator.client, "/creator/items/new", {"type": "text"})
    assert (first.status_code, second.status_code) == (303, 303)
    assert db.execute("SELECT type FROM items ORDER BY id").fetchall() == [("audio",), ("text",)]


def test_the_type_is_fixed(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "audio")
    response = post_form(creator.client, f"/creator/items/{public_id}/details",
                         base_details("audio", type="text", body="Sneaky text", subtype="plugin"))
    assert response.status_code == 303
    assert item_row(db, public_id, "type", "body_md", "subtype", "title") == ("audio", "", "", "Night Drive")
    assert db.execute("SELECT count(*) FROM item_versions").fetchone() == (1,)


# ----------------------------------------------------------------------------------------------- details rules

BAD_DETAILS: dict[str, list[tuple[str, dict[str, str], str]]] = {
    "title": [
        ("audio", {"title": ""}, "Title is required."),
        ("audio", {"title": "   "}, "Title is required."),
        ("audio", {"title": "t" * 201}, "Title must be at most 200 characters."),
    ],
    "slug": [
        ("audio", {"slug": "Night Drive"}, "The URL name may use lowercase letters, digits and single hyphens"),
        ("audio", {"slug": "night--drive"}, "single hyphens"),
        ("audio", {"slug": "-night"}, "single hyphens"),
        ("audio", {"slug": "night_drive"}, "single hyphens"),
        ("audio", {"slug": "nuit-étoilée"}, "single hyphens"),
        ("audio", {"slug": "s" * 81}, "The URL name must be at most 80 characters."),
    ],
    "description": [("audio", {"description": "d" * 20_001}, "Description must be at most 20000 characters.")],
    "tags": [
        ("audio", {"tags": "music//ambient"}, "“music//ambient” is not a tag"),
        ("audio", {"tags": "ok, música"}, "“música” is not a tag"),
        ("audio", {"tags": "music.ambient"}, "is not a tag"),
        ("audio", {"tags": "rock & roll"}, "is not a tag"),
        ("audio", {"tags": "a/b/c/d/e/f"}, "“a/b/c/d/e/f” is not a tag"),
        ("audio", {"tags": "x" * 41}, "is not a tag"),
        ("audio", {"tags": ", ".join(f"tag{n}" for n in range(11))}, "Use at most 10 tags."),
    ],
    "release_date": [
        ("audio", {"release_date": "14/03/2026"}, "Enter the release date as YYYY-MM-DD"),
        ("audio", {"release_date": "2026-02-30"}, "Enter the release date as YYYY-MM-DD"),
        ("audio", {"release_date": "soon"}, "Enter the release date as YYYY-MM-DD"),
        ("audio", {"release_date": "1899-12-31"}, "The release date must be between 1900 and 2100."),
        ("audio", {"release_date": "2101-01-01"}, "The release date must be between 1900 and 2100."),
    ],
    "credits": [("audio", {"credits": "c" * 5001}, "Credits must be at most 5000 characters.")],
    "ai_label": [("audio", {"ai_label": "robot"}, "Pick how AI was used, if at all.")],
    "subtype": [("file", {"subtype": "firmware"}, "Pick one of the kinds of file.")],
    "body": [("text", {"body": "b" * 500_001}, "Text must be at most 500000 characters.")],
    "chapters": [
        ("audio", {"chapters": "Intro"}, "“Intro” is not a chapter"),
        ("audio", {"chapters": "0:00Intro"}, "is not a chapter"),
        ("audio", {"chapters": "0:00 Intro\n1:2 Verse"}, "“1:2 Verse” is not a chapter"),
        ("audio", {"chapters": "1:00 Verse\n0:30 Intro"}, "Chapters must be in order"),
        ("audio", {"chapters": "0:00 Intro\n0:00 Again"}, "Chapters must be in order"),
        ("audio", {"chapters": "0:75 Intro"}, "“0:75 Intro” has an impossible time."),
        ("audio", {"chapters": "1:60:00 Late"}, "has an impossible time."),
    ],
}


@pytest.mark.parametrize("name", list(BAD_DETAILS))
def test_inline_validation_shows_only_the_field_just_left(creator: CreatorSetup, db: psycopg.Connection,
                                                          name: str) -> None:
    """POST …/validate/details with HX-Trigger-Name: the field's fragment carries its message, and only its."""
    drafts: dict[str, str] = {}
    other_bad = {"tags": "not//a tag"} if name != "tags" else {"title": ""}  # a second problem, not to be shown
    for kind, override, message in BAD_DETAILS[name]:
        public_id = drafts.get(kind) or drafts.setdefault(kind, new_item(creator.client, kind))
        response = creator.client.post(
            f"/creator/items/{public_id}/validate/details",
            data={**base_details(kind, **override), **other_bad, "_csrf_token": csrf_token(creator.client)},
            headers={"HX-Request": "true", "HX-Trigger-Name": name},
        )
        assert response.status_code == 200, override
        fragment = field_of(response.text, name)
        assert 'class="field field-invalid"' in fragment, override
        assert message in fragment, override
        assert len(field_errors(response.text)) == 1, override
        assert name == "tags" or "is not a tag" not in response.text, override
        assert item_row(db, public_id, "title", "tags::text[]") == ("", [])  # validating saves nothing


@pytest.mark.parametrize("name", list(BAD_DETAILS))
def test_saving_bad_details_is_refused_with_the_message(creator: CreatorSetup, db: psycopg.Connection,
                                                        name: str) -> None:
    for n, (kind, override, message) in enumerate(BAD_DETAILS[name]):
        public_id = new_item(creator.client, kind, title=f"Kept title {n}", ai_label="assisted")
        columns = ("title", "slug", "ai_label", "tags::text[]", "release_date", "body_md", "chapters", "wizard_step",
                   "updated_at")
        before = item_row(db, public_id, *columns)
        response = post_form(creator.client, f"/creator/items/{public_id}/details", base_details(kind, **override))
        assert item_row(db, public_id, *columns) == before, override
        assert response.status_code == 422, override
        assert message in field_of(response.text, name), override
        if name != "title":  # what was typed comes back, to be corrected rather than retyped
            assert 'value="Night Drive"' in field_of(response.text, "title"), override


def test_inline_validation_of_a_valid_field_shows_no_message(creator: CreatorSetup) -> None:
    public_id = new_item(creator.client, "audio")
    response = creator.client.post(
        f"/creator/items/{public_id}/validate/details",
        data={**base_details("audio", tags="bad//tag", release_date="never"), "_csrf_token": csrf_token(creator.client)},
        headers={"HX-Request": "true", "HX-Trigger-Name": "title"},
    )
    assert response.status_code == 200
    assert field_errors(response.text) == []
    assert 'value="Night Drive"' in field_of(response.text, "title")  # what was typed comes back
    assert 'value="bad//tag"' in field_of(response.text, "tags")


def test_tags_are_normalised_and_stored_as_ltree(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "audio", **base_details(
        "audio", tags=" Music/Electronic/Ambient , field  recordings,hip-hop, /music/electronic/ambient/ ,,"))
    assert item_row(db, public_id, "tags::text[]", "pg_typeof(tags)::text") == (
        ["music.electronic.ambient", "field_recordings", "hip_hop"], "ltree[]")
    # Real ltree: the hierarchy can be queried.
    assert db.execute("SELECT count(*) FROM items WHERE tags <@ 'music.electronic'::ltree").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM items WHERE tags <@ 'music.rock'::ltree").fetchone() == (0,)
    page = creator.client.get(f"/creator/items/{public_id}/details")
    assert 'value="music/electronic/ambient, field recordings, hip hop"' in field_of(page.text, "tags")


def test_ten_tags_and_five_levels_are_accepted(creator: CreatorSetup, db: psycopg.Connection) -> None:
    tags = ", ".join(["a/b/c/d/e"] + [f"tag{n}" for n in range(9)])
    public_id = new_item(creator.client, "audio", **base_details("audio", tags=tags))
    stored = item_row(db, public_id, "tags::text[]")[0]
    assert len(stored) == 10
    assert stored[0] == "a.b.c.d.e"


@pytest.mark.parametrize("value", ["1900-01-01", "2026-03-14", "2100-12-31"])
def test_release_date_in_range_is_stored(creator: CreatorSetup, db: psycopg.Connection, value: str) -> None:
    public_id = new_item(creator.client, "audio", **base_details("audio", release_date=value))
    assert item_row(db, public_id, "release_date::text") == (value,)
    assert f'value="{value}"' in field_of(creator.client.get(f"/creator/items/{public_id}/details").text,
                                          "release_date")


@pytest.mark.parametrize(("value", "stored"), [("handmade", "handmade"), ("assisted", "assisted"),
                                               ("generated", "generated"), ("", None)])
def test_ai_label_values(creator: CreatorSetup, db: psycopg.Connection, value: str, stored: str | None) -> None:
    public_id = new_item(creator.client, "image", **base_details("image", ai_label=value))
    assert item_row(db, public_id, "ai_label") == (stored,)


def test_every_file_subtype_is_accepted_and_only_for_files(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "file")
    for subtype in SUBTYPES:
        response = post_form(creator.client, f"/creator/items/{public_id}/details",
                             base_details("file", subtype=subtype.upper()))
        assert response.status_code == 303, subtype
        assert item_row(db, public_id, "subtype") == (subtype,)
    video = new_item(creator.client, "video", **base_details("video", title="Clip", subtype="plugin"))
    assert item_row(db, video, "subtype") == ("",)


def test_text_body_is_only_for_text_items(creator: CreatorSetup, db: psycopg.Connection) -> None:
    text = new_item(creator.client, "text", **base_details("text", body="# Chapter one\n\nIt was *dark*."))
    assert item_row(db, text, "body_md", "body_html") == (
        "# Chapter one\n\nIt was *dark*.", "<h2>Chapter one</h2>\n<p>It was <em>dark</em>.</p>\n")
    audio = new_item(creator.client, "audio", **base_details("audio", title="Song", body="Not for audio"))
    assert item_row(db, audio, "body_md", "body_html") == ("", "")


def test_audio_chapters_are_parsed_and_shown_back(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "audio", **base_details(
        "audio", chapters="0:00 Intro\n\n  12:30   Second movement \n1:02:03 Finale"))
    assert item_row(db, public_id, "chapters") == ([
        {"start": 0, "title": "Intro"}, {"start": 750, "title": "Second movement"},
        {"start": 3723, "title": "Finale"}],)
    page = creator.client.get(f"/creator/items/{public_id}/details").text
    assert "0:00 Intro\n12:30 Second movement\n1:02:03 Finale</textarea>" in field_of(page, "chapters")
    text = new_item(creator.client, "text", **base_details("text", title="Essay", chapters="0:00 Nope"))
    assert item_row(db, text, "chapters") == ([],)


def test_longest_title_and_slug_are_accepted(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "audio", **base_details("audio", title="T" * 200, slug="s" * 80))
    assert item_row(db, public_id, "length(title)", "slug") == (200, "s" * 80)


# ----------------------------------------------------------------------------------------------- slugs


def test_derived_slugs_get_a_numbered_suffix(creator: CreatorSetup, rival: TestClient,
                                             db: psycopg.Connection) -> None:
    first = new_item(creator.client, "audio", **base_details("audio", title="Night Drive!"))
    second = new_item(creator.client, "video", **base_details("video", title="night drive"))
    third = new_item(creator.client, "image", **base_details("image", title="Night  Drive"))
    assert [item_row(db, p, "slug")[0] for p in (first, second, third)] == [
        "night-drive", "night-drive-2", "night-drive-3"]
    # Saving an item again keeps its own slug; another creator's slugs are theirs alone.
    post_form(creator.client, f"/creator/items/{second}/details", base_details("video", title="night drive"))
    assert item_row(db, second, "slug") == ("night-drive-2",)
    theirs = new_item(rival, "audio", **base_details("audio", title="Night Drive"))
    assert item_row(db, theirs, "slug") == ("night-drive",)
    typed = new_item(rival, "audio", **base_details("audio", title="Other", slug="Night-Drive-3"))
    assert item_row(db, typed, "slug") == ("night-drive-3",)


def test_a_title_without_letters_gets_a_placeholder_slug(creator: CreatorSetup, db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "audio", **base_details("audio", title="★★★"))
    assert item_row(db, public_id, "title", "slug") == ("★★★", "untitled")


def test_a_deleted_items_slug_is_free_again(creator: CreatorSetup, db: psycopg.Connection) -> None:
    old = new_item(creator.client, "audio", **base_details("audio"))
    assert post_form(creator.client, f"/creator/items/{old}/delete", {}).status_code == 303
    new = new_item(creator.client, "audio", **base_details("audio"))
    assert item_row(db, new, "slug") == ("night-drive",)


def test_a_typed_slug_that_is_taken_is_refused(creator: CreatorSetup, db: psycopg.Connection) -> None:
    new_item(creator.client, "audio", **base_details("audio", title="Night Drive"))
    second = new_item(creator.client, "audio", **base_details("audio", title="Day Drive"))
    response = post_form(creator.client, f"/creator/items/{second}/details",
                         base_details("audio", title="Day Drive", slug="night-drive"))
    assert item_row(db, second, "slug") == ("day-drive",)
    assert response.status_code == 422
    assert "You already have an item with this URL name; pick another." in field_of(response.text, "slug")


# ----------------------------------------------------------------------------------------------- Markdown

HOSTILE = """**bold words** and [a safe link](https://example.com/page).

<script>alert('x')</script>

[evil](javascript:alert(1)) <a href="javascript:alert(2)">raw link</a> [vb](JaVaScRiPt:alert(5))

<img src=x onerror=alert(3)>

![pic](javascript:alert(4)) ![data](data:image/png;base64,iVBORw0KGgo=)

<iframe src="https://evil.example"></iframe> <div onmouseover="alert(6)">hover</div>

# Heading
"""


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


def assert_harmless(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag not in ("script", "iframe", "object", "embed", "style", "div", "h1"), (tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            assert not value.strip().lower().startswith(("javascript:", "data:")), (tag, attrs)


def test_markdown_is_rendered_and_sanitised_on_the_item_page(creator: CreatorSetup, visitor: TestClient,
                                                             db: psycopg.Connection) -> None:
    public_id = new_item(creator.client, "text", **base_details("text", description=HOSTILE, body=HOSTILE))
    assert post_form(creator.client, f"/creator/items/{public_id}/publish", {}).status_code == 303

    description_html, body_html = item_row(db, public_id, "description_html", "body_html")
    for stored in (description_html, body_html):
        assert_harmless(stored)
        assert "<strong>bold words</strong>" in stored
        assert "<h2>Heading</h2>" in stored

    page = visitor.get(f"/i/{public_id}")
    assert page.status_code == 200
    prose = page.text[page.text.index('<div class="prose">') + len('<div class="prose">'):]
    prose = prose[:prose.index("</div>")]
    assert_harmless(prose)
    found = elements(prose)
    assert ("strong", {}) in found
    links = [attrs for tag, attrs in found if tag == "a"]
    assert links == [{"href": "https://example.com/page", "rel": "nofollow noopener ugc"}]
    # Outside the prose too: the only scripts on the page are the site's own files.
    for tag, attrs in elements(page.text):
        assert tag != "script" or attrs.get("src", "").startswith("/static/"), attrs
        assert tag != "iframe"
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)


# ----------------------------------------------------------------------------------------------- saving and resuming


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

    saved = post_form(client, f"{url}/details", base_details("audio", tags="music/ambient", release_date="2026-03-14",
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
    assert item_row(db, public_id, "wizard_step", "title", "price_cents") == ("publish", "Night Drive II", 300)


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
        assert f'aria-current="step" class="current"><a href="/creator/items/{public_id}/{step}">{number}.' in page
        assert '<a href="/creator">Back to your shelf</a>' in page
    nav = re.findall(r"\d\. (Details|Files|Pricing|Publish)</a>", page)
    assert nav == [s.capitalize() for s in BACK_LINKS[kind]]


# ----------------------------------------------------------------------------------------------- pricing


@pytest.fixture
def priced_item(creator: CreatorSetup) -> str:
    return new_item(creator.client, "text", **base_details("text"))


def prices(db: psycopg.Connection, public_id: str) -> tuple:
    return item_row(db, public_id, "price_mode", "price_cents", "min_price_cents", "suggested_price_cents")


def test_free_is_the_default_and_can_be_chosen(creator: CreatorSetup, priced_item: str,
                                               db: psycopg.Connection) -> None:
    assert prices(db, priced_item) == ("free", 0, 0, 0)
    post_form(creator.client, f"/creator/items/{priced_item}/pricing", {"price_mode": "fixed", "price": "9"})
    response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                         {"price_mode": "free", "price": "9", "min_price": "junk"})
    assert response.status_code == 303
    assert prices(db, priced_item) == ("free", 0, 0, 0)


FIXED_OK = [("4.99", 499), ("$4.99", 499), ("4,99", 499), ("€4,9", 490), ("£5", 500), (" 12.30 ", 1230),
            ("0.50", 50), ("1000000", 100_000_000), ("1000000.00", 100_000_000)]
FIXED_BAD = [
    ("abc", "Price: enter an amount like 4.99."), ("-1", "Price: enter an amount like 4.99."),
    ("4.999", "Price: enter an amount like 4.99."), ("1e3", "Price: enter an amount like 4.99."),
    ("4.99.1", "Price: enter an amount like 4.99."), ("", "Price is required."),
    ("0.49", "Price must be at least 0.50."), ("0", "Price must be at least 0.50."),
    ("1000000.01", "Price must be at most 1,000,000."),
]
PWYW_OK = [("0", "5", (0, 500)), ("0.50", "0.50", (50, 50)), ("2", "7.50", (200, 750)), ("$1,5", "3", (150, 300)),
           ("", "5", (0, 500))]  # no minimum typed: free to take
PWYW_BAD = [
    ({"min_price": "0.30", "suggested_price": "5"}, "min_price", "The minimum must be 0 (free allowed) or at least 0.50."),
    ({"min_price": "5", "suggested_price": "4"}, "suggested_price", "Suggested price must be at least 5.00."),
    ({"min_price": "0", "suggested_price": "0.20"}, "suggested_price", "Suggested price must be at least 0.50."),
    ({"min_price": "0", "suggested_price": "0"}, "suggested_price", "Suggested price must be at least 0.50."),
    ({"min_price": "abc", "suggested_price": "5"}, "min_price", "Minimum price: enter an amount like 4.99."),
    ({"min_price": "-1", "suggested_price": "5"}, "min_price", "Minimum price: enter an amount like 4.99."),
    ({"min_price": "1", "suggested_price": ""}, "suggested_price", "Suggested price is required."),
    ({"min_price": "1", "suggested_price": "1000000.01"}, "suggested_price", "Suggested price must be at most 1,000,000."),
]


def test_fixed_price_amounts_people_type(creator: CreatorSetup, priced_item: str, db: psycopg.Connection) -> None:
    for typed, cents in FIXED_OK:
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": "fixed", "price": typed})
        assert response.status_code == 303, typed
        assert prices(db, priced_item) == ("fixed", cents, 0, 0), typed


def test_bad_fixed_prices_are_refused(creator: CreatorSetup, priced_item: str, db: psycopg.Connection) -> None:
    post_form(creator.client, f"/creator/items/{priced_item}/pricing", {"price_mode": "fixed", "price": "3"})
    for typed, message in FIXED_BAD:
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": "fixed", "price": typed})
        assert response.status_code == 422, typed
        fragment = field_of(response.text, "price")
        assert message in fragment, typed
        assert f'value="{typed}"' in fragment, typed
        assert prices(db, priced_item) == ("fixed", 300, 0, 0), typed


def test_pay_what_you_want_is_stored_in_cents(creator: CreatorSetup, priced_item: str,
                                              db: psycopg.Connection) -> None:
    for minimum, suggested, cents in PWYW_OK:
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": "pwyw", "price": "99", "min_price": minimum, "suggested_price": suggested})
        assert response.status_code == 303, (minimum, suggested)
        assert prices(db, priced_item) == ("pwyw", 0, *cents), (minimum, suggested)


def test_bad_pay_what_you_want_is_refused(creator: CreatorSetup, priced_item: str, db: psycopg.Connection) -> None:
    for data, name, message in PWYW_BAD:
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing", {"price_mode": "pwyw", **data})
        assert response.status_code == 422, data
        assert message in field_of(response.text, name), data
        assert prices(db, priced_item) == ("free", 0, 0, 0), data


def test_unknown_price_mode_is_refused(creator: CreatorSetup, priced_item: str, db: psycopg.Connection) -> None:
    for mode in ("", "auction", "FIXED"):
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": mode, "price": "5"})
        assert response.status_code == 422, mode
        assert "Pick free, a fixed price, or pay what you want." in field_of(response.text, "price_mode"), mode
        assert prices(db, priced_item) == ("free", 0, 0, 0), mode


def test_prices_are_shown_back_in_the_creators_currency(client: TestClient, db: psycopg.Connection) -> None:
    sign_up(client, "eurmaker")
    assert post_form(client, "/sell", {"tier": "basic", "currency": "EUR"}).status_code == 303
    public_id = new_item(client, "text", **base_details("text"))
    assert item_row(db, public_id, "currency") == ("EUR",)
    assert "Prices are in EUR." in client.get(f"/creator/items/{public_id}/pricing").text
    post_form(client, f"/creator/items/{public_id}/pricing", {"price_mode": "fixed", "price": "4,99"})
    assert 'value="4.99"' in field_of(client.get(f"/creator/items/{public_id}/pricing").text, "price")
    assert "<dt>Price</dt><dd>€4.99</dd>" in client.get(f"/creator/items/{public_id}/publish").text
    post_form(client, f"/creator/items/{public_id}/pricing",
              {"price_mode": "pwyw", "min_price": "2", "suggested_price": "7.5"})
    assert "Pay what you want · from €2.00 <span class=\"muted\">(suggested €7.50)</span>" in \
        client.get(f"/i/{public_id}").text


def test_saved_pay_what_you_want_with_zero_minimum_can_be_saved_again(creator: CreatorSetup, priced_item: str,
                                                                       db: psycopg.Connection) -> None:
    url = f"/creator/items/{priced_item}/pricing"
    post_form(creator.client, url, {"price_mode": "pwyw", "min_price": "0", "suggested_price": "5"})
    page = creator.client.get(url).text
    shown = {name: re.search(r'value="([^"]*)"', field_of(page, name)).group(1)  # type: ignore[union-attr]
             for name in ("price", "min_price", "suggested_price")}
    response = post_form(creator.client, url, {"price_mode": "pwyw", **shown})  # "Save and continue", untouched
    assert response.status_code == 303, field_errors(response.text)
    assert prices(db, priced_item) == ("pwyw", 0, 0, 500)


def test_inline_validation_of_pricing(creator: CreatorSetup, priced_item: str, db: psycopg.Connection) -> None:
    response = creator.client.post(
        f"/creator/items/{priced_item}/validate/pricing",
        data={"price_mode": "fixed", "price": "4.999", "min_price": "x", "_csrf_token": csrf_token(creator.client)},
        headers={"HX-Request": "true", "HX-Trigger-Name": "price"},
    )
    assert response.status_code == 200
    assert "Price: enter an amount like 4.99." in field_of(response.text, "price")
    assert field_errors(response.text) == ["Price: enter an amount like 4.99."]
    ok = creator.client.post(
        f"/creator/items/{priced_item}/validate/pricing",
        data={"price_mode": "fixed", "price": "4.99", "_csrf_token": csrf_token(creator.client)},
        headers={"HX-Request": "true", "HX-Trigger-Name": "price"},
    )
    assert field_errors(ok.text) == []
    assert prices(db, priced_item) == ("free", 0, 0, 0)


# ----------------------------------------------------------------------------------------------- markup


def input_attributes(html: str, input_id: str) -> dict[str, str]:
    return next(attrs for tag, attrs in elements(html) if tag == "input" and attrs.get("id") == input_id)


def test_details_inputs_carry_their_required_and_maxlength_attributes(creator: CreatorSetup) -> None:
    public_id = new_item(creator.client, "audio")
    page = creator.client.get(f"/creator/items/{public_id}/details").text
    title = input_attributes(page, "title")
    assert "required" in title
    assert title.get("maxlength") == "200"
    assert input_attributes(page, "slug").get("maxlength") == "80"


def test_chapter_times_on_the_item_page_read_as_typed(creator: CreatorSetup) -> None:
    public_id = new_item(creator.client, "audio", **base_details("audio", chapters="0:00 Intro\n1:02:03 Finale"))
    page = creator.client.get(f"/i/{public_id}").text  # the owner's view of the draft
    chapters = page[page.index('<ol class="chapters">'):page.index("</ol>", page.index('<ol class="chapters">'))]
    assert re.findall(r'<span class="muted">([\d:]+)</span> (\w+)', chapters) == [("0:00", "Intro"),
                                                                                  ("1:02:03", "Finale")]
