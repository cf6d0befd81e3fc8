"""Keyset pages never skip or repeat an item, even while new items are published between one page and the next:
on search (newest and best match), on a creator's page and on a tag page, with and without htmx."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from litestar.testing import TestClient

from tests.discovery.conftest import (
    BASE_TIME,
    HTMX,
    add_creator,
    add_item,
    add_items,
    add_project,
    card_ids,
    flat,
    more_href,
    walk,
)


def assert_exact_walk(pages: list[list[str]], before: list[str], arrived: list[str], *, size: int) -> None:
    """The pages hold every item that existed when the walk began, once each, in order; items published during
    the walk may only be on the first page (they sort before the cursor), never after it."""
    shown = flat(pages)
    duplicates = [pid for pid, n in Counter(shown).items() if n > 1]
    assert not duplicates, duplicates
    assert [pid for pid in shown if pid not in arrived] == before
    assert not set(arrived) & set(flat(pages[1:]))
    assert all(len(page) == size for page in pages[:-1]), [len(p) for p in pages]


@pytest.mark.parametrize("htmx", [False, True], ids=["links", "htmx"])
def test_newest_first_search_while_items_are_published(client: TestClient, db: psycopg.Connection,
                                                       htmx: bool) -> None:
    nadia = add_creator(db, "nadia")
    # 60 items, three to a timestamp: the id must break the ties exactly.
    made = add_items(db, nadia, 60, "Tide {i}", ties=3)
    before = [pid for pid in reversed(made)]  # newest first: later timestamp, then higher id
    arrived: list[str] = []

    def publish_one(n: int) -> None:
        arrived.append(add_item(db, nadia, f"Tide late {n}"))  # now(): newer than all of them

    for url in ("/search?sort=new&size=7", "/search?q=tide&sort=new&size=7"):
        arrived.clear()
        pages = walk(client, url, htmx=htmx, between=publish_one)
        assert len(pages) == -(-len(before) // 7)
        assert_exact_walk(pages, before, arrived, size=7)
        before = list(reversed(arrived)) + before  # the next walk starts with them


def beacons(db: psycopg.Connection, creator_id: int) -> list[str]:
    """60 items matching "beacon" in four ways, each shared by many items (exact ties in score, broken by id): in
    the title, in a tag, in the description, and in the title with some sales (which nudge it up)."""
    made = []
    with db.transaction():
        for i in range(60):
            kind = i % 4
            if kind == 0:
                made.append(add_item(db, creator_id, "Beacon"))
            elif kind == 1:
                made.append(add_item(db, creator_id, f"Item {i}", tags=["signals.beacon"]))
            elif kind == 2:
                made.append(add_item(db, creator_id, f"Item {i}", description="a beacon in the dark"))
            else:
                made.append(add_item(db, creator_id, f"Beacon hit {i}", recent_sales=i % 3 + 1))
    return made


@pytest.mark.parametrize("htmx", [False, True], ids=["links", "htmx"])
def test_best_match_search_while_items_are_published(client: TestClient, db: psycopg.Connection,
                                                     htmx: bool) -> None:
    nadia = add_creator(db, "nadia")
    made = beacons(db, nadia)
    first_page = card_ids(client.get("/search?q=beacon&size=60").text)
    assert sorted(first_page) == sorted(made)
    arrived: list[str] = []

    def publish_one(n: int) -> None:
        # A new item that ranks like the best-ranked ones, but with a higher id: it belongs before the cursor.
        arrived.append(add_item(db, nadia, "Beacon hit late", recent_sales=3))

    pages = walk(client, "/search?q=beacon&size=7", htmx=htmx, between=publish_one)
    assert_exact_walk(pages, first_page, arrived, size=7)
    # Without anything published meanwhile, pages of any size give the same order as one big page.
    everything = flat(walk(client, "/search?q=beacon&size=60"))
    assert len(everything) == 60 + len(arrived)
    if not htmx:
        for size in (5, 13):
            assert flat(walk(client, f"/search?q=beacon&size={size}")) == everything, size


@pytest.mark.parametrize("htmx", [False, True], ids=["links", "htmx"])
def test_creator_page_while_items_are_published(client: TestClient, db: psycopg.Connection, htmx: bool) -> None:
    nadia = add_creator(db, "nadia")
    other = add_creator(db, "omar")
    made = add_items(db, nadia, 60, "Song {i}", ties=2)
    add_items(db, other, 5, "Not hers {i}")
    before = list(reversed(made))
    arrived: list[str] = []

    def publish_one(n: int) -> None:
        arrived.append(add_item(db, nadia, f"Fresh {n}"))
        add_item(db, other, f"Someone else's {n}")

    pages = walk(client, "/@nadia", htmx=htmx, between=publish_one)
    assert [len(p) for p in pages] == [24, 24, 12]
    assert_exact_walk(pages, before, arrived, size=24)


@pytest.mark.parametrize("htmx", [False, True], ids=["links", "htmx"])
def test_tag_page_while_items_are_published(client: TestClient, db: psycopg.Connection, htmx: bool) -> None:
    nadia = add_creator(db, "nadia")
    made = []
    with db.transaction():
        for i in range(60):  # spread over the subtree, same timestamp in pairs
            tag = ("music.electronic", "music.electronic.ambient", "music.electronic.techno.minimal")[i % 3]
            made.append(add_item(db, nadia, f"Track {i}", tags=[tag],
                                 published_at=BASE_TIME + timedelta(minutes=i // 2)))
    add_items(db, nadia, 4, "Jazz {i}", tags=["music.jazz"])
    before = list(reversed(made))
    arrived: list[str] = []

    def publish_one(n: int) -> None:
        arrived.append(add_item(db, nadia, f"Fresh {n}", tags=["music.electronic.ambient"]))

    pages = walk(client, "/t/music/electronic", htmx=htmx, between=publish_one)
    assert [len(p) for p in pages] == [24, 24, 12]
    assert_exact_walk(pages, before, arrived, size=24)


def test_other_orders_never_skip_or_repeat_while_items_are_published(client: TestClient,
                                                                     db: psycopg.Connection) -> None:
    """New items land wherever their price or sales put them (possibly on a later page: that is what keyset
    pagination promises), but every item that was there from the start is shown exactly once, in order."""
    nadia = add_creator(db, "nadia")
    with db.transaction():
        for i in range(40):  # many ties on every key
            price = (i * 7) % 5 * 100
            add_item(db, nadia, f"Ware {i}", price_mode="fixed" if price else "free", price_cents=price,
                     sales_count=(i * 3) % 4, recent_sales=(i * 5) % 3)
    arrived: list[str] = []

    def publish_one(n: int) -> None:
        price = (n * 3) % 5 * 100
        arrived.append(add_item(db, nadia, f"Late ware {n}", price_mode="fixed" if price else "free",
                                price_cents=price, sales_count=n % 4, recent_sales=n % 3))

    for sort in ("price_asc", "price_desc", "sales", "popular"):
        before = flat(walk(client, f"/search?sort={sort}&size=60"))
        arrived.clear()
        shown = flat(walk(client, f"/search?sort={sort}&size=6", between=publish_one))
        assert len(shown) == len(set(shown)), sort
        assert [pid for pid in shown if pid not in arrived] == before, sort


def test_items_unpublished_during_the_walk_are_not_shown_and_nothing_else_moves(client: TestClient,
                                                                                 db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    made = list(reversed(add_items(db, nadia, 30, "Leaf {i}")))
    gone: list[str] = []

    def unpublish(n: int) -> None:
        victim = made[-n]  # one from the end, not yet shown
        db.execute("UPDATE items SET status = 'draft' WHERE public_id = %s", (victim,))
        gone.append(victim)

    pages = walk(client, "/search?sort=new&size=7", between=unpublish)
    assert flat(pages) == [pid for pid in made if pid not in gone]


def test_the_plain_load_more_link(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    project = add_project(db, nadia, "Leaves", "leaves")
    made = list(reversed(add_items(db, nadia, 30, "Leaf {i}", tags=["nature"], project_id=project)))
    for first_url in ("/@nadia", "/@nadia/leaves", "/t/nature", "/search?sort=new"):
        page = client.get(first_url).text
        assert card_ids(page) == made[:24]
        link = more_href(page)
        assert link is not None
        # A real link (works without JavaScript) to the same address with a cursor, and htmx's next fragment.
        assert f'<a class="button button-secondary" href="{link.replace("&", "&amp;")}"' in page
        assert 'hx-target="closest li" hx-swap="outerHTML" rel="next">Load more</a>' in page
        assert link.startswith(first_url.split("?")[0] + "?") and "cursor=" in link
        second = client.get(link)
        assert second.status_code == 200 and second.text.lstrip().startswith("<!doctype html>")
        assert card_ids(second.text) == made[24:]
        assert more_href(second.text) is None
        # htmx asks for the next cards only; restoring history asks for the whole page.
        fragment = client.get(link, headers=HTMX)
        assert fragment.text.lstrip().startswith("<li") and card_ids(fragment.text) == made[24:]
        restored = client.get(link, headers={**HTMX, "HX-History-Restore-Request": "true"})
        assert restored.text.lstrip().startswith("<!doctype html>")


def test_search_load_more_keeps_the_filters(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    with db.transaction():
        paid = [add_item(db, nadia, f"Paid orbit {i}", price_mode="fixed", price_cents=100 + i, tags=["music"])
                for i in range(30)]
    add_items(db, nadia, 10, "Free orbit {i}", tags=["music"])
    link = more_href(client.get("/search?q=orbit&price=paid&tag=music&sort=price_asc&min=1").text)
    assert link is not None
    for kept in ("q=orbit", "price=paid", "tag=music", "sort=price_asc", "min=1.00"):
        assert kept in link, kept
    assert card_ids(client.get(link).text) == paid[24:]


def test_search_load_more_keeps_the_page_size(client: TestClient, db: psycopg.Connection) -> None:
    add_items(db, add_creator(db, "nadia"), 30)
    link = more_href(client.get("/search?sort=new&size=7").text)
    assert "size=7" in link
    assert len(card_ids(client.get(link).text)) == 7
