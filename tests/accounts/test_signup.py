from __future__ import annotations

import pytest

from tests.conftest import csrf_token, last_email, post_form, sign_up

VALID = {"email": "ada@example.com", "username": "ada", "display_name": "Ada", "password": "a long passphrase"}


def test_sign_up_creates_the_account_signs_in_and_sends_a_confirmation(client, db):
    response = sign_up(client, "ada", "Ada@Example.com", display_name="Ada Lovelace")
    assert response.headers["location"] == "/account"
    user = db.execute("SELECT username, email, display_name, password_hash, email_verified_at FROM users").fetchone()
    assert user[:3] == ("ada", "Ada@Example.com", "Ada Lovelace")
    assert user[3].startswith("$argon2id$") and "a long passphrase" not in user[3]
    assert user[4] is None
    assert "/verify-email?token=" in last_email(db, "Ada@Example.com", "verify_email")
    page = client.get("/account")
    assert page.status_code == 200 and "Ada Lovelace" in page.text and "not confirmed" in page.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "", "Email is required."),
        ("email", "not-an-email", "Enter a valid email address"),
        ("email", "a" * 250 + "@example.com", "Enter a valid email address"),
        ("username", "", "Username is required."),
        ("username", "ab", "Username must be 3–30 characters"),
        ("username", "x" * 31, "Username must be 3–30 characters"),
        ("username", "bad name!", "Username must be 3–30 characters"),
        ("username", "admin", "That username is reserved"),
        ("display_name", "", "Display name is required."),
        ("display_name", "n" * 61, "Display name must be at most 60 characters."),
        ("password", "", "Password must be at least 10 characters."),
        ("password", "short", "Password must be at least 10 characters."),
        ("password", "p" * 129, "Password must be at most 128 characters."),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_stored(client, db, field, value, message):
    response = post_form(client, "/signup", {**VALID, field: value})
    assert response.status_code == 422
    assert message in response.text
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 0


def test_the_form_keeps_what_was_typed_except_the_password(client):
    response = post_form(client, "/signup", {**VALID, "username": "x"})
    assert response.status_code == 422
    assert 'value="ada@example.com"' in response.text
    assert "a long passphrase" not in response.text


def test_duplicate_email_in_another_letter_case_is_refused(client, db):
    sign_up(client, "ada", "ada@example.com")
    client.cookies.clear()
    response = post_form(client, "/signup", {**VALID, "email": "ADA@EXAMPLE.COM", "username": "other"})
    assert response.status_code == 422
    assert "An account with this email already exists" in response.text
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 1


def test_duplicate_username_in_another_letter_case_is_refused(client, db):
    sign_up(client, "ada", "ada@example.com")
    client.cookies.clear()
    response = post_form(client, "/signup", {**VALID, "email": "other@example.com", "username": "ADA"})
    assert response.status_code == 422
    assert "That username is taken" in response.text
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 1


def test_username_check_on_blur(client):
    sign_up(client, "ada")
    taken = post_form(client, "/signup/check-username", {"username": "Ada"}, headers={"HX-Request": "true"})
    assert taken.status_code == 200 and "That username is taken" in taken.text
    free = post_form(client, "/signup/check-username", {"username": "grace_h"}, headers={"HX-Request": "true"})
    assert "grace_h is available" in free.text
    malformed = post_form(client, "/signup/check-username", {"username": "no"}, headers={"HX-Request": "true"})
    assert "3–30 characters" in malformed.text


def test_missing_csrf_token_is_refused(client, db):
    csrf_token(client)
    response = client.post("/signup", data=VALID, follow_redirects=False)
    assert response.status_code == 403
    assert "Reload the page and try again" in response.text
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 0


def test_wrong_csrf_token_is_refused(client, db):
    csrf_token(client)
    response = client.post("/signup", data={**VALID, "_csrf_token": "0" * 128}, follow_redirects=False)
    assert response.status_code == 403
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 0


def test_csrf_token_in_the_htmx_header_is_accepted(client, db):
    token = csrf_token(client)
    response = client.post("/signup", data=VALID, headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 1
