from __future__ import annotations

import asyncio

from litestar.testing import TestClient

from app.accounts import sessions
from app.db.engine import make_engine, make_sessionmaker
from app.main import create_app
from tests.conftest import log_in, post_form, sign_up

COOKIE = "fairshelf_session"


def second_browser(settings) -> TestClient:
    client = TestClient(create_app(settings), base_url="http://testserver.local")
    client.headers["user-agent"] = "SecondBrowser/1.0"
    return client


def test_idle_sessions_expire(client, db):
    sign_up(client, "idle_one")
    assert client.get("/account", follow_redirects=False).status_code == 200
    db.execute("UPDATE user_sessions SET last_seen_at = now() - interval '7 days 1 minute'")
    response = client.get("/account", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_sessions_end_at_the_absolute_limit_even_when_active(client, db):
    sign_up(client, "busy_one")
    db.execute("UPDATE user_sessions SET expires_at = now() - interval '1 second', last_seen_at = now()")
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_activity_is_recorded_at_most_once_a_minute(client, db):
    sign_up(client, "active_one")
    db.execute("UPDATE user_sessions SET last_seen_at = now() - interval '2 hours'")
    client.get("/account")
    seen = db.execute("SELECT now() - last_seen_at < interval '10 seconds' FROM user_sessions").fetchone()[0]
    assert seen is True


def test_account_page_lists_sessions_and_signs_out_everywhere_else(client, settings, db):
    sign_up(client, "multi", "multi@example.com")
    with second_browser(settings) as other:
        assert log_in(other, "multi").status_code == 303
        page = client.get("/account")
        assert "SecondBrowser/1.0" in page.text and "this device" in page.text
        response = post_form(client, "/account/sessions/end-others", {})
        assert response.status_code == 303
        assert "Signed out 1 other session." in client.get("/account").text
        assert other.get("/account", follow_redirects=False).status_code == 303
        assert client.get("/account", follow_redirects=False).status_code == 200
    assert db.execute("SELECT count(*) FROM user_sessions").fetchone()[0] == 1


def test_ending_one_session_and_not_someone_elses(client, settings, db):
    sign_up(client, "owner_one")
    with second_browser(settings) as other:
        sign_up(other, "intruder")
        theirs = db.execute(
            "SELECT s.id FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'owner_one'"
        ).fetchone()[0]
        refused = post_form(other, f"/account/sessions/{theirs}/end", {})
        assert refused.status_code == 404
        assert client.get("/account", follow_redirects=False).status_code == 200
        mine = db.execute(
            "SELECT s.id FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'intruder'"
        ).fetchone()[0]
        assert post_form(client, f"/account/sessions/{mine}/end", {}).status_code == 404
        log_in(client, "owner_one")  # a second session for owner_one
        first = db.execute(
            "SELECT min(s.id) FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'owner_one'"
        ).fetchone()[0]
        assert post_form(client, f"/account/sessions/{first}/end", {}).status_code == 303


def test_account_pages_need_a_login(client):
    for path in ("/account", "/account/password"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == f"/login?next={path}"
    htmx = client.get("/account", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["hx-redirect"] == "/login?next=/account"


def test_expired_sessions_are_purged(settings, db, client):
    sign_up(client, "old_one")
    sign_up(TestClient(create_app(settings), base_url="http://testserver.local"), "new_one")
    db.execute("UPDATE user_sessions SET last_seen_at = now() - interval '30 days' WHERE user_id = "
               "(SELECT id FROM users WHERE username = 'old_one')")

    async def purge() -> int:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                removed = await sessions.purge_expired(session, settings)
                await session.commit()
                return removed
        finally:
            await engine.dispose()

    assert asyncio.run(purge()) == 1
    assert db.execute("SELECT count(*) FROM user_sessions").fetchone()[0] == 1
