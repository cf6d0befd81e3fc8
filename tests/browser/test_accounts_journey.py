"""A new person's first day with their account, in a real browser: sign up, log out and in, forget the password,
reset it from the emailed link, and log in with the new one."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ConsoleWatch

PASSWORD = "correct horse battery"
NEW_PASSWORD = "purple mountain ladder"
MISMATCH = "That email or username and password do not match."


def _log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".flash")).to_have_text("You are logged out.")
    expect(page.locator("header").get_by_role("link", name="Log in", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def _log_in(page: Page, identifier: str, password: str) -> None:
    page.get_by_label("Email or username").fill(identifier)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def _blur_username(page: Page, username: str) -> None:
    field = page.locator("#username")
    field.fill(username)
    field.blur()


def _open_email(page: Page, to: str, subject: str, timeout: float = 10.0) -> None:
    """Open the mailbox and wait until the worker has delivered the message, then open it."""
    page.goto("/dev/mail")
    row = page.locator("tbody tr").filter(has_text=to).filter(has_text=subject)
    deadline = time.monotonic() + timeout
    while row.locator("td").nth(2).inner_text() != "sent":
        assert time.monotonic() < deadline, f"the worker did not send {subject!r} to {to} in {timeout:.0f}s"
        time.sleep(0.2)
        page.reload()
    expect(row).to_have_count(1)


@pytest.mark.browser
def test_sign_up_log_in_and_reset_password(page: Page, browser: Browser, base_url: str, console: ConsoleWatch,
                                           screenshots: Path) -> None:
    username = f"journey_{uuid.uuid4().hex[:10]}"
    email = f"{username}@example.com"
    name = "Journey Tester"

    # Sign up; the username is checked as soon as the field loses focus.
    page.goto("/")
    page.locator("header").get_by_role("link", name="Sign up", exact=True).click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.get_by_label("Email", exact=True).fill(email)
    _blur_username(page, username)
    expect(page.locator("#username-help")).to_have_text(f"✓ {username} is available.")
    expect(page.locator("#username")).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.screenshot(path=screenshots / "01-signup.png", full_page=True)
    page.get_by_role("button", name="Sign up").click()

    # The account page greets them and shows their profile and this one session.
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator(".flash")).to_have_text(
        f"Welcome to Fairshelf, {name}! We sent a confirmation link to {email}.")
    expect(page.get_by_role("heading", name="Your account", level=1)).to_be_visible()
    profile = page.locator("section", has=page.get_by_role("heading", name="Profile"))
    expect(profile.locator("dd").nth(0)).to_have_text(name)
    expect(profile.locator("dd").nth(1)).to_have_text(f"@{username}")
    expect(profile.locator("dd").nth(2)).to_contain_text(email)
    expect(profile.locator("dd").nth(2)).to_contain_text("not confirmed")
    expect(page.locator("header").get_by_role("link", name=name)).to_be_visible()
    sessions = page.locator("section", has=page.get_by_role("heading", name="Where you're signed in"))
    expect(sessions.locator("tbody tr")).to_have_count(1)
    expect(sessions.locator("tbody tr")).to_contain_text("this device")
    expect(page.get_by_role("button", name="Sign out everywhere else")).to_have_count(0)

    # Logging in on a second device (with the email address) adds a session, which can be signed out from here.
    other_context = browser.new_context(base_url=base_url)
    try:
        other = console.watch(other_context.new_page())
        other.goto("/login")
        _log_in(other, email, PASSWORD)
        expect(other.locator(".flash")).to_have_text(f"Welcome back, {name}.")
        page.reload()
        expect(sessions.locator("tbody tr")).to_have_count(2)
        page.screenshot(path=screenshots / "02-account.png", full_page=True)
        page.get_by_role("button", name="Sign out everywhere else").click()
        expect(page.locator(".flash")).to_have_text("Signed out 1 other session.")
        expect(sessions.locator("tbody tr")).to_have_count(1)
        other.goto("/account")
        expect(other).to_have_url(re.compile(r"/login\?next=(/|%2F)account$"))
    finally:
        other_context.close()

    _log_out(page)

    # Now that the username exists, the inline check on the sign-up form says it is taken.
    page.locator("header").get_by_role("link", name="Sign up", exact=True).click()
    _blur_username(page, username)
    expect(page.locator("#username-help")).to_have_text("That username is taken; please pick another.")
    expect(page.locator("#username")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#username")).to_have_value(username)
    page.screenshot(path=screenshots / "03-signup-username-taken.png", full_page=True)

    # Log in again with the username; the hidden `next` brings them back to the page they asked for.
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)account$"))
    expect(page.locator("input[name=next]")).to_have_value("/account")
    _log_in(page, username, PASSWORD)
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator(".flash")).to_have_text(f"Welcome back, {name}.")
    _log_out(page)

    # Forgot the password: ask for a reset link.
    page.locator("header").get_by_role("link", name="Log in", exact=True).click()
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_role("button", name="Send the reset link").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash")).to_contain_text(f"If {email} has a Fairshelf account, a reset link is on its way.")

    # Read it in the development mailbox (once the worker has sent it) and follow the link.
    page.get_by_role("link", name="Development mailbox").click()
    _open_email(page, email, "Reset your Fairshelf password")
    page.screenshot(path=screenshots / "04-mailbox.png", full_page=True)
    page.locator("tbody tr").filter(has_text=email).get_by_role("link", name="Reset your Fairshelf password").click()
    expect(page.get_by_role("heading", name="Reset your Fairshelf password")).to_be_visible()
    expect(page.locator(".email-body")).to_contain_text(f"Hi {name},")
    reset_link = page.locator(".email-body a[href*='/reset-password?token=']")
    expect(reset_link).to_have_count(1)
    reset_url = reset_link.get_attribute("href")
    page.screenshot(path=screenshots / "05-email.png", full_page=True)
    reset_link.click()

    # Choose the new password.
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash")).to_have_text(
        "Your password is reset and every device was signed out. Log in with the new password.")

    # The old password no longer works, and the form says so while keeping what they typed as identifier.
    _log_in(page, username, PASSWORD)
    expect(page.locator(".form-errors")).to_contain_text(MISMATCH)
    expect(page.locator("#password-help .field-error")).to_have_text(MISMATCH)
    expect(page.get_by_label("Email or username")).to_have_value(username)
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    page.screenshot(path=screenshots / "06-login-old-password.png", full_page=True)

    # The new one does.
    _log_in(page, username, NEW_PASSWORD)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".flash")).to_have_text(f"Welcome back, {name}.")
    expect(page.locator("header").get_by_role("link", name=name)).to_be_visible()
    page.screenshot(path=screenshots / "07-home-logged-in.png", full_page=True)

    # The emailed link worked once only.
    assert reset_url
    page.goto(reset_url)
    expect(page.locator(".form-errors")).to_have_text("This reset link was already used. Ask for a new one if you need it.")

    assert console.errors == [], "the browser console reported errors:\n" + "\n".join(console.errors)


@pytest.mark.browser
def test_pages_have_a_favicon(page: Page) -> None:
    page.goto("/")
    icon = page.locator("link[rel~=icon]")
    href = icon.first.get_attribute("href") if icon.count() else "/favicon.ico"
    response = page.request.get(href or "/favicon.ico")
    assert response.status == 200, f"{href} answered {response.status}"
    assert response.headers["content-type"].startswith("image/")
