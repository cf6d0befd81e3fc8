"""Public pages are cacheable for visitors (shared Cache-Control, strong ETag, 304s, no cookies, no CSRF token) and
personal for people signed in; with the micro-cache on, a visitor's second request is served from memory while a
signed-in person sees changes at once, and errors are never kept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.main import create_app
from tests.catalog.conftest import CreatorSetup, main_of
from tests.conftest import make_settings, sign_up
from tests.discovery.conftest import HTMX, add_creator, add_item, add_project, card_ids, refresh_lists

PUBLIC_PAGES = ["/", "/@nadia", "/@nadia/night-shift", "/t/music", "/t/music/electronic", "/search",
                "/search?q=harbour", "/search?q=harbour&type=audio&sort=new", "/i/{item}", "/@nadia/feed.atom",
                "/@nadia/night-shift/feed.atom", "/sitemap.xml", "/sitemaps/people.xml", "/sitemaps/items/0.xml",
                "/robots.txt"]
CACHE_CONTROL = re.compile(r"public, max-age=(\d+), stale-while-revalidate=(\d+)")


@pytest.fixture
def site(db: psycopg.Connection) -> dict[str, str]:
    nadia = add_creator(db, "nadia", "Nadia Vox", bio="Synths.")
    night = add_project(db, nadia, "Night Shift", "night-shift")
    item = add_item(db, nadia, "Harbour Lights", tags=["music.electronic"], project_id=night)
    refresh_lists(db)
    return {"item": item, "nadia": str(nadia)}


def pages(site: dict[str, str]) -> list[str]:
    return [p.format(**site) for p in PUBLIC_PAGES]


@contextmanager
def anonymous(client: TestClient) -> Iterator[None]:
    """The same browser, for a moment without its cookies (as after clearing them)."""
    saved = list(client.cookies.jar)
    client.cookies.clear()
    try:
        yield
    finally:
        for cookie in saved:
            client.cookies.jar.set_cookie(cookie)


def assert_shared(response, path: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, (path, response.text[:300])
    match = CACHE_CONTROL.fullmatch(response.headers["cache-control"])
    assert match and int(match[1]) > 0 and int(match[2]) > 0, (path, response.headers["cache-control"])
    etag = response.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{16,}"', etag), (path, etag)  # strong: no W/ prefix
    vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
    assert {"hx-request", "cookie"} <= vary, (path, vary)
    assert "set-cookie" not in response.headers, path
    assert "_csrf_token" not in response.text and "X-CSRF-Token" not in response.text, path


# ------------------------------------------------------------------------------------------------ headers


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["browser", "htmx"])
def test_visitors_get_shareable_pages(client: TestClient, site: dict[str, str], headers: dict[str, str]) -> None:
    for path in pages(site):
        response = client.get(path, headers=headers)
        assert_shared(response, path)
        # A browser holding the page asks again: 304, nothing in the body.
        again = client.get(path, headers={**headers, "If-None-Match": response.headers["etag"]})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == response.headers["etag"]
        assert "content-type" not in again.headers
    # Weak comparison and lists of tags are honoured; a different tag gets the page.
    for path in ("/@nadia", "/search?q=harbour"):
        etag = client.get(path, headers=headers).headers["etag"]
        for header in (f"W/{etag}", f'"nope", {etag}', "*"):
            response = client.get(path, headers={**headers, "If-None-Match": header})
            assert response.status_code == 304, (path, header)
        assert client.get(path, headers={**headers, "If-None-Match": '"nope"'}).status_code == 200


def test_a_visitor_holding_a_csrf_cookie_still_gets_the_shared_page(visitor: TestClient,
                                                                     site: dict[str, str]) -> None:
    assert "fairshelf_csrf" in visitor.cookies
    for path in pages(site):
        assert_shared(visitor.get(path), path)


def test_the_same_page_has_the_same_etag_and_a_changed_one_a_new_etag(client: TestClient, site: dict[str, str],
                                                                      db: psycopg.Connection) -> None:
    first = client.get("/@nadia")
    assert client.get("/@nadia").headers["etag"] == first.headers["etag"]
    fragment = client.get("/@nadia", headers={"HX-Request": "true", "HX-Target": "main"})
    assert fragment.headers["etag"] == first.headers["etag"]  # the same page: a profile has no fragment
    add_item(db, int(site["nadia"]), "Second Song")
    changed = client.get("/@nadia")
    assert changed.headers["etag"] != first.headers["etag"]
    stale = client.get("/@nadia", headers={"If-None-Match": first.headers["etag"]})
    assert stale.status_code == 200 and "Second Song" in stale.text
    # Different fragments of one address are different representations.
    full = client.get("/search?q=harbour").headers["etag"]
    part = client.get("/search?q=harbour", headers=HTMX).headers["etag"]
    assert full != part


def test_errors_carry_no_shared_caching_headers(client: TestClient, site: dict[str, str]) -> None:
    for path in ("/@ghost", "/@nadia/nothing", "/t/nothing", "/i/nothing12345", "/search?cursor=broken",
                 "/sitemaps/items/7.xml", "/@x"):
        response = client.get(path)
        assert response.status_code in (400, 404), path
        assert "etag" not in response.headers, path
        assert "public" not in response.headers.get("cache-control", ""), path


def test_signed_in_people_get_personal_pages_with_a_token(creator: CreatorSetup, site: dict[str, str]) -> None:
    client = creator.client
    for path in pages(site):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "private, no-cache", path
        assert "public" not in response.headers["cache-control"]
        if response.headers["content-type"].startswith("text/html"):
            token = client.cookies["fairshelf_csrf"]
            assert f'<input type="hidden" name="_csrf_token" value="{token}">' in response.text, path
            assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in response.text, path
            assert "Log out" in response.text


def test_log_out_from_a_public_page(creator: CreatorSetup, site: dict[str, str], db: psycopg.Connection) -> None:
    client = creator.client
    page = client.get("/@nadia").text
    form = re.search(r'<form method="post" action="/logout" class="inline-form">\s*'
                     r'<input type="hidden" name="_csrf_token" value="([^"]+)">', page)
    assert form, page
    response = client.post("/logout", data={"_csrf_token": form[1]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert db.execute("SELECT count(*) FROM user_sessions").fetchone()[0] == 0
    after = client.get("/")  # the flash makes this one personal; it says goodbye
    assert "You are logged out." in after.text
    assert after.headers["cache-control"] == "private, no-cache"
    later = client.get("/@nadia")  # then pages are shared again
    assert later.headers["cache-control"].startswith("public")
    assert "Log out" not in later.text and "Log in" in later.text


def test_a_forged_logout_from_a_public_page_is_refused(creator: CreatorSetup, site: dict[str, str],
                                                      db: psycopg.Connection) -> None:
    response = creator.client.post("/logout", data={"_csrf_token": "forged"}, follow_redirects=False)
    assert response.status_code == 403
    assert db.execute("SELECT count(*) FROM user_sessions").fetchone()[0] == 1


# ------------------------------------------------------------------------------------------------ the micro-cache


Cached = tuple[TestClient, Litestar]


@pytest.fixture
def cached(database_url: str, tmp_path: Path) -> Iterator[Cached]:
    """An app with the micro-cache on (5 s fresh), and a browser on it."""
    app = create_app(make_settings(database_url, page_cache_seconds=5, var_dir=tmp_path / "var"))
    with TestClient(app, base_url="http://testserver.local") as browser:
        yield browser, app


def counted(app: Litestar, result: str) -> float:
    return app.state.metrics.registry.get_sample_value("fairshelf_page_cache_total", {"result": result}) or 0.0


def test_visitors_are_served_from_memory_and_signed_in_people_are_not(cached: Cached, site: dict[str, str],
                                                                      db: psycopg.Connection) -> None:
    browser, app = cached
    sign_up(browser, "fan_one")
    with anonymous(browser):
        first = browser.get("/@nadia")
        assert "<h1>Nadia Vox</h1>" in first.text
        assert counted(app, "miss") == 1 and counted(app, "hit") == 0

        db.execute("UPDATE users SET display_name = 'Nadia Renamed' WHERE username = 'nadia'")
        add_item(db, int(site["nadia"]), "Brand New Song")
        again = browser.get("/@nadia")  # within the window: the copy in memory, byte for byte
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
        assert counted(app, "hit") == 1
        assert browser.get("/@nadia", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        assert counted(app, "hit") == 2
        assert_shared(again, "/@nadia")

    mine = browser.get("/@nadia")  # signed in: rendered for me, now
    assert "Nadia Renamed" in mine.text and "Brand New Song" in mine.text
    assert mine.headers["cache-control"] == "private, no-cache"
    assert "Fan One" in mine.text  # my own header, which must never reach the shared copy
    assert counted(app, "personal") >= 1 and counted(app, "hit") == 2

    with anonymous(browser):
        shared = browser.get("/@nadia")
        assert "Fan One" not in shared.text and "_csrf_token" not in shared.text
        assert "Nadia Vox" in shared.text  # still the visitors' copy
        # Once the copy is too old it is rendered again.
        cache = app.state.page_cache
        for key, entry in list(cache.entries.items()):
            cache.entries[key] = replace(entry, stored=entry.stored - 3600)
        fresh = browser.get("/@nadia")
        assert "Nadia Renamed" in fresh.text and "Brand New Song" in fresh.text
        assert fresh.headers["etag"] != first.headers["etag"]


def test_each_address_and_fragment_is_kept_apart(cached: Cached, site: dict[str, str]) -> None:
    browser, app = cached
    full = browser.get("/search?q=harbour")
    part = browser.get("/search?q=harbour", headers=HTMX)
    other = browser.get("/search?q=lights")
    assert "<html" in full.text and "<html" not in part.text
    assert card_ids(part.text) == card_ids(full.text) == [site["item"]]
    assert 'value="lights"' in other.text
    assert counted(app, "miss") == 3
    assert browser.get("/search?q=harbour", headers=HTMX).content == part.content
    assert browser.get("/search?q=harbour").content == full.content
    assert counted(app, "hit") == 2


def test_not_found_is_never_kept(cached: Cached, db: psycopg.Connection) -> None:
    browser, app = cached
    for _ in range(2):
        response = browser.get("/@latecomer")
        assert response.status_code == 404
        assert "cache-control" not in response.headers or "public" not in response.headers["cache-control"]
    assert counted(app, "hit") == 0
    user = add_creator(db, "latecomer", "Late Comer")
    add_item(db, user, "At Last")
    page = browser.get("/@latecomer")  # the moment it exists, it is there
    assert page.status_code == 200 and "At Last" in page.text
    for path in ("/search?cursor=broken", "/t/nothing"):
        assert browser.get(path).status_code in (400, 404)
        assert browser.get(path).status_code in (400, 404)
    assert counted(app, "hit") == 0
    assert all(entry.status == 200 for entry in app.state.page_cache.entries.values())


def test_a_message_waiting_makes_the_page_personal(cached: Cached, site: dict[str, str]) -> None:
    browser, app = cached
    browser.get("/")  # cached for visitors
    sign_up(browser, "fan_one")
    browser.post("/logout", data={"_csrf_token": browser.cookies["fairshelf_csrf"]}, follow_redirects=False)
    page = browser.get("/")
    assert "You are logged out." in main_of(page.text) or "You are logged out." in page.text
    assert page.headers["cache-control"] == "private, no-cache"
    assert "You are logged out." not in browser.get("/").text  # shown once, and never to anyone else
    with anonymous(browser):
        assert "You are logged out." not in browser.get("/").text
