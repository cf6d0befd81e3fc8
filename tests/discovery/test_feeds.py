"""Atom feeds for creators and projects (read by feedparser, as feed readers and podcast apps do), playing a free
item, and an item published through the real wizard and upload pipeline that search, lists and feeds then find."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import feedparser
import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, main_of, new_item, ready_file
from tests.catalog.item_helpers import details, publish, publishable_audio
from tests.conftest import post_form
from tests.discovery.conftest import (
    BASE_TIME,
    HTMX,
    add_creator,
    add_item,
    add_project,
    card_ids,
    refresh_lists,
)

BASE = "http://testserver.local"


def read_feed(client: TestClient, path: str):  # type: ignore[no-untyped-def]
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(response.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    for entry in feed.entries:
        assert entry.title and entry.link and entry.id and entry.updated_parsed and entry.published_parsed
    return feed


@pytest.fixture
def shelf(db: psycopg.Connection) -> dict[str, str]:
    with db.transaction():  # one commit for the lot
        nadia = add_creator(db, "nadia", "Nadia & the <Vox>", bio="Synths.")
        night = add_project(db, nadia, "Night Shift", "night-shift")
        add_project(db, nadia, "Empty Room", "empty-room")
        made = {
            "oldest": add_item(db, nadia, "Rock & Roll <live>", tags=["music.rock"], published_at=BASE_TIME,
                               description='Loud & "proud" — <b>not</b> bold. 🎸\n\nSecond *paragraph*.'),
            "middle": add_item(db, nadia, "Harbour Lights", tags=["music.electronic.ambient", "field_recordings"],
                               project_id=night, price_mode="fixed", price_cents=499,
                               published_at=BASE_TIME + timedelta(days=1)),
            "newest": add_item(db, nadia, "Essay ✍", kind="text", project_id=night,
                               published_at=BASE_TIME + timedelta(days=2)),
            "draft": add_item(db, nadia, "Secret draft", status="draft", project_id=night),
            "unlisted": add_item(db, nadia, "By link only", status="unlisted", project_id=night),
            "deleted": add_item(db, nadia, "Deleted one", deleted=True, project_id=night),
        }
        add_item(db, add_creator(db, "omar"), "Someone else's")
    return made


def test_creator_feed(client: TestClient, shelf: dict[str, str]) -> None:
    feed = read_feed(client, "/@nadia/feed.atom")
    assert feed.feed.title == "Nadia & the <Vox>"
    assert feed.feed.id == f"{BASE}/@nadia/feed.atom"
    links = {link.rel: link.href for link in feed.feed.links}
    assert links == {"self": f"{BASE}/@nadia/feed.atom", "alternate": f"{BASE}/@nadia"}
    assert feed.feed.author == "Nadia & the <Vox>"
    # Only listed items, newest first; nobody else's.
    assert [e.title for e in feed.entries] == ["Essay ✍", "Harbour Lights", "Rock & Roll <live>"]
    assert [e.link for e in feed.entries] == [f"{BASE}/i/{shelf[k]}" for k in ("newest", "middle", "oldest")]
    assert [e.id for e in feed.entries] == [f"{BASE}/i/{shelf[k]}" for k in ("newest", "middle", "oldest")]
    oldest = feed.entries[2]
    assert oldest.summary.startswith('Loud & "proud" — <b>not</b> bold. 🎸')  # as text
    assert [t.term for t in oldest.tags] == ["music.rock"]
    assert [t.label for t in feed.entries[1].tags] == ["music / electronic / ambient", "field recordings"]
    assert "<em>paragraph</em>" in oldest.content[0].value  # the rendered description, as HTML
    assert feed.feed.updated_parsed is not None
    assert not any("enclosure" == link.rel for e in feed.entries for link in e.links)  # no files to play here
    # The profile page points readers at it.
    assert '<link rel="alternate" type="application/atom+xml"' in client.get("/@nadia").text


def test_project_feed(client: TestClient, shelf: dict[str, str]) -> None:
    feed = read_feed(client, "/@nadia/night-shift/feed.atom")
    assert feed.feed.title == "Night Shift — Nadia & the <Vox>"
    assert {link.rel: link.href for link in feed.feed.links}["alternate"] == f"{BASE}/@nadia/night-shift"
    assert [e.title for e in feed.entries] == ["Essay ✍", "Harbour Lights"]
    empty = read_feed(client, "/@nadia/empty-room/feed.atom")
    assert empty.entries == [] and empty.feed.title == "Empty Room — Nadia & the <Vox>"


def test_feed_of_a_creator_with_nothing_listed(client: TestClient, db: psycopg.Connection) -> None:
    quiet = add_creator(db, "quiet", "Quiet One")
    add_item(db, quiet, "Not yet", status="draft")
    feed = read_feed(client, "/@quiet/feed.atom")
    assert feed.entries == [] and feed.feed.title == "Quiet One"


def test_feeds_of_nobody_are_404(client: TestClient, shelf: dict[str, str]) -> None:
    for path in ("/@ghost/feed.atom", "/@nadia/no-such-project/feed.atom", "/@x/feed.atom", "/nadia/feed.atom",
                 "/@omar/night-shift/feed.atom"):
        assert client.get(path).status_code == 404, path


def test_playing_needs_a_free_item_or_your_own(client: TestClient, shelf: dict[str, str]) -> None:
    paid = client.get(f"/i/{shelf['middle']}/stream", follow_redirects=False)
    assert paid.status_code == 403
    assert "This item is for sale: buy it to play or download it." in paid.text
    # A free item with no file to play yet.
    assert client.get(f"/i/{shelf['oldest']}/stream", follow_redirects=False).status_code == 404
    for hidden in ("draft", "deleted"):
        assert client.get(f"/i/{shelf[hidden]}/stream", follow_redirects=False).status_code == 404


# ------------------------------------------------------------------------------------------------ the real thing


def test_published_through_the_wizard_then_found_everywhere(creator: CreatorSetup, visitor: TestClient,
                                                            db: psycopg.Connection, tmp_path: Path) -> None:
    """A paid and a free audio item made with the real wizard, a real MP3 through the upload pipeline and the
    worker; then a visitor finds them by search, type-ahead, profile, tag and feed, and plays the free one."""
    paid = publishable_audio(creator, tmp_path, price="4.99")  # "Night Drive"
    assert publish(creator.client, paid).status_code == 303
    free = new_item(creator.client, "audio", **details(title="Tide Tables", tags="podcasts/talk",
                                                       description="Talking about **tides**."))
    assert post_form(creator.client, f"/creator/items/{free}/pricing", {"price_mode": "free"}).status_code == 303
    ready_file(creator.client, creator.settings, free, tmp_path, name="tide.mp3")
    assert publish(creator.client, free).status_code == 303
    size = (tmp_path / "tide.mp3").stat().st_size

    # Search: by title, creator, tag and description words; filters agree.
    assert card_ids(visitor.get("/search?q=night+drive").text) == [paid]
    assert card_ids(visitor.get("/search?q=tides").text) == [free]
    assert set(card_ids(visitor.get("/search?q=maker").text)) == {paid, free}
    assert card_ids(visitor.get("/search?q=ambient").text) == [paid]
    assert card_ids(visitor.get("/search?price=free&type=audio").text) == [free]
    assert card_ids(visitor.get("/search?price=paid&min=4.99&max=4.99").text) == [paid]
    suggest = visitor.get("/search/suggest?q=night", headers=HTMX).text
    assert f'<a href="/i/{paid}">Night Drive</a>' in suggest
    # The profile, its newest first; the tag pages.
    assert card_ids(main_of(visitor.get("/@maker").text)) == [free, paid]
    assert card_ids(visitor.get("/t/music/electronic").text) == [paid]
    assert card_ids(visitor.get("/t/podcasts").text) == [free]
    refresh_lists(db)
    assert "/t/podcasts" in visitor.get("/").text
    assert "Did you mean" in visitor.get("/search?q=nigth+drvie").text

    # The feed offers the free one's file to podcast apps, and not the paid one's.
    feed = read_feed(visitor, "/@maker/feed.atom")
    entries = {e.link.rsplit("/", 1)[-1]: e for e in feed.entries}
    assert set(entries) == {paid, free}
    enclosures = [link for link in entries[free].links if link.rel == "enclosure"]
    assert len(enclosures) == 1
    assert enclosures[0].href == f"{BASE}/i/{free}/stream"
    assert enclosures[0].type == "audio/mpeg"
    assert int(enclosures[0].length) == size
    assert not [link for link in entries[paid].links if link.rel == "enclosure"]
    assert feed.entries[0].enclosures[0].href == f"{BASE}/i/{free}/stream"

    # Playing: a short-lived signed link for the free one, for anyone.
    link = visitor.get(f"/i/{free}/stream", follow_redirects=False)
    assert link.status_code == 302
    assert link.headers["cache-control"] == "private, no-store"
    target = urlsplit(link.headers["location"])
    assert {"e", "s", "t"} <= set(parse_qs(target.query)) and parse_qs(target.query)["t"] == ["audio/mpeg"]
    played = visitor.get(link.headers["location"])
    assert played.status_code == 200 and played.content == (tmp_path / "tide.mp3").read_bytes()
    # The paid one: refused to a visitor, played for its owner.
    assert visitor.get(f"/i/{paid}/stream", follow_redirects=False).status_code == 403
    own = creator.client.get(f"/i/{paid}/stream", follow_redirects=False)
    assert own.status_code == 302
    assert creator.client.get(own.headers["location"]).content == (tmp_path / "song.mp3").read_bytes()

    # Unlisting takes it out of search, lists and the feed at once (the item page stays reachable).
    assert post_form(creator.client, f"/creator/items/{free}/status", {"status": "unlisted"}).status_code in (
        200, 303)
    assert db.execute("SELECT status FROM items WHERE public_id = %s", (free,)).fetchone() == ("unlisted",)
    assert card_ids(visitor.get("/search?q=tides").text) == []
    assert card_ids(main_of(visitor.get("/@maker").text)) == [paid]
    assert [e.link for e in read_feed(visitor, "/@maker/feed.atom").entries] == [f"{BASE}/i/{paid}"]
    assert visitor.get(f"/i/{free}").status_code == 200


@pytest.mark.parametrize("path", ["/@nadia", "/@nadia/feed.atom", "/sitemap.xml", "/i/{free}", "/i/{free}/stream"])
def test_head_is_answered_like_get(client: TestClient, shelf: dict[str, str], path: str) -> None:
    url = path.format(free=shelf["oldest"])
    response = client.head(url, follow_redirects=False)
    full = client.get(url, follow_redirects=False)
    assert response.status_code == full.status_code != 405  # (this item has no file: its stream is a 404)
    assert response.content == b""
    if response.status_code == 200:
        assert response.headers["etag"] == full.headers["etag"]
        assert response.headers["content-length"] == str(len(full.content))
