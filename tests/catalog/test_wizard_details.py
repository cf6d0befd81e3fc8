"""The item wizard over HTTP: creating each type, and the details step — its rules, shown inline (HTMX) and
on saving, tags as ltree, dates, AI labels, subtypes, text bodies and chapters."""

from __future__ import annotations

import psycopg
import pytest

from app.catalog.forms import SUBTYPES
from tests.catalog.conftest import CreatorSetup, field_of, new_item
from tests.catalog.item_helpers import base_details, field_errors, item_row
from tests.conftest import csrf_token, post_form

TYPES = ("audio", "video", "text", "image", "file")


# -------------------------------------------------------------------------------- creating


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
    versions = db.execute("SELECT v.label, v.published_at FROM item_versions v "
                          "JOIN items i ON i.id = v.item_id WHERE i.public_id = %s", (public_id,)).fetchall()
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


# -------------------------------------------------------------------------------- details rules

BAD_DETAILS: dict[str, list[tuple[str, dict[str, str], str]]] = {
    "title": [
        ("audio", {"title": ""}, "Title is required."),
        ("audio", {"title": "   "}, "Title is required."),
        ("audio", {"title": "t" * 201}, "Title must be at most 200 characters."),
    ],
    "slug": [
        ("audio", {"slug": "Night Drive"},
         "The URL name may use lowercase letters, digits and single hyphens"),
        ("audio", {"slug": "night--drive"}, "single hyphens"),
        ("audio", {"slug": "-night"}, "single hyphens"),
        ("audio", {"slug": "night_drive"}, "single hyphens"),
        ("audio", {"slug": "nuit-étoilée"}, "single hyphens"),
        ("audio", {"slug": "s" * 81}, "The URL name must be at most 80 characters."),
    ],
    "description": [
        ("audio", {"description": "d" * 20_001}, "Description must be at most 20000 characters."),
    ],
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
    """POST …/validate/details with HX-Trigger-Name: the field's fragment carries its message, only its."""
    drafts: dict[str, str] = {}
    # A second problem, not to be shown.
    other_bad = {"tags": "not//a tag"} if name != "tags" else {"title": ""}
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
        columns = ("title", "slug", "ai_label", "tags::text[]", "release_date", "body_md", "chapters",
                   "wizard_step", "updated_at")
        before = item_row(db, public_id, *columns)
        response = post_form(creator.client, f"/creator/items/{public_id}/details",
                             base_details(kind, **override))
        assert item_row(db, public_id, *columns) == before, override
        assert response.status_code == 422, override
        assert message in field_of(response.text, name), override
        if name != "title":  # what was typed comes back, to be corrected rather than retyped
            assert 'value="Night Drive"' in field_of(response.text, "title"), override


def test_inline_validation_of_a_valid_field_shows_no_message(creator: CreatorSetup) -> None:
    public_id = new_item(creator.client, "audio")
    response = creator.client.post(
        f"/creator/items/{public_id}/validate/details",
        data={**base_details("audio", tags="bad//tag", release_date="never"),
              "_csrf_token": csrf_token(creator.client)},
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
def test_ai_label_values(creator: CreatorSetup, db: psycopg.Connection, value: str,
                         stored: str | None) -> None:
    public_id = new_item(creator.client, "image", **base_details("image", ai_label=value))
    assert item_row(db, public_id, "ai_label") == (stored,)


def test_every_file_subtype_is_accepted_and_only_for_files(creator: CreatorSetup,
                                                           db: psycopg.Connection) -> None:
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
