"""Every public discovery page over HTTP, as a browser and as HTMX asks for it: home, creator profiles, projects,
tags, the item page, robots.txt and the sitemaps."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

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
    card_titles,
    more_href,
    refresh_lists,
    tag_heading,
    walk,
)

SITEMAP_NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def full_page(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lstrip().startswith("<!doctype html>")
    return main_of(response.text)


def tag_links(content: str) -> list[tuple[str, str]]:
    return [(href, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", label)).split()))
            for href, label in re.findall(r'<a class="tag" href="([^"]*)">(.*?)</a>', content, re.S)]


def section(content: str, heading_id: str) -> str:
    start = content.index(f'id="{heading_id}"')
    end = content.find("</section>", start)
    return content[start:end]


# ------------------------------------------------------------------------------------------------ home


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["browser", "htmx"])
def test_home_when_nothing_is_published(client: TestClient, headers: dict[str, str]) -> None:
    content = full_page(client.get("/", headers=headers))
    assert "Nothing published yet — be the first to sell." in content
    assert "popular-heading" not in content
    assert "tags-heading" not in content
    assert '<a class="button" href="/signup">Create your account</a>' in content


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["browser", "htmx"])
def test_home_new_releases_popular_and_tags(client: TestClient, db: psycopg.Connection,
                                            headers: dict[str, str]) -> None:
    nadia = add_creator(db, "nadia", "Nadia Vox")
    old = add_items(db, nadia, 14, "Old {i}", tags=["music.electronic"])  # oldest first
    hit = add_item(db, nadia, "Big Hit", tags=["video.film"], kind="video", recent_sales=9,
                   published_at=BASE_TIME - timedelta(days=30))
    minor = add_item(db, nadia, "Small Hit", tags=["writing"], kind="text", recent_sales=2,
                     published_at=BASE_TIME - timedelta(days=31))
    add_item(db, nadia, "Hidden draft", status="draft", recent_sales=50, tags=["secret"])

    # Before the tag counts are refreshed there is nothing to browse by.
    content = full_page(client.get("/", headers=headers))
    assert "tags-heading" not in content
    refresh_lists(db)
    content = full_page(client.get("/", headers=headers))

    new = section(content, "new-heading")
    assert card_ids(new) == list(reversed(old))[:12]  # newest first, a dozen of them
    assert '<a class="see-all" href="/search?sort=new">See all</a>' in new
    assert more_href(new) is not None and more_href(new).startswith("/search?sort=new&cursor=")

    popular = section(content, "popular-heading")
    assert card_ids(popular) == [hit, minor]  # only items that sold recently, best first
    assert card_titles(popular) == ["Big Hit", "Small Hit"]
    assert "Hidden draft" not in content

    tags = section(content, "tags-heading")
    assert tag_links(tags) == [("/t/music", "music 14"), ("/t/video", "video 1"), ("/t/writing", "writing 1")]
    assert "secret" not in tags  # a draft's tag is not counted


def test_home_popular_is_hidden_when_nothing_sold_recently(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    add_item(db, nadia, "Evergreen", sales_count=500, recent_sales=0)
    content = full_page(client.get("/"))
    assert card_titles(section(content, "new-heading")) == ["Evergreen"]
    assert "Popular this month" not in content


def test_home_load_more_continues_the_new_releases(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    made = add_items(db, nadia, 30, "Track {i}")
    home = client.get("/").text
    first = card_ids(section(main_of(home), "new-heading"))
    link = more_href(section(main_of(home), "new-heading"))
    assert link is not None
    rest = walk(client, link)
    shown = first + [pid for page in rest for pid in page]
    assert shown == list(reversed(made))  # the link works without JavaScript, nothing skipped or repeated
    htmx = client.get(link, headers=HTMX)  # and with htmx it answers with just the next cards
    assert htmx.status_code == 200 and htmx.text.lstrip().startswith("<li")
    assert card_ids(htmx.text) == list(reversed(made))[12:]


# ------------------------------------------------------------------------------------------------ profiles


@pytest.fixture
def nadia(db: psycopg.Connection) -> dict[str, object]:
    """A creator with a bio, links, two projects (one with only a draft), a tagged catalog, and a neighbour."""
    with db.transaction():  # one commit for the lot
        user = add_creator(db, "nadia", "Nadia Vox", bio="Synths & field recordings from the coast.",
                           links=["https://example.com/nadia", "https://nadia.example.org"])
        night = add_project(db, user, "Night Shift", "night-shift", "Music made **after dark**.")
        empty = add_project(db, user, "Unreleased", "unreleased")
        items = {
            "ambient": add_item(db, user, "Harbour Lights", tags=["music.electronic.ambient", "field_recordings"],
                                project_id=night, price_mode="fixed", price_cents=499,
                                description="Recorded **at night** on the coast.", published_at=BASE_TIME),
            "techno": add_item(db, user, "Warehouse", tags=["music.electronic.techno"], project_id=night,
                               published_at=BASE_TIME + timedelta(hours=1)),
            "jazz": add_item(db, user, "Blue Rooms", tags=["music.jazz"],
                             published_at=BASE_TIME + timedelta(hours=2)),
            "essay": add_item(db, user, "On Listening", kind="text", tags=["writing.essays"],
                              published_at=BASE_TIME + timedelta(hours=3)),
            "draft": add_item(db, user, "Half Done", status="draft", project_id=empty, tags=["music.electronic"]),
            "unlisted": add_item(db, user, "Link Only", status="unlisted", project_id=night,
                                 tags=["music.electronic"]),
            "deleted": add_item(db, user, "Gone", deleted=True, project_id=night, tags=["music.electronic"]),
        }
        other = add_creator(db, "omar", "Omar K")
        items["other"] = add_item(db, other, "Someone Else", tags=["music.electronic.ambient"])
        add_project(db, other, "Elsewhere", "elsewhere")
    refresh_lists(db)
    return {"id": user, "night": night, "items": items}


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["browser", "htmx"])
def test_profile_page(client: TestClient, nadia: dict, headers: dict[str, str]) -> None:
    items = nadia["items"]
    response = client.get("/@nadia", headers=headers)
    content = full_page(response)
    page = response.text
    assert "<h1>Nadia Vox</h1>" in content
    assert '<p class="bio">Synths &amp; field recordings from the coast.</p>' in content
    assert re.findall(r'<li><a href="([^"]*)" rel="nofollow noopener me">([^<]*)</a></li>', content) == [
        ("https://example.com/nadia", "example.com/nadia"), ("https://nadia.example.org", "nadia.example.org")]
    # Only projects with something listed in them.
    assert tag_links(section(content, "projects-heading")) == [("/@nadia/night-shift", "Night Shift")]
    work = section(content, "items-heading")
    assert card_ids(work) == [items["essay"], items["jazz"], items["techno"], items["ambient"]]
    assert 'href="/@nadia">Nadia Vox</a> · $4.99' in work
    assert more_href(work) is None
    assert '<link rel="canonical" href="http://testserver.local/@nadia">' in page
    assert ('<link rel="alternate" type="application/atom+xml" title="New from Nadia Vox" '
            'href="/@nadia/feed.atom">') in page
    assert '<meta property="og:type" content="profile">' in page
    assert '<meta property="og:title" content="Nadia Vox on Fairshelf">' in page
    assert '<meta property="og:description" content="Synths &amp; field recordings from the coast.">' in page
    assert "<title>Nadia Vox (@nadia) · Fairshelf</title>" in page


def test_profile_address_is_case_insensitive(client: TestClient, nadia: dict) -> None:
    page = client.get("/@Nadia").text
    assert "<h1>Nadia Vox</h1>" in page
    assert '<link rel="canonical" href="http://testserver.local/@nadia">' in page


def test_profile_with_nothing_published(client: TestClient, db: psycopg.Connection) -> None:
    add_creator(db, "quiet", "Quiet One")
    content = full_page(client.get("/@quiet"))
    assert "Nothing published here yet." in content
    assert "projects-heading" not in content
    assert '<p class="bio">' not in content


PROFILES_NOT_FOUND = [
    ("/@ghost", "There is no creator at this address."),
    ("/@fan_only", "There is no creator at this address."),  # a user who does not sell
    ("/@x", "There is nobody at this address."),  # too short to be a username
    ("/@" + "a" * 31, "There is nobody at this address."),
    ("/@bad-name", "There is nobody at this address."),
    ("/nobody", "There is nobody at this address."),  # no @
    ("/nadia", "There is nobody at this address."),
]


def test_profile_not_found(client: TestClient, nadia: dict, db: psycopg.Connection) -> None:
    db.execute("INSERT INTO users (email, username, display_name, password_hash) "
               "VALUES ('fan@example.com', 'fan_only', 'Fan', 'x')")
    for path, message in PROFILES_NOT_FOUND:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.text.lstrip().startswith("<!doctype html>")
        assert message in main_of(response.text), path
        assert "cache-control" not in response.headers and "etag" not in response.headers
        toast = client.get(path, headers=HTMX)  # from htmx: a toast, nothing to swap
        assert toast.status_code == 404 and toast.text == ""
        assert message in toast.headers["HX-Trigger"] and toast.headers["HX-Reswap"] == "none"


# ------------------------------------------------------------------------------------------------ projects


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["browser", "htmx"])
def test_project_page(client: TestClient, nadia: dict, headers: dict[str, str]) -> None:
    items = nadia["items"]
    response = client.get("/@nadia/night-shift", headers=headers)
    content = full_page(response)
    assert ('<nav class="breadcrumbs" aria-label="Breadcrumb"><a href="/@nadia">Nadia Vox</a> › '
            '<span aria-current="page">Night Shift</span></nav>') in content
    assert "<h1>Night Shift</h1>" in content
    assert "<strong>after dark</strong>" in content
    assert card_ids(content) == [items["techno"], items["ambient"]]  # not the unlisted or deleted ones
    assert '<link rel="canonical" href="http://testserver.local/@nadia/night-shift">' in response.text
    assert 'href="/@nadia/night-shift/feed.atom"' in response.text


def test_project_with_nothing_listed_still_has_a_page(client: TestClient, nadia: dict) -> None:
    content = full_page(client.get("/@nadia/unreleased"))
    assert "Nothing published here yet." in content
    assert card_ids(content) == []


def test_project_not_found(client: TestClient, nadia: dict) -> None:
    for path in ("/@nadia/no-such-project", "/@ghost/night-shift", "/@omar/night-shift", "/@nadia/elsewhere",
                 "/nadia/night-shift", "/@x/night-shift"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "There is no" in main_of(response.text), path


# ------------------------------------------------------------------------------------------------ tags


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["browser", "htmx"])
def test_tag_page(client: TestClient, nadia: dict, headers: dict[str, str]) -> None:
    items = nadia["items"]
    response = client.get("/t/music/electronic", headers=headers)
    content = full_page(response)
    assert re.sub(r"\s+", " ", content[content.index('<nav class="breadcrumbs"'):content.index("</nav>")]) == (
        '<nav class="breadcrumbs" aria-label="Breadcrumb"> <a href="/">Home</a> › <a href="/t/music">music</a> › '
        '<span aria-current="page">electronic</span> ')
    assert tag_heading(content) == ("electronic", "3 works")
    assert tag_links(content) == [("/t/music/electronic/ambient", "ambient 2"),
                                  ("/t/music/electronic/techno", "techno 1")]
    assert '<a href="/search?tag=music.electronic">Search and filter within this tag</a>' in content
    # Everything at or below the tag, from every creator; nothing hidden, nothing from a sibling tag.
    assert card_ids(content) == [items["other"], items["techno"], items["ambient"]]
    assert '<link rel="canonical" href="http://testserver.local/t/music/electronic">' in response.text


def test_tag_page_top_level_and_leaf(client: TestClient, nadia: dict) -> None:
    items = nadia["items"]
    top = full_page(client.get("/t/music"))
    assert tag_heading(top) == ("music", "4 works")
    assert tag_links(top) == [("/t/music/electronic", "electronic 3"), ("/t/music/jazz", "jazz 1")]
    leaf = full_page(client.get("/t/music/electronic/ambient"))
    assert '<a href="/t/music">music</a> › <a href="/t/music/electronic">electronic</a>' in leaf
    assert tag_heading(leaf) == ("ambient", "2 works")
    assert card_ids(leaf) == [items["other"], items["ambient"]]
    assert "field recordings" in full_page(client.get("/t/field_recordings"))
    # Dots, case and a trailing slash all name the same tag.
    for alias in ("/t/music.electronic", "/t/MUSIC/Electronic", "/t/music/electronic/", "/t/music//electronic"):
        assert card_ids(full_page(client.get(alias))) == [items["other"], items["techno"], items["ambient"]], alias


def test_tag_page_before_the_counts_are_refreshed(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    fresh = add_item(db, nadia, "Brand New", tags=["games.puzzle"])
    content = full_page(client.get("/t/games/puzzle"))  # counted live until the job refreshes tag_counts
    assert tag_heading(content) == ("puzzle", "1 work")
    assert card_ids(content) == [fresh]


def test_tag_not_found(client: TestClient, nadia: dict, db: psycopg.Connection) -> None:
    add_item(db, nadia["id"], "Draft only", status="draft", tags=["secret"])
    for path in ("/t/nothing", "/t/music/classical", "/t/secret",  # unknown, or only on a draft
                 "/t/Bad!Tag", "/t/music/elec tronic", "/t/a/b/c/d/e/f", "/t/" + "a" * 41, "/t/",
                 "/t/%2e%2e/%2e%2e/etc"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "cache-control" not in response.headers


# ------------------------------------------------------------------------------------------------ item page


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["browser", "htmx"])
def test_item_page(client: TestClient, nadia: dict, headers: dict[str, str]) -> None:
    public_id = nadia["items"]["ambient"]
    response = client.get(f"/i/{public_id}", headers=headers)
    content = full_page(response)
    page = response.text
    assert f'<link rel="canonical" href="http://testserver.local/i/{public_id}">' in page
    assert '<meta property="og:type" content="music.song">' in page
    assert '<meta property="og:site_name" content="Fairshelf">' in page
    assert '<meta property="og:title" content="Harbour Lights">' in page
    assert '<meta property="og:description" content="Recorded **at night** on the coast.">' in page
    assert f'<meta property="og:url" content="http://testserver.local/i/{public_id}">' in page
    assert '<meta name="twitter:card" content="summary">' in page
    assert '<meta name="robots"' not in page
    assert "<h1>Harbour Lights</h1>" in content
    assert ('<p class="byline">by <a href="/@nadia"><strong>Nadia Vox</strong> <span class="muted">@nadia</span>'
            '</a></p>') in content
    assert '· in <a href="/@nadia/night-shift">Night Shift</a>' in content
    assert tag_links(content) == [("/t/music/electronic/ambient", "music / electronic / ambient"),
                                  ("/t/field_recordings", "field recordings")]
    assert "$4.99" in content
    # The links lead somewhere real.
    for href, _ in tag_links(content):
        assert client.get(href).status_code == 200, href
    assert client.get("/@nadia/night-shift").status_code == 200


def test_item_page_for_text_and_hidden_items(client: TestClient, nadia: dict) -> None:
    items = nadia["items"]
    assert '<meta property="og:type" content="article">' in client.get(f"/i/{items['essay']}").text
    assert client.get(f"/i/{items['unlisted']}").status_code == 200  # reachable by its link
    for hidden in ("draft", "deleted"):
        response = client.get(f"/i/{items[hidden]}")
        assert response.status_code == 404, hidden
        assert "There is no item at this address." in response.text
    assert client.get("/i/doesnotexist").status_code == 404


# ------------------------------------------------------------------------------------------ robots and sitemaps


def test_robots_txt(client: TestClient) -> None:
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; charset=utf-8")
    lines = response.text.splitlines()
    assert lines[0] == "User-agent: *"
    for rule in ("Disallow: /creator", "Disallow: /search", "Disallow: /i/*/stream", "Disallow: /media/"):
        assert rule in lines
    assert "Sitemap: http://testserver.local/sitemap.xml" in lines


def test_robots_txt_content_type_names_its_charset_once(client: TestClient) -> None:
    assert client.get("/robots.txt").headers["content-type"] == "text/plain; charset=utf-8"


def locs(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(response.content)  # well-formed, or this raises
    return [loc.text for loc in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]


def test_sitemaps(client: TestClient, nadia: dict, db: psycopg.Connection) -> None:
    items = nadia["items"]
    index = client.get("/sitemap.xml")
    root = ET.fromstring(index.content)
    assert root.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}sitemapindex"
    listed = locs(index)
    assert "http://testserver.local/sitemaps/people.xml" in listed
    assert "http://testserver.local/sitemaps/items/0.xml" in listed
    assert set(listed) == {"http://testserver.local/sitemaps/people.xml",
                           "http://testserver.local/sitemaps/items/0.xml"}

    people = client.get("/sitemaps/people.xml")
    assert ET.fromstring(people.content).tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}urlset"
    assert locs(people) == ["http://testserver.local/", "http://testserver.local/@nadia",
                            "http://testserver.local/@nadia/night-shift", "http://testserver.local/@omar"]

    block = client.get("/sitemaps/items/0.xml")
    urls = locs(block)
    expected = [items[k] for k in ("ambient", "techno", "jazz", "essay", "other")]
    assert sorted(urls) == sorted(f"http://testserver.local/i/{p}" for p in expected)
    for hidden in ("draft", "unlisted", "deleted"):
        assert items[hidden] not in block.text
    root = ET.fromstring(block.content)
    assert all(url.find("s:lastmod", SITEMAP_NS) is not None for url in root.findall("s:url", SITEMAP_NS))
    # Every URL in the sitemaps answers.
    for url in locs(people) + urls:
        assert client.get(url.removeprefix("http://testserver.local")).status_code == 200, url


def test_unknown_sitemap_block_is_404(client: TestClient, nadia: dict) -> None:
    for name in ("1.xml", "99999999.xml", "abc.xml", "0", "0.xml.gz", "-1.xml"):
        assert client.get(f"/sitemaps/items/{name}").status_code == 404, name


def test_sitemap_of_an_empty_site(client: TestClient) -> None:
    assert locs(client.get("/sitemap.xml")) == ["http://testserver.local/sitemaps/people.xml"]
    assert locs(client.get("/sitemaps/people.xml")) == ["http://testserver.local/"]
    assert client.get("/sitemaps/items/0.xml").status_code == 404


def test_sitemap_index_lists_each_block_once(client: TestClient, db: psycopg.Connection) -> None:
    nadia = add_creator(db, "nadia")
    add_items(db, nadia, 3)
    listed = locs(client.get("/sitemap.xml"))
    assert listed == ["http://testserver.local/sitemaps/people.xml",
                      "http://testserver.local/sitemaps/items/0.xml"]
