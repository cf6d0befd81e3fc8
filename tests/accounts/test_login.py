from __future__ import annotations

import pytest

from app.accounts import throttle
from tests.conftest import log_in, make_settings, post_form, sign_up

COOKIE = "fairshelf_session"
WRONG = "That email or username and password do not match."


@pytest.fixture
def member(client):
    """A signed-up person, logged out again, with a fresh browser."""
    sign_up(client, "grace", "grace@example.com", display_name="Grace Hopper")
    assert post_form(client, "/logout", {}).status_code == 303
    client.cookies.clear()
    return client


@pytest.mark.parametrize("identifier", ["grace", "GRACE", "grace@example.com", "Grace@Example.COM"])
def test_log_in_with_username_or_email_in_any_letter_case(member, identifier):
    response = log_in(member, identifier)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert "Grace Hopper" in member.get("/account").text


def test_wrong_password_and_unknown_account_get_the_same_answer(member):
    wrong = log_in(member, "grace", "not the password")
    unknown = log_in(member, "nobody_here", "not the password")
    assert wrong.status_code == unknown.status_code == 422
    assert WRONG in wrong.text and WRONG in unknown.text
    assert COOKIE not in member.cookies


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"identifier": "", "password": "x"}, "Email or username is required."),
        ({"identifier": "grace", "password": ""}, "Password is required."),
        ({"identifier": "g" * 255, "password": "x"}, "Email or username must be at most 254 characters."),
        ({"identifier": "grace", "password": "p" * 129}, "Password must be at most 128 characters."),
    ],
)
def test_bad_login_input(member, data, message):
    response = post_form(member, "/login", data)
    assert response.status_code == 422 and message in response.text


def test_session_id_rotates_on_login_and_the_database_keeps_only_its_hash(member, db):
    log_in(member, "grace")
    first = member.cookies[COOKIE]
    log_in(member, "grace")  # logging in again from the same browser
    second = member.cookies[COOKIE]
    assert first != second
    rows = db.execute("SELECT token_hash FROM user_sessions").fetchall()
    assert len(rows) == 1, "the browser's previous session must end when it logs in again"
    assert all(first.encode() not in bytes(r[0]) and second.encode() not in bytes(r[0]) for r in rows)
    member.cookies.delete(COOKIE)
    member.cookies.set(COOKIE, first, domain="testserver.local")
    assert member.get("/account", follow_redirects=False).status_code == 303


def test_session_cookie_flags(member):
    response = log_in(member, "grace")
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in development and tests


def test_production_cookies_are_secure_and_host_only(database_url):
    from litestar.testing import TestClient

    from app.main import create_app

    settings = make_settings(database_url, base_url="https://fairshelf.example")
    with TestClient(create_app(settings), base_url="https://fairshelf.example") as client:
        response = sign_up(client, "secure_one")
        cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
        session_cookie = next(c for c in cookies if c.startswith("__Host-fairshelf_session="))
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "Domain" not in session_cookie


def test_logout_ends_the_session_and_an_old_cookie_is_dead(member, db):
    log_in(member, "grace")
    old = member.cookies[COOKIE]
    response = post_form(member, "/logout", {})
    assert response.status_code == 303
    assert db.execute("SELECT count(*) FROM user_sessions").fetchone()[0] == 0
    member.cookies.delete(COOKIE)
    member.cookies.set(COOKIE, old, domain="testserver.local")
    page = member.get("/account", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=/account")
    assert any(v.startswith(f"{COOKIE}=;") or f'{COOKIE}="";' in v
               for k, v in page.headers.multi_items() if k == "set-cookie")


def test_logout_needs_the_csrf_token(member, db):
    log_in(member, "grace")
    response = member.post("/logout", follow_redirects=False)
    assert response.status_code == 403
    assert db.execute("SELECT count(*) FROM user_sessions").fetchone()[0] == 1


def test_next_redirect_stays_on_this_site(member):
    assert post_form(member, "/login", {"identifier": "grace", "password": "correct horse battery",
                                        "next": "/account"}).headers["location"] == "/account"
    member.cookies.clear()
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        response = post_form(member, "/login", {"identifier": "grace", "password": "correct horse battery",
                                                "next": evil})
        assert response.headers["location"] == "/", evil
        member.cookies.clear()


def test_login_is_throttled_per_account_after_a_burst_of_five(member, db):
    for _ in range(throttle.BURST):
        assert log_in(member, "grace", "wrong password!").status_code == 422
    blocked = log_in(member, "grace")  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert "Too many login attempts" in blocked.text
    # The block is on the account, whatever the letter case or form of the identifier used.
    assert log_in(member, "GRACE").status_code == 429
    # After the back-off runs out, one more try is allowed.
    db.execute("UPDATE throttle_buckets SET blocked_until = now() - interval '1 second'")
    assert log_in(member, "grace").status_code == 303


def test_login_is_throttled_per_client_ip_across_accounts(member):
    for n in range(throttle.BURST):
        assert log_in(member, f"someone_{n}", "wrong password!").status_code == 422
    assert log_in(member, "grace").status_code == 429


def test_unknown_accounts_are_throttled_like_real_ones(member):
    for _ in range(throttle.BURST):
        log_in(member, "ghost@example.com", "wrong password!")
    assert log_in(member, "ghost@example.com", "wrong password!").status_code == 429


def test_throttled_htmx_request_gets_a_toast(member):
    for _ in range(throttle.BURST):
        log_in(member, "grace", "wrong password!")
    response = post_form(member, "/login", {"identifier": "grace", "password": "x"}, headers={"HX-Request": "true"})
    assert response.status_code == 429
    assert response.headers["hx-reswap"] == "none"
    assert "Too many login attempts" in response.headers["hx-trigger"]


def test_success_resets_the_account_counter(member, db):
    for _ in range(throttle.BURST - 1):
        log_in(member, "grace", "wrong password!")
    assert log_in(member, "grace").status_code == 303
    assert db.execute("SELECT count(*) FROM throttle_buckets WHERE key LIKE 'login:account:%'").fetchone()[0] == 0


def test_hash_is_upgraded_on_login_when_parameters_change(member, db, database_url):
    from litestar.testing import TestClient

    from app.main import create_app

    before = db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert "m=1024" in before
    stronger = make_settings(database_url, argon2_memory_kib=2048, argon2_time_cost=2)
    with TestClient(create_app(stronger), base_url="http://testserver.local") as other:
        assert log_in(other, "grace").status_code == 303
    after = db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert after != before and "m=2048,t=2" in after
    member.cookies.clear()
    assert log_in(member, "grace").status_code == 303  # the new hash still verifies


def test_people_sharing_one_address_who_know_their_passwords_are_never_throttled(settings, client):
    """Only failures count against a client IP, so a busy office or NAT address logs in freely."""
    from concurrent.futures import ThreadPoolExecutor

    from litestar.testing import TestClient

    from app.main import create_app

    names = [f"office_{n}" for n in range(throttle.BURST * 2)]
    for name in names:
        sign_up(client, name)
        client.cookies.clear()

    def login(name: str) -> int:
        with TestClient(create_app(settings), base_url="http://testserver.local") as browser:
            return log_in(browser, name).status_code

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        assert list(pool.map(login, names)) == [303] * len(names)
