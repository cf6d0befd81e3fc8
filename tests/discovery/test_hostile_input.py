"""Whatever is typed or pasted into a URL: search, type-ahead and every list parameter answer without a server
error, broken "load more" links are a 400 with a message, and sizes are capped."""

from __future__ import annotations

import base64
import json

import psycopg
import pytest
from litestar.testing import TestClient

from tests.discovery.conftest import HTMX, add_creator, add_item, add_project, card_ids, refresh_lists

CORPUS = [
    '"', '""', '"unbalanced', 'unbalanced"', "'", "''", "'; DROP TABLE items; --", "Robert'); DROP TABLE users;--",
    "-", "--", "-orbit", "orbit -", "or", "OR", "orbit or", "or or or", "and", "not", "&", "|", "!", "(", ")",
    "()", ":*", "orbit:*", "foo:* & !bar", "&|!():*<>", "!(orbit & moon)", "<->", "orbit <-> moon", "<2>",
    "\\", "\\\\", "orbit\\", "\\'", "%", "_", "%_", "%%__", "orb%", "orb_t", "*", "?", "~", "^", "$", "[", "]",
    "{", "}", "😀", "🎵 orbit 🎶", "👩‍👩‍👧‍👦", "مرحبا بالعالم", "שלום עולם", "\u202eevil\u202c", "\u200f\u200e",
    "\ufeff", "日本語の歌", "Ⅻ", "ﬁ", "ß", "İ", "\ue000orbit\ue001", "\x00", "orbit\x00moon", "\x00" * 50,
    "\x01\x02\x1f\x7f", "\r\n", "\t", "   ", "x" * 10_240, "orbit " * 2000, "a" * 2047, "b" * 3000,
    "supercalifragilistic" * 20, "%00", "%ff%fe", "null", "None", "NaN", "Infinity", "-1", "0", "1e309", "0x10",
    "9" * 400, "${jndi:ldap://x}", "{{7*7}}", "{% raw %}", "<script>alert(1)</script>", "javascript:alert(1)",
    "../../etc/passwd", "music.electronic", "music/electronic", "a" * 41 + ".b",
]
# A shorter list with one of each kind, for the combinations.
SHORT = ['"unbalanced', "'; DROP TABLE items; --", "-orbit", "or", "foo:* & !bar", "&|!():*<>", "orbit <-> moon",
         "\\", "orbit\\", "%_", "😀", "مرحبا بالعالم", "\u202eevil\u202c", "\x00", "orbit\x00moon", "\r\n", "   ",
         "x" * 10_240, "a" * 3000, "%00", "%ff%fe", "NaN", "1e309", "-1", "9" * 400, "<script>alert(1)</script>",
         "../../etc/passwd", "music.electronic", "a" * 41 + ".b", "{{7*7}}"]
PARAMETERS = ("type", "price", "min", "max", "tag", "sort", "size", "cursor")
CURSOR_MESSAGE = "This “more results” link is broken or out of date. Start again from the first page."


def no_nul(value: str) -> bool:
    return "\x00" not in value


@pytest.fixture
def shelf(db: psycopg.Connection) -> str:
    nadia = add_creator(db, "nadia", "Nadia Vox")
    project = add_project(db, nadia, "Orbits", "orbits")
    for i in range(5):
        add_item(db, nadia, f"Orbit {i}", description="An orbit around the moon.", tags=["music.electronic"],
                 project_id=project, price_mode="fixed" if i % 2 else "free", price_cents=100 * i)
    refresh_lists(db)
    return "nadia"


def assert_answered(response, what: object) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, (what, response.status_code, response.text[:500])


def expected(value: str) -> int:
    """200, except that no address may carry a NUL character: that is refused with a 400 before any route."""
    return 200 if no_nul(value) else 400


def test_any_query_is_answered(client: TestClient, shelf: str) -> None:
    for q in CORPUS:
        response = client.get("/search", params={"q": q})
        assert response.status_code == expected(q), (q, response.text[:500])
        response = client.get("/search/suggest", params={"q": q}, headers=HTMX)
        assert response.status_code == expected(q), (q, response.text[:500])
    for q in SHORT:
        for params in ({"q": q, "sort": "new"}, {"q": q, "sort": "price_desc", "tag": "music"}):
            response = client.get("/search", params=params)
            assert response.status_code == expected(q), (q, params, response.text[:500])
        assert_answered(client.get("/search", params={"q": q}, headers=HTMX), q)
        assert client.get("/search/suggest", params={"q": q}, follow_redirects=False).status_code == (
            303 if no_nul(q) else 400)
    # The corpus leaves nothing behind.
    assert card_ids(client.get("/search?q=orbit").text) != []


def test_any_parameter_is_answered(client: TestClient, shelf: str) -> None:
    for value in SHORT:
        for name in PARAMETERS:
            for q in ("orbit", "") if name in ("sort", "cursor", "size") else ("orbit",):
                response = client.get("/search", params={"q": q, name: value})
                if not no_nul(value):
                    assert response.status_code == 400 and "cannot contain NUL" in response.text, (name, value)
                elif name == "cursor" and value:
                    assert response.status_code == 400, (name, value, response.status_code)
                    assert CURSOR_MESSAGE in response.text
                else:
                    assert response.status_code == 200, (name, value, q, response.text[:500])
        # Everything at once (a little shorter: a client will not send a URL over 64 KB).
        every = {name: value[:2000] for name in ("q", *PARAMETERS)}
        assert_answered(client.get("/search", params=every), value)
        assert_answered(client.get("/search", params=every, headers=HTMX), value)


