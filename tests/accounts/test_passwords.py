from __future__ import annotations

import time

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.conftest import TEST_SECRET, last_email, log_in, post_form, sign_up, token_from

COOKIE = "fairshelf_session"


def test_forgot_password_answers_the_same_whether_or_not_the_account_exists(client, db):
    sign_up(client, "reset_me", "reset@example.com")
    client.cookies.clear()
    known = post_form(client, "/forgot-password", {"email": "RESET@example.com"})
    unknown = post_form(client, "/forgot-password", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"] == unknown.headers["location"] == "/login"
    assert db.execute("SELECT count(*) FROM emails WHERE template = 'password_reset'").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM emails WHERE to_address = 'nobody@example.com'").fetchone()[0] == 0


def test_forgot_password_validates_the_address(client):
    response = post_form(client, "/forgot-password", {"email": "nope"})
    assert response.status_code == 422 and "Enter a valid email address" in response.text


def test_reset_sets_the_password_ends_sessions_and_the_link_works_once(client, settings, db):
    sign_up(client, "reset_me", "reset@example.com")
    post_form(client, "/forgot-password", {"email": "reset@example.com"})
    token = token_from(last_email(db, "reset@example.com", "password_reset"))
    assert db.execute("SELECT count(*) FROM jobs WHERE kind = 'mail.send'").fetchone()[0] >= 2

    form = client.get(f"/reset-password?token={token}")
    assert form.status_code == 200 and "Choose a new password" in form.text
    short = post_form(client, "/reset-password", {"token": token, "password": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text

    done = post_form(client, "/reset-password", {"token": token, "password": "a brand new passphrase"})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert db.execute("SELECT count(*) FROM user_sessions").fetchone()[0] == 0
    assert db.execute("SELECT email_verified_at IS NOT NULL FROM users").fetchone()[0] is True

    client.cookies.clear()
    assert log_in(client, "reset_me").status_code == 422
    assert log_in(client, "reset_me", "a brand new passphrase").status_code == 303

    reused = post_form(client, "/reset-password", {"token": token, "password": "another new passphrase"})
    assert reused.status_code == 400 and "already used" in reused.text
    assert "already used" in client.get(f"/reset-password?token={token}").text


def test_expired_and_forged_reset_links_are_refused(client, db):
    sign_up(client, "reset_me", "reset@example.com")
    user_id, password_hash = db.execute("SELECT id, password_hash FROM users").fetchone()

    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 2 * 3600

    import hashlib

    fingerprint = hashlib.sha256(password_hash.encode()).hexdigest()[:16]
    old = URLSafeTimedSerializer(TEST_SECRET, salt="accounts.reset", signer=TwoHoursAgo).dumps(
        {"u": user_id, "f": fingerprint})
    expired = post_form(client, "/reset-password", {"token": old, "password": "a brand new passphrase"})
    assert expired.status_code == 400 and "expired" in expired.text

    forged = URLSafeTimedSerializer("some other secret key entirely", salt="accounts.reset").dumps(
        {"u": user_id, "f": fingerprint})
    refused = post_form(client, "/reset-password", {"token": forged, "password": "a brand new passphrase"})
    assert refused.status_code == 400 and "not valid" in refused.text
    assert db.execute("SELECT password_hash FROM users").fetchone()[0] == password_hash


def test_change_password(client, settings, db):
    from litestar.testing import TestClient

    from app.main import create_app

    sign_up(client, "changer", "changer@example.com")
    with TestClient(create_app(settings), base_url="http://testserver.local") as other:
        log_in(other, "changer")
        wrong = post_form(client, "/account/password",
                          {"current_password": "not it at all", "new_password": "a brand new passphrase"})
        assert wrong.status_code == 422 and "current password is not right" in wrong.text
        weak = post_form(client, "/account/password",
                         {"current_password": "correct horse battery", "new_password": "short"})
        assert weak.status_code == 422 and "at least 10 characters" in weak.text

        before = client.cookies[COOKIE]
        ok = post_form(client, "/account/password",
                       {"current_password": "correct horse battery", "new_password": "a brand new passphrase"})
        assert ok.status_code == 303
        assert client.cookies[COOKIE] != before, "a privilege change issues a new session id"
        assert client.get("/account", follow_redirects=False).status_code == 200
        assert other.get("/account", follow_redirects=False).status_code == 303
    assert db.execute("SELECT count(*) FROM user_sessions").fetchone()[0] == 1
    assert "was just changed" in last_email(db, "changer@example.com", "password_changed")


def test_email_verification(client, db):
    sign_up(client, "verify_me", "verify@example.com")
    token = token_from(last_email(db, "verify@example.com", "verify_email"))
    bad = client.get("/verify-email?token=nonsense", follow_redirects=False)
    assert bad.status_code == 400 and "not valid" in bad.text
    ok = client.get(f"/verify-email?token={token}", follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/account"
    assert db.execute("SELECT email_verified_at IS NOT NULL FROM users").fetchone()[0] is True
    page = client.get("/account")
    assert "confirmed" in page.text and "not confirmed" not in page.text
    assert "your email address is confirmed" in page.text


def test_resend_verification(client, db):
    sign_up(client, "verify_me", "verify@example.com")
    assert post_form(client, "/account/verify/resend", {}).status_code == 303
    assert db.execute("SELECT count(*) FROM emails WHERE template = 'verify_email'").fetchone()[0] == 2
