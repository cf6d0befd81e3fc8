"""Discovery fixtures: creators, projects and published items written straight into PostgreSQL (the way the app
stores them, so the search trigger fills the search document itself), and helpers that read lists, cursors and
"load more" links back out of the pages."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from urllib.parse import parse_qs, urlencode, urlsplit

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from psycopg.types.json import Jsonb

from app.main import create_app
from app.settings import Settings
from app.web.text import render_markdown, slugify

# The catalog's fixtures (a signed-in creator, an anonymous visitor) are used here too.
from tests.catalog.conftest import creator, visitor  # noqa: F401
from tests.conftest import make_settings

ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # as app.db.base.new_public_id
HTMX = {"HX-Request": "true"}
BASE_TIME = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # well before now(): items published "now" are newer
_serial = count(1)


# One app per module (building one compiles every template and costs a third of a second); each test still gets
# a browser of its own (a fresh TestClient: its own cookies, its own event loop and database connections).


@pytest.fixture(scope="module")
def _module_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, var_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="module")
def _module_app(_module_settings: Settings) -> Litestar:
    return create_app(_module_settings)


@pytest.fixture
def settings(_module_settings: Settings) -> Settings:
    return _module_settings


@pytest.fixture
def client(_module_app: Litestar) -> Iterator[TestClient]:
    with TestClient(_module_app, base_url="http://testserver.local") as test_client:
        yield test_client


def _empty_lists(database_url: str) -> None:
    """Make the materialized views match the (empty) tables, when they do not already."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        stale = conn.execute("SELECT EXISTS (SELECT FROM tag_counts) OR EXISTS (SELECT FROM search_words)")
        if stale.fetchone()[0]:
            refresh_lists(conn)


@pytest.fixture(autouse=True)
def _fresh_lists(database_url: str) -> None:
    """The materialized views (search_words, tag_counts) are not tables, so the suite's truncation between tests
    leaves them holding the previous test's words and tags: every test here starts with them empty."""
    _empty_lists(database_url)


@pytest.fixture(scope="package", autouse=True)
def _leave_lists_empty(database_url: str) -> Iterator[None]:
    """And they are left empty for whatever runs after this folder (its last test's tables are truncated by
    then)."""
    yield
    _empty_lists(database_url)


def new_public_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(12))


# ------------------------------------------------------------------------------------------------ rows


def add_creator(db: psycopg.Connection, username: str, display_name: str | None = None, *, bio: str = "",
                links: Iterable[str] = ()) -> int:
    """A user who sells (a creators row), as /sell leaves them. Nobody logs in as them: the hash is a stand-in."""
    user_id = db.execute(
        "INSERT INTO users (email, username, display_name, password_hash, email_verified_at) "
        "VALUES (%s, %s, %s, 'not-a-real-hash', now()) RETURNING id",
        (f"{username}@example.com", username, display_name or username.replace("_", " ").title()),
    ).fetchone()[0]
    db.execute("INSERT INTO creators (user_id, tier, bio, links) VALUES (%s, 'basic', %s, %s)",
               (user_id, bio, Jsonb([{"url": url} for url in links])))
    return user_id


def add_project(db: psycopg.Connection, creator_id: int, name: str, slug: str, description: str = "") -> int:
    return db.execute(
        "INSERT INTO projects (public_id, creator_id, name, slug, description_md, description_html) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (new_public_id(), creator_id, name, slug, description, render_markdown(description)),
    ).fetchone()[0]


def add_item(db: psycopg.Connection, creator_id: int, title: str, *, kind: str = "audio", description: str = "",
             tags: Iterable[str] = (), price_mode: str = "free", price_cents: int = 0, status: str = "published",
             published_at: datetime | None = None, project_id: int | None = None, recent_sales: int = 0,
             sales_count: int = 0, deleted: bool = False, currency: str = "USD") -> str:
    """An item as the wizard and publishing leave it; price_cents is the least a buyer pays (any mode).
    Returns its public id. `published_at` defaults to now() for anything that was ever published."""
    public_id = new_public_id()
    minimum = price_cents if price_mode == "pwyw" else 0
    suggested = max(minimum, 500) if price_mode == "pwyw" else 0
    was_published = status in ("published", "unlisted") or deleted
    if deleted:
        status = "archived"  # as items.delete() does
    with db.transaction():  # one commit (and one fsync) per item: the suite is bound by the disk, not the CPU
        item_id = _insert_item(db, public_id, creator_id, title, kind, description, tags, price_mode, price_cents,
                               minimum, suggested, status, was_published, published_at, project_id, recent_sales,
                               sales_count, deleted, currency)
        if kind != "text":
            db.execute("INSERT INTO item_versions (item_id, label, published_at) VALUES (%s, '1.0', %s)",
                       (item_id, None if status == "draft" else published_at or datetime.now(UTC)))
    return public_id


