"""The item wizard over HTTP: slugs (derived, numbered, typed, freed), Markdown rendered and sanitised, and
the markup of the details inputs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import psycopg
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, field_of, new_item
from tests.catalog.item_helpers import base_details, item_row
from tests.conftest import post_form

# -------------------------------------------------------------------------------- slugs


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


def test_a_title_without_letters_gets_a_placeholder_slug(creator: CreatorSetup,
                                                         db: psycopg.Connection) -> None:
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


# -------------------------------------------------------------------------------- Markdown

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


# -------------------------------------------------------------------------------- markup


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
    public_id = new_item(creator.client, "audio",
                         **base_details("audio", chapters="0:00 Intro\n1:02:03 Finale"))
    page = creator.client.get(f"/i/{public_id}").text  # the owner's view of the draft
    chapters = page[page.index('<ol class="chapters">'):
                    page.index("</ol>", page.index('<ol class="chapters">'))]
    assert re.findall(r'<span class="muted">([\d:]+)</span> (\w+)', chapters) == [("0:00", "Intro"),
                                                                                  ("1:02:03", "Finale")]