def test_public_list_pages_answer_any_cursor(client: TestClient, shelf: str) -> None:
    for value in SHORT:
        for path in ("/@nadia", "/@nadia/orbits", "/t/music/electronic"):
            response = client.get(path, params={"cursor": value})
            assert response.status_code == (400 if value else 200), (path, value, response.status_code)


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


MALFORMED_CURSORS = [
    "garbage", "!!!!", "%%%", "=", "a", "eyJ", "ü", "x" * 401, b64("not json"), b64("{}"), b64('{"a": 1}'),
    b64("[]"), b64("[1]"), b64("[1, 2, 3]"), b64('["x", 1]'), b64('["2026-01-01T00:00:00", 1]'), b64("[1.5, 1]"),
    b64("[true, 1]"), b64("[null, null]"), b64('["2026-01-01T00:00:00+00:00", "1"]'),
    b64('["2026-01-01T00:00:00+00:00", 1.5]'), b64("[1e400, 1]"), b64("[NaN, 1]"), b64("[Infinity, 1]"),
    b64('["2026-01-01T00:00:00+00:00", 9223372036854775808]'), b64("[9223372036854775808, 1]"),
    b64('["10000-01-01T00:00:00+00:00", 1]'), b64('["2026-13-45T00:00:00+00:00", 1]'), b64('"[1, 2]"'),
    b64("[[1], [2]]"), b64("[" * 200), b64('["2026-01-01T00:00:00+00:00", -9223372036854775809]'),
]
LIST_PAGES = ["/search", "/search?q=orbit", "/search?q=orbit&sort=new", "/search?sort=price_asc",
              "/search?sort=popular", "/@nadia", "/@nadia/orbits", "/t/music/electronic"]


def test_malformed_cursors_are_a_400_with_a_message(client: TestClient, shelf: str) -> None:
    for path in LIST_PAGES:
        sep = "&" if "?" in path else "?"
        for n, cursor in enumerate(MALFORMED_CURSORS):
            response = client.get(f"{path}{sep}cursor={cursor}")
            # Some of these are valid for one order and not another; the first 15 fit no order at all.
            if response.status_code == 200 and n >= 15:
                continue
            assert response.status_code == 400, (path, cursor, response.status_code, response.text[:300])
            assert "This page link is broken" in response.text
            assert CURSOR_MESSAGE in response.text
            assert "cache-control" not in response.headers and "etag" not in response.headers
            if n < 3:  # from htmx ("load more"): a toast, nothing swapped
                toast = client.get(f"{path}{sep}cursor={cursor}", headers=HTMX)
                assert toast.status_code == 400 and toast.text == ""
                assert json.loads(toast.headers["HX-Trigger"])["toast"]["message"] == CURSOR_MESSAGE


def test_a_cursor_from_another_order_is_refused(client: TestClient, shelf: str) -> None:
    newest = client.get("/search?sort=new&size=2").text
    relevance = client.get("/search?q=orbit&size=2").text
    by_price = client.get("/search?sort=price_asc&size=2").text
    cursors = {name: page.split("cursor=", 1)[1].split('"', 1)[0].split("&", 1)[0]
               for name, page in (("new", newest), ("relevance", relevance), ("price", by_price))}
    assert client.get(f"/search?q=orbit&cursor={cursors['new']}").status_code == 400
    assert client.get(f"/search?sort=new&cursor={cursors['relevance']}").status_code == 400
    assert client.get(f"/search?sort=new&cursor={cursors['price']}").status_code == 400
    assert client.get(f"/@nadia?cursor={cursors['price']}").status_code == 400
    assert client.get(f"/search?sort=sales&cursor={cursors['price']}").status_code == 200  # same shape: fine


def test_well_formed_but_absurd_cursors_give_an_honest_page(client: TestClient, shelf: str) -> None:
    everything = card_ids(client.get("/search?sort=new").text)
    assert len(everything) == 5
    far_future = b64(f'["9999-12-31T23:59:59+00:00", {2**63 - 1}]')
    long_ago = b64('["0001-01-01T00:00:00+14:00", 1]')
    assert card_ids(client.get(f"/search?sort=new&cursor={far_future}").text) == everything
    assert card_ids(client.get(f"/@nadia?cursor={far_future}").text) == everything
    assert card_ids(client.get(f"/search?sort=new&cursor={long_ago}").text) == []
    assert card_ids(client.get(f"/search?sort=price_asc&cursor={b64(f'[{2**63 - 1}, 1]')}").text) == []
    assert len(card_ids(client.get(f"/search?sort=price_desc&cursor={b64(f'[{2**62}, 1]')}").text)) == 5
    assert len(card_ids(client.get(f"/search?q=orbit&cursor={b64('[1e308, 9007199254740993]')}").text)) == 5
    assert card_ids(client.get(f"/search?q=orbit&cursor={b64('[-1e308, 1]')}").text) == []


def test_a_nul_byte_in_type_ahead_is_refused_with_a_message(client: TestClient, shelf: str) -> None:
    for q in ("orb\x00", "\x00\x00", "orbit\x00moon"):
        response = client.get("/search/suggest", params={"q": q}, headers=HTMX)
        assert response.status_code == 400 and "cannot contain NUL" in response.headers["hx-trigger"], q


NUL_PATHS = ["/@nadia/orbits%00", "/@nadia/orb%00its/feed.atom", "/i/{id}%00", "/i/{id}%00/stream",
             "/i/{id}%00/preview"]


@pytest.mark.parametrize("path", NUL_PATHS)
def test_a_nul_byte_in_a_public_address_is_refused(client: TestClient, shelf: str, db: psycopg.Connection,
                                                  path: str) -> None:
    public_id = db.execute("SELECT public_id FROM items LIMIT 1").fetchone()[0]
    response = client.get(path.format(id=public_id))
    assert response.status_code == 400 and "Web addresses cannot contain NUL characters." in response.text