def _insert_item(db: psycopg.Connection, public_id: str, creator_id: int, title: str, kind: str, description: str,
                 tags: Iterable[str], price_mode: str, price_cents: int, minimum: int, suggested: int, status: str,
                 was_published: bool, published_at: datetime | None, project_id: int | None, recent_sales: int,
                 sales_count: int, deleted: bool, currency: str) -> int:
    return db.execute(
        "INSERT INTO items (public_id, creator_id, project_id, type, title, slug, description_md, "
        "description_html, price_mode, price_cents, min_price_cents, suggested_price_cents, currency, tags, "
        "ai_label, status, wizard_step, published_at, deleted_at, sales_count, recent_sales) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::text[]::ltree[], 'handmade', %s, "
        "'publish', CASE WHEN %s THEN coalesce(%s, now()) END, CASE WHEN %s THEN now() END, %s, %s) RETURNING id",
        (public_id, creator_id, project_id, kind, title, f"{slugify(title)[:60] or 'untitled'}-{next(_serial)}",
         description, render_markdown(description), price_mode, price_cents, minimum, suggested, currency,
         list(tags), status, was_published, published_at, deleted, sales_count, recent_sales),
    ).fetchone()[0]


def add_items(db: psycopg.Connection, creator_id: int, n: int, title: str = "Piece {i}", *,
              start: datetime = BASE_TIME, step: timedelta = timedelta(minutes=1), ties: int = 1,
              **fields: object) -> list[str]:
    """`n` items published `step` apart, oldest first (groups of `ties` items share one published_at)."""
    with db.transaction():
        return [add_item(db, creator_id, title.format(i=i), published_at=start + step * (i // ties), **fields)
                for i in range(n)]


def refresh_lists(db: psycopg.Connection) -> None:
    """What the discovery.refresh_lists job does: the words behind "did you mean" and the tag counts."""
    db.execute("REFRESH MATERIALIZED VIEW search_words")
    db.execute("REFRESH MATERIALIZED VIEW tag_counts")


# ------------------------------------------------------------------------------------------------ pages

CARD = re.compile(r'<li class="card item-card">\s*<a href="/i/([a-z0-9]+)">')
LOAD_MORE = re.compile(
    r'<li class="load-more">\s*<a class="button button-secondary" href="([^"]*)" hx-get="([^"]*)"')


def card_ids(page: str) -> list[str]:
    """The public ids of the item cards on a page or fragment, in order."""
    return CARD.findall(page)


def card_titles(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<span class="item-card-title">(.*?)</span>', page)]


def tag_heading(page: str) -> tuple[str, str]:
    """A tag page's title and its count of works, e.g. ("electronic", "3 works")."""
    h1 = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert h1, page
    label = re.sub(r"<span.*", "", h1[1], flags=re.S).strip()
    counted = re.search(r"[\d,]+ works?\b", page[h1.start():])
    return label, counted[0] if counted else ""


def more_href(page: str) -> str | None:
    """The "Load more" link (unescaped), or None on the last page. Its href and hx-get must agree."""
    found = LOAD_MORE.findall(page)
    assert len(found) <= 1, found
    if not found:
        return None
    href, hx = found[0]
    assert href == hx
    return html.unescape(href)


def cursor_of(page: str) -> str | None:
    href = more_href(page)
    return parse_qs(urlsplit(href).query)["cursor"][0] if href else None


def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    query.update(params)
    return f"{parts.path}?{urlencode(query)}"


def walk(client: TestClient, url: str, *, htmx: bool = False, between: Callable[[int], None] | None = None,
         limit: int = 100) -> list[list[str]]:
    """Every page of a list, following its cursor (keeping `url`'s own parameters, such as size); `between(n)`
    runs before page n (n >= 1) is asked for. HTMX pages after the first must be bare <li> fragments."""
    pages: list[list[str]] = []
    response = client.get(url)
    assert response.status_code == 200, response.text
    body = response.text
    for n in range(1, limit + 1):
        pages.append(card_ids(body))
        cursor = cursor_of(body)
        if cursor is None:
            return pages
        if between is not None:
            between(n)
        response = client.get(with_params(url, cursor=cursor), headers=HTMX if htmx else {})
        assert response.status_code == 200, response.text
        body = response.text
        if htmx:
            assert body.lstrip().startswith("<li"), body[:300]
            assert "<html" not in body and "<main" not in body
    raise AssertionError("the list never ended")


def flat(pages: list[list[str]]) -> list[str]:
    return [pid for page in pages for pid in page]
