"""Search over HTTP: the page and its HTMX fragments, ranking by where a word is found, filters that combine,
every sort order, "did you mean", type-ahead, and what must never be found."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import main_of
from tests.discovery.conftest import (
    BASE_TIME,
    HTMX,
    add_creator,
    add_item,
    add_items,
    add_project,
    card_ids,
    more_href,
    refresh_lists,
    tag_heading,
)


def search(client: TestClient, **params: str) -> list[str]:
    response = client.get("/search", params=params)
    assert response.status_code == 200, response.text
    return card_ids(response.text)


def result_count(page: str) -> str:
    match = re.search(r'<p class="result-count muted">\s*(.*?)\s*</p>', page, re.S)
    return " ".join(html.unescape(match.group(1)).split()) if match else ""


# ------------------------------------------------------------------------------------------- page and fragments


def test_search_page_and_its_fragments(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia", "Nadia Vox")
    made = add_items(db, nadia, 9, "Lantern song {i}")
    add_item(db, nadia, "Something else")
    expected = list(reversed(made))  # equal relevance: newest (highest id) first

    full = client.get("/search", params={"q": "lantern", "size": "4"})
    assert full.status_code == 200
    assert full.text.lstrip().startswith("<!doctype html>")
    content = main_of(full.text)
    assert '<form id="search-form"' in content and 'value="lantern"' in content
    assert '<div id="search-results" aria-live="polite">' in content
    assert result_count(content) == "9 results."
    assert card_ids(content) == expected[:4]
    assert '<meta name="robots" content="noindex, follow">' in full.text
    assert "<title>“lantern” — search · Fairshelf</title>" in full.text

    # The form's live search swaps in just the results.
    fragment = client.get("/search", params={"q": "lantern", "size": "4"}, headers=HTMX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<form" not in fragment.text and "<main" not in fragment.text
    assert result_count(fragment.text) == "9 results."
    assert card_ids(fragment.text) == expected[:4]
    cursor = parse_qs(urlsplit(more_href(fragment.text)).query)["cursor"][0]

    # "Load more" with htmx: only the next cards (and the next "load more"), to replace the button's <li>.
    more = client.get("/search", params={"q": "lantern", "size": "4", "cursor": cursor}, headers=HTMX)
    assert more.status_code == 200
    assert more.text.lstrip().startswith('<li class="card item-card">')
    assert "result-count" not in more.text and "<ul" not in more.text
    assert card_ids(more.text) == expected[4:8]
    assert more_href(more.text) is not None

    # The same link without htmx is a whole page: it works with JavaScript off.
    plain = client.get(more_href(fragment.text))
    assert plain.status_code == 200 and '<form id="search-form"' in plain.text
    assert card_ids(plain.text)[:4] == expected[4:8]

    # An htmx history restore wants the whole page back.
    restore = client.get("/search", params={"q": "lantern", "cursor": cursor},
                         headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert '<form id="search-form"' in restore.text


def test_browse_without_words_and_the_counts(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    made = add_items(db, nadia, 3)
    page = client.get("/search").text
    assert result_count(page) == "3 results."
    assert card_ids(page) == list(reversed(made))
    # Relevance needs words; without them the order is the newest first.
    assert card_ids(client.get("/search?sort=relevance").text) == list(reversed(made))
    assert result_count(client.get("/search", params={"q": "piece"}).text) == "3 results."
    assert card_ids(client.get("/search", params={"q": "Piece 1"}).text) == [made[1]]  # every word must match
    nothing = client.get("/search", params={"q": "xylophone"}).text
    assert result_count(nothing) == "No results for “xylophone”."
    assert card_ids(nothing) == []


def test_only_one_result_is_counted_in_the_singular(client: TestClient, db: psycopg.Connection) -> None:
    add_item(db, add_creator(db, "nadia"), "Solitary")
    assert result_count(client.get("/search?q=solitary").text) == "1 result."


# ------------------------------------------------------------------------------------------------ ranking


def test_where_a_word_is_found_decides_the_order(client: TestClient, db: psycopg.Connection) -> None:
    """Title (A) above the creator's name and the tags (B) above the description (C), popularity being equal.
    The items are made in the reverse order, so the id (the tie-breaker) would put them the other way round."""
    plain = add_creator(db, "plain_maker", "Plain Maker")
    sailor = add_creator(db, "sailor_k", "Harbor Queen")
    in_description = add_item(db, plain, "Quiet evening", description="We walked along the harbor at dusk.")
    in_tag = add_item(db, plain, "Cranes and ropes", tags=["places.harbor"])
    by_name = add_item(db, sailor, "Untitled one")
    in_title = add_item(db, plain, "Harbor lights")
    add_item(db, plain, "Unrelated")

    order = search(client, q="harbor")
    assert order[0] == in_title
    assert set(order[1:3]) == {by_name, in_tag}
    assert order[3] == in_description
    assert len(order) == 4

    # The snippet comes from the description, with the match marked and everything else escaped.
    page = client.get("/search?q=harbor").text
    assert '<p class="snippet">walked along the <mark>harbor</mark> at dusk</p>' in page


def test_popularity_nudges_but_does_not_beat_a_better_match(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    famous_description = add_item(db, nadia, "Big seller", description="A harbor song.", recent_sales=1000)
    quiet_title = add_item(db, nadia, "Harbor", recent_sales=0)
    busy_title = add_item(db, nadia, "Harbor", recent_sales=20)
    assert search(client, q="harbor") == [busy_title, quiet_title, famous_description]


def test_a_creator_renaming_themselves_is_searchable(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia", "Nadia Vox")
    item = add_item(db, nadia, "Untitled")
    assert search(client, q="vox") == [item]
    db.execute("UPDATE users SET display_name = 'Nadia Moonbeam' WHERE id = %s", (nadia,))
    assert search(client, q="vox") == []
    assert search(client, q="moonbeam") == [item]


def test_snippets_are_escaped(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    add_item(db, nadia, "Trap",
             description='<script>alert("x")</script> <img src=x onerror=alert(1)> zebra stripes')
    page = client.get("/search?q=zebra").text
    snippet = re.search(r'<p class="snippet">(.*?)</p>', page).group(1)
    assert "<mark>zebra</mark>" in snippet
    assert "<script" not in snippet and "<img" not in snippet
    assert "&lt;" in snippet or "alert" not in snippet
    hostile = client.get("/search", params={"q": '<script>alert(1)</script>"'}).text
    assert "<script>alert(1)</script>" not in hostile
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile


# ------------------------------------------------------------------------------------------------ filters


@pytest.fixture
def catalog(db: psycopg.Connection) -> dict[str, str]:
    """Eight "orbit" items across types, prices and tags (and one item without the word)."""
    with db.transaction():  # one commit for the lot
        nadia = add_creator(db, "nadia", "Nadia Vox")
        t = BASE_TIME
        made = {
            "free_song": add_item(db, nadia, "Orbit free song", tags=["music.electronic.ambient"], published_at=t),
            "cheap_song": add_item(db, nadia, "Orbit cheap song", tags=["music.electronic"], price_mode="fixed",
                                   price_cents=199, published_at=t + timedelta(minutes=1)),
            "jazz_pwyw": add_item(db, nadia, "Orbit jazz", tags=["music.jazz"], price_mode="pwyw", price_cents=300,
                                  published_at=t + timedelta(minutes=2)),
            "pricey_song": add_item(db, nadia, "Orbit deluxe", tags=["music.electronic.techno"], price_mode="fixed",
                                    price_cents=2500, published_at=t + timedelta(minutes=3)),
            "film": add_item(db, nadia, "Orbit film", kind="video", tags=["video.film"], price_mode="fixed",
                             price_cents=999, published_at=t + timedelta(minutes=4)),
            "free_film": add_item(db, nadia, "Orbit short", kind="video", tags=["video.film.short"],
                                  published_at=t + timedelta(minutes=5)),
            "essay": add_item(db, nadia, "Orbit essay", kind="text", tags=["writing"], price_mode="fixed",
                              price_cents=500, published_at=t + timedelta(minutes=6)),
            "pwyw_free": add_item(db, nadia, "Orbit anything", kind="file", tags=["software"], price_mode="pwyw",
                                  price_cents=0, published_at=t + timedelta(minutes=7)),
        }
        made["other"] = add_item(db, nadia, "Moon", tags=["music.electronic"], published_at=t + timedelta(minutes=8))
    return made


FILTER_CASES = [
    ({"type": "video"}, {"film", "free_film"}),
    ({"type": "audio"}, {"free_song", "cheap_song", "jazz_pwyw", "pricey_song"}),
    ({"price": "free"}, {"free_song", "free_film", "pwyw_free"}),
    ({"price": "paid"}, {"cheap_song", "jazz_pwyw", "pricey_song", "film", "essay"}),
    ({"min": "5"}, {"pricey_song", "film", "essay"}),
    ({"min": "5.00", "max": "9.99"}, {"film", "essay"}),
    ({"max": "3"}, {"free_song", "cheap_song", "jazz_pwyw", "free_film", "pwyw_free"}),
    ({"max": "$1.99"}, {"free_song", "cheap_song", "free_film", "pwyw_free"}),
    ({"tag": "music"}, {"free_song", "cheap_song", "jazz_pwyw", "pricey_song"}),
    ({"tag": "music.electronic"}, {"free_song", "cheap_song", "pricey_song"}),
    ({"tag": "music/electronic/ambient"}, {"free_song"}),
    ({"tag": "video.film"}, {"film", "free_film"}),
    ({"type": "audio", "price": "paid"}, {"cheap_song", "jazz_pwyw", "pricey_song"}),
    ({"type": "audio", "price": "paid", "tag": "music.electronic", "max": "10"}, {"cheap_song"}),
    ({"type": "video", "price": "free", "tag": "video"}, {"free_film"}),
    ({"price": "free", "min": "1"}, set()),
    ({"min": "10", "max": "5"}, set()),
    ({"type": "image"}, set()),
]


@pytest.mark.parametrize("with_words", [True, False], ids=["search", "browse"])
def test_filters_narrow_and_combine(client: TestClient, catalog: dict[str, str], with_words: bool) -> None:
    names = {v: k for k, v in catalog.items()}
    for params, expected in FILTER_CASES:
        query = {"q": "orbit", **params} if with_words else dict(params)
        if not with_words and _moon_passes(params):
            expected = expected | {"other"}  # browsing (no words) also finds "Moon"
        for sort in ("relevance", "price_asc") if with_words else ("price_asc",):
            found = [names[p] for p in search(client, **query, sort=sort, size="60")]
            assert len(found) == len(set(found))
            assert set(found) == expected, (query, sort, found)


def _moon_passes(params: dict[str, str]) -> bool:
    """Whether "Moon" (free audio tagged music.electronic) passes these filters."""
    return (params.get("type", "audio") == "audio" and params.get("price") != "paid" and "min" not in params
            and params.get("tag", "music").replace("/", ".") in ("music", "music.electronic"))


def test_the_form_keeps_the_filters_and_notes_what_it_ignored(client: TestClient, catalog: dict[str, str]) -> None:
    page = client.get("/search", params={"q": "orbit", "type": "video", "price": "free", "min": "abc",
                                         "max": "12.5", "tag": "video/film", "sort": "price_desc"}).text
    assert '<option value="video" selected>Video</option>' in page
    assert '<option value="free" selected>Free</option>' in page
    assert '<option value="price_desc" selected>Price: high to low</option>' in page
    assert 'name="min" value=""' in page and 'name="max" value="12.50"' in page
    assert '<input type="hidden" name="tag" value="video.film">' in page
    assert "Ignored: Minimum price “abc” is not an amount." in html.unescape(page)
    assert card_ids(page) == [catalog["free_film"]]
    # Removing the tag keeps everything else.
    remove = html.unescape(re.search(r'<a href="(\?[^"]*)">remove</a>', page).group(1))
    assert parse_qs(remove[1:]) == {"q": ["orbit"], "type": ["video"], "price": ["free"], "sort": ["price_desc"],
                                    "max": ["12.50"]}
    # Unknown values are ignored rather than refused.
    unknown = search(client, q="orbit", type="podcast", price="cheap", sort="random")
    assert set(unknown) == set(catalog.values()) - {catalog["other"]}


# ------------------------------------------------------------------------------------------------ sorts


def test_every_sort_order(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    rows = [  # title, price, sales_count, recent_sales, minutes after BASE_TIME
        ("Comet a", 500, 10, 1, 0), ("Comet b", 100, 50, 7, 5), ("Comet c", 500, 10, 7, 2),
        ("Comet d", 0, 0, 0, 9), ("Comet e", 2500, 3, 2, 1), ("Comet f", 100, 50, 0, 5),
    ]
    ids = {}
    for title, price, sales, recent, minutes in rows:
        ids[title[-1]] = add_item(db, nadia, title, price_mode="fixed" if price else "free", price_cents=price,
                                  sales_count=sales, recent_sales=recent,
                                  published_at=BASE_TIME + timedelta(minutes=minutes))
    # Ties are broken by id: the later item first in descending orders, the earlier first in ascending ones.
    expected = {"new": "dfbcea", "price_asc": "dbface", "price_desc": "ecafbd", "sales": "fbcaed",
                "popular": "cbeafd"}
    for sort, letters in expected.items():
        wanted = [ids[x] for x in letters]
        for q in ("", "comet"):
            assert search(client, q=q, sort=sort) == wanted, (sort, q)
            # And across pages of two, the same order.
            pages, cursor = [], None
            while True:
                params = {"q": q, "sort": sort, "size": "2", **({"cursor": cursor} if cursor else {})}
                response = client.get("/search", params=params, headers=HTMX if cursor else {})
                pages += card_ids(response.text)
                href = more_href(response.text)
                if not href:
                    break
                cursor = parse_qs(urlsplit(href).query)["cursor"][0]
            assert pages == wanted, (sort, q, "paged")


def test_size_is_capped(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    add_items(db, nadia, 65, "Bulk {i}")
    for size, shown in (("100000", 60), ("60", 60), ("61", 60), ("0", 1), ("-3", 1), ("abc", 24), ("", 24),
                        ("9" * 5000, 24), ("7", 7)):
        response = client.get("/search", params={"size": size})
        assert response.status_code == 200, size
        assert len(card_ids(response.text)) == shown, size
        response = client.get("/search", params={"q": "bulk", "size": size})
        assert len(card_ids(response.text)) == shown, size


# ------------------------------------------------------------------------------------------------ did you mean


def test_did_you_mean_after_the_word_list_is_refreshed(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia", "Nadia Vox")
    lantern = add_item(db, nadia, "Midnight Lantern", tags=["music.ambient"])
    add_item(db, nadia, "Hidden lanterns", status="draft")

    typo = client.get("/search?q=lanterm").text
    assert result_count(typo) == "No results for “lanterm”."
    assert "Did you mean" not in typo  # the word list has not been built yet
    refresh_lists(db)
    for params, suggestion in (({"q": "lanterm"}, "lantern"), ({"q": "midnigt lanterm"}, "midnight lantern"),
                               ({"q": "Lanterm", "type": "audio"}, "lantern")):
        page = client.get("/search", params=params).text
        link = re.search(
            r'<p class="did-you-mean">Did you mean <a href="([^"]*)"><strong>([^<]*)</strong></a>\?</p>', page)
        assert link, page
        assert link.group(2) == suggestion
        href = html.unescape(link.group(1))
        assert parse_qs(urlsplit(href).query)["q"] == [suggestion]
        if "type" in params:
            assert parse_qs(urlsplit(href).query)["type"] == ["audio"]  # the filters are kept
        assert card_ids(client.get(href).text) == [lantern]
    # A query that finds enough gets no hint; nor does one with nothing like a known word.
    assert "Did you mean" not in client.get("/search?q=lantern").text
    assert "Did you mean" not in client.get("/search?q=qqqqzzzz").text


# ------------------------------------------------------------------------------------------------ type-ahead


def suggestions(client: TestClient, q: str) -> list[tuple[str, str]]:
    response = client.get("/search/suggest", params={"q": q}, headers=HTMX)
    assert response.status_code == 200, response.text
    return [(href, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", label)).split()))
            for href, label in re.findall(r'<li><a href="([^"]*)">(.*?)</a></li>', response.text, re.S)]


def test_type_ahead_suggests_titles_creators_and_tags(client: TestClient, db: psycopg.Connection) -> None:
    lana = add_creator(db, "lana_beats", "Lana Del Mar")
    other = add_creator(db, "omar", "Omar K")
    lantern = add_item(db, other, "Lantern Festival", tags=["music.lanterna"])
    landing = add_item(db, other, "Landing Lights", tags=["video.landscape"])
    add_item(db, other, "Lanyard draft", status="draft")
    add_item(db, lana, "Something", tags=["music.electronic"])
    refresh_lists(db)

    found = suggestions(client, "lan")
    titles = [label for href, label in found if href.startswith("/i/")]
    assert set(titles) == {"Lantern Festival", "Landing Lights"}
    assert (f"/i/{lantern}", "Lantern Festival") in found and (f"/i/{landing}", "Landing Lights") in found
    assert ("/@lana_beats", "Lana Del Mar @lana_beats") in found
    assert ("/t/music/lanterna", "#music / lanterna 1") in found
    assert ("/t/video/landscape", "#video / landscape 1") in found
    assert found[-1] == ("/search?q=lan", "Search for “lan”")
    assert "Lanyard draft" not in str(found)

    # Typing on narrows it; case does not matter; a username matches too.
    narrowed = suggestions(client, "LANTERN F")
    assert [label for href, label in narrowed if href.startswith("/i/")] == ["Lantern Festival"]
    assert ("/@lana_beats", "Lana Del Mar @lana_beats") in suggestions(client, "lana_b")
    # Near misses are suggested by similarity once three letters are typed.
    assert (f"/i/{lantern}", "Lantern Festival") in suggestions(client, "lanterm festival")
    # One letter is not enough to suggest anything, and nothing found is an empty fragment.
    for q in ("l", "", "  ", "zzzzqqq"):
        response = client.get("/search/suggest", params={"q": q}, headers=HTMX)
        assert response.status_code == 200 and response.text.strip() == "", q


def test_suggest_without_htmx_goes_to_the_search_page(client: TestClient) -> None:
    response = client.get("/search/suggest", params={"q": "night drive"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/search?q=night+drive"
    assert client.get("/search/suggest?q=x", follow_redirects=False).headers["location"] == "/search?q=x"
    assert client.get("/search/suggest", follow_redirects=False).headers["location"] == "/search?q="


def test_the_search_page_shows_creators_and_tags_that_match(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia", "Nadia Vox")
    add_item(db, nadia, "Ambient one", tags=["music.ambient"])
    refresh_lists(db)
    page = client.get("/search?q=ambient").text
    inline = page[page.index('<ul class="tags suggestions-inline">'):]
    assert '<a class="tag" href="/t/music/ambient">#music / ambient <span class="muted">1</span></a>' in inline
    page = client.get("/search?q=nadia").text
    assert '<a class="tag" href="/@nadia">Nadia Vox <span class="muted">@nadia</span></a>' in page


# ------------------------------------------------------------------------------------------------ never found


def test_drafts_unlisted_and_deleted_items_are_never_listed(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia", "Nadia Vox")
    project = add_project(db, nadia, "Zephyr Works", "zephyr-works")
    listed = add_item(db, nadia, "Zephyr listed", tags=["weather.wind"], project_id=project, recent_sales=3)
    hidden = {
        "draft": add_item(db, nadia, "Zephyr draft", status="draft", tags=["weather.wind"], project_id=project,
                          recent_sales=9),
        "unlisted": add_item(db, nadia, "Zephyr unlisted", status="unlisted", tags=["weather.wind"],
                             project_id=project, recent_sales=9),
        "archived": add_item(db, nadia, "Zephyr archived", status="archived", tags=["weather.wind"],
                             project_id=project, recent_sales=9),
        "deleted": add_item(db, nadia, "Zephyr deleted", deleted=True, tags=["weather.wind"], project_id=project,
                            recent_sales=9),
    }
    only_draft = add_creator(db, "drafty", "Drafty")
    hidden["other_draft"] = add_item(db, only_draft, "Zephyr elsewhere", status="draft", tags=["weather.storm"])
    refresh_lists(db)

    pages = {
        "search": client.get("/search?q=zephyr").text,
        "search by tag": client.get("/search?tag=weather").text,
        "browse": client.get("/search").text,
        "popular": client.get("/search?sort=popular").text,
        "home": client.get("/").text,
        "profile": client.get("/@nadia").text,
        "project": client.get("/@nadia/zephyr-works").text,
        "tag": client.get("/t/weather").text,
        "suggest": client.get("/search/suggest?q=zeph", headers=HTMX).text,
        "feed": client.get("/@nadia/feed.atom").text,
        "project feed": client.get("/@nadia/zephyr-works/feed.atom").text,
        "sitemap": client.get("/sitemaps/items/0.xml").text,
    }
    for name, page in pages.items():
        assert listed in page, name
        for status, public_id in hidden.items():
            assert public_id not in page, (name, status)
        assert "Zephyr draft" not in page and "Zephyr deleted" not in page, name
    assert tag_heading(pages["tag"]) == ("weather", "1 work")
    assert "/t/weather/storm" not in pages["tag"]  # a tag only a draft carries is not counted
    assert client.get("/t/weather/storm").status_code == 404
    people = client.get("/sitemaps/people.xml").text
    assert "/@nadia/zephyr-works" in people and "drafty" not in people
    assert "Did you mean" not in client.get("/search?q=elsewher").text  # a draft's words are not suggested
