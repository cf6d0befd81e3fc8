"""Getting paid, in a real browser: a creator connects a payout account through the development processor's
onboarding (first leaving details missing, then completing it), a fan buys their $12.00 text, the sale waits out
the hold period on the development clock, the scheduler pays it out and the earnings page and its ledger export
show it all.

The onboarding buttons sign account.updated events and POST them to the server's own /webhooks/stripe/connect; the
worker subprocess applies them, settles the order, credits the sale, runs the payout scheduler when the clock moves
and sends the payout, so the whole path runs for real. The clock is shared by every journey on the live server, so
the journey puts it back to real time however it ends."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.checkout.devprocessor import dev_fee
from app.db import embedded
from app.web.text import format_money
from tests.browser.conftest import ConsoleWatch, sign_up
from tests.browser.test_buying_journey import (
    SETTLE_TIMEOUT,
    _assert_console_clean,
    _new_page,
    _order_id,
    _order_row,
    _press_dev_button,
    _screenshot,
)

WORKER_TIMEOUT = 15.0  # seconds for the worker (polling every 0.2 s here) to apply an event or run a job
PRICE, PRICE_CENTS = "12.00", 1200
FEE = dev_fee(PRICE_CENTS)
NET = PRICE_CENTS - FEE  # above the $10.00 payout minimum, so one sale is paid out
HOLD_DAYS = 7
ZERO = "$0.00"


def money(cents: int) -> str:
    return format_money(cents, "USD")


def _figure(page: Page, name: str) -> Locator:
    return page.locator(f'[data-figure="{name}"]')


def _reload_until(page: Page, check: Callable[[], None], timeout: float = WORKER_TIMEOUT) -> None:
    """Reload the page until `check` (a few short expectations) passes: the earnings page does not poll, so
    the creator reloads it to see what the worker did meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)
        page.reload()


def _payout_row(pg_admin_url: str, username: str) -> list[tuple[str, int, str]]:
    """(state, amount_cents, transfer_id) of the creator's payouts, as the live server's database holds them."""
    with psycopg.connect(embedded.database_url(pg_admin_url, "fairshelf_browser")) as conn:
        return conn.execute(
            "SELECT p.state, p.amount_cents, p.transfer_id FROM payouts p JOIN users u ON u.id = p.creator_id "
            "WHERE u.username = %s ORDER BY p.id", (username,)).fetchall()


def _start_selling(page: Page) -> None:
    page.goto("/sell")
    page.get_by_role("radio", name=re.compile(r"^Basic")).check()
    page.get_by_label("Currency for your prices").select_option("USD")
    page.get_by_role("button", name="Start selling").click()
    expect(page).to_have_url(re.compile(r"/creator$"))


def _publish_text(page: Page, title: str) -> str:
    """A text item at a fixed price, through the wizard (a text has no files step); returns its public id."""
    page.goto("/creator/items/new")
    page.locator("label.type-option", has=page.locator('input[value="text"]')).click()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/creator/items/[^/]+/details$"))
    public_id = re.search(r"/creator/items/([^/]+)/", page.url).group(1)  # type: ignore[union-attr]
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill("A short field guide to the tides of a small bay.")
    page.get_by_label(re.compile(r"^Text\b")).fill("The water comes in twice a day.\n\nIt goes out twice a day, too.")
    page.get_by_role("radio", name=re.compile(r"^Handmade")).check()
    page.get_by_role("button", name="Save and continue").click()

    expect(page).to_have_url(re.compile(rf"/creator/items/{public_id}/pricing$"))
    page.get_by_role("radio", name="Fixed price").check()
    page.get_by_label("Price", exact=True).fill(PRICE)
    page.get_by_role("button", name="Save and continue").click()
    expect(page).to_have_url(re.compile(rf"/creator/items/{public_id}/publish$"))
    expect(page.locator("#step .form-errors")).to_have_count(0)
    page.get_by_role("button", name="Publish").click()
    expect(page).to_have_url(re.compile(rf"/i/{public_id}$"))
    expect(page.locator(".price")).to_contain_text(money(PRICE_CENTS))
    return public_id


def _day_around(moment: datetime) -> re.Pattern[str]:
    """The clock page's date for `moment`, or the day before (in case midnight passed since the page showed it)."""
    return re.compile("|".join(f"{d:%A} {d.day} {d:%B %Y}" for d in (moment - timedelta(days=1), moment)))


def _reset_clock(page: Page) -> None:
    page.goto("/dev/clock")
    page.get_by_role("button", name="Back to real time").click()
    expect(page).to_have_url(re.compile(r"/dev/clock$"))
    expect(page.locator(".flash")).to_contain_text("The clock is back to real time.")


@pytest.mark.browser
def test_creator_connects_sells_and_is_paid_out(page: Page, browser: Browser, base_url: str, console: ConsoleWatch,
                                                tmp_path: Path, pg_admin_url: str) -> None:
    """The creator works in `page`; the fan buys in a context of their own."""
    username = f"payee_{uuid.uuid4().hex[:10]}"
    # The live database is shared: use no word other journeys search for ("harbour", "lantern"…).
    title = f"Tide Tables {username[-4:]}"
    sign_up(page, username, "Maren Okafor")
    _start_selling(page)
    public_id = _publish_text(page, title)

    try:
        # --- Connecting a payout account ------------------------------------------------------------------
        page.goto("/creator")
        page.get_by_role("link", name="Earnings and payouts").click()
        expect(page).to_have_url(re.compile(r"/creator/payouts$"))
        expect(page.get_by_role("heading", name="Earnings and payouts", level=1)).to_be_visible()
        account = page.locator("section", has=page.get_by_role("heading", name="Payout account"))
        expect(account).to_contain_text("Connect a Stripe account to receive your money.")
        expect(page.locator(".payout-blocked")).to_have_text("Connect a payout account to get paid.")
        page.get_by_role("button", name="Connect a payout account").click()

        expect(page).to_have_url(re.compile(r"/dev/connect/[^/]+$"))
        expect(page.get_by_role("heading", name="Set up payouts", level=1)).to_be_visible()
        expect(page.locator(".dev-checkout code").first).to_have_text(re.compile(r"^acct_dev_"))
        page.get_by_role("button", name="Leave details missing").click()

        expect(page).to_have_url(re.compile(r"/creator/payouts$"))
        expect(page.locator(".flash")).to_contain_text("Stripe is checking your details")
        needs = ["a bank account or debit card to receive payouts", "an identity document"]

        def lists_what_stripe_needs() -> None:
            expect(account.locator(".badge")).to_have_text("Not ready", timeout=1000)
            expect(account.locator("li")).to_have_text(needs, timeout=1000)

        _reload_until(page, lists_what_stripe_needs)
        expect(page.locator(".payout-blocked")).to_have_text(
            f"Your payout account is not ready yet. Stripe still needs: {', '.join(needs)}.")
        page.get_by_role("button", name="Continue setup at Stripe").click()

        expect(page).to_have_url(re.compile(r"/dev/connect/[^/]+$"))
        page.get_by_role("button", name="Complete onboarding").click()
        expect(page).to_have_url(re.compile(r"/creator/payouts$"))
        _reload_until(page, lambda: expect(account.locator(".badge")).to_have_text("Ready", timeout=1000))
        expect(account).to_contain_text("Payouts go to your Stripe account.")
        expect(account.get_by_role("button", name="Manage at Stripe")).to_be_visible()
        expect(account.locator("li")).to_have_count(0)
        expect(page.locator(".payout-waiting")).to_have_text("Payouts start once your available balance reaches $10.00.")

        # --- A fan buys the item --------------------------------------------------------------------------
        fan_context, fan = _new_page(browser, base_url, console)
        try:
            sign_up(fan, f"fan_{uuid.uuid4().hex[:10]}", "Tomasz Lindqvist")
            fan.goto(f"/i/{public_id}")
            fan.locator(".buy-box").get_by_role("link", name=f"Buy for {money(PRICE_CENTS)}").click()
            expect(fan).to_have_url(re.compile(rf"/i/{public_id}/buy$"))
            fan.get_by_role("button", name="Continue to payment").click()
            expect(fan).to_have_url(re.compile(r"/dev/checkout/[^/]+$"))
            expect(fan.locator(".dev-checkout .price")).to_have_text(money(PRICE_CENTS))
            _press_dev_button(fan, "Pay")
            expect(fan).to_have_url(re.compile(r"/orders/[^/?]+\?session_id=cs_dev_"))
            order_id = _order_id(fan)
            expect(fan.locator("#order-status")).to_contain_text("Payment received — thank you!",
                                                                 timeout=SETTLE_TIMEOUT)
            assert _order_row(pg_admin_url, order_id) == (PRICE_CENTS, "USD", "paid")
        finally:
            fan_context.close()

        # --- The sale, on hold ----------------------------------------------------------------------------
        page.goto("/creator/payouts")
        _reload_until(page, lambda: expect(_figure(page, "all")).to_have_text(money(NET), timeout=1000))
        expect(_figure(page, "week")).to_have_text(money(NET))
        expect(_figure(page, "month")).to_have_text(money(NET))
        expect(page.locator("section.stats").first).to_contain_text("1 sale")
        expect(_figure(page, "on-hold")).to_have_text(money(NET))
        expect(_figure(page, "available")).to_have_text(ZERO)
        expect(page.get_by_text(f"Sales become available {HOLD_DAYS} days after the payment")).to_be_visible()
        expect(_figure(page, "next")).to_have_text(ZERO)
        expect(page.locator(".payout-waiting")).to_have_text("Payouts start once your available balance reaches $10.00.")
        payouts = page.locator("section", has=page.get_by_role("heading", name="Payouts", exact=True))
        expect(payouts).to_contain_text("No payouts yet.")
        ledger_rows = page.locator("table.ledger tbody tr")
        expect(ledger_rows).to_have_count(1)
        sale_row = ledger_rows.filter(has_text=f"Sale: {title}")
        expect(sale_row).to_contain_text(f"({money(PRICE_CENTS)} less {money(FEE)} processing fee)")
        expect(sale_row.locator("td").nth(2)).to_have_text(money(NET))
        held_until = (datetime.now(UTC) + timedelta(days=HOLD_DAYS)).date()
        expect(sale_row.locator("td").nth(3)).to_have_text(
            re.compile(f"^({held_until.isoformat()}|{(held_until + timedelta(days=1)).isoformat()})$"))
        before = tmp_path / "payouts-before.png"
        _screenshot(page, before)

        # --- The hold period passes -----------------------------------------------------------------------
        page.goto("/dev/clock")
        expect(page.get_by_role("heading", name="Payout clock", level=1)).to_be_visible()
        clock = page.locator('[data-figure="clock"]')
        expect(clock).to_contain_text(_day_around(datetime.now(UTC)))
        page.get_by_label("Days ahead").fill("8")
        page.get_by_role("button", name="Move ahead").click()
        expect(page).to_have_url(re.compile(r"/dev/clock$"))
        expect(page.locator(".flash")).to_have_text("The clock moved 8 days ahead; the payout scheduler runs now.")
        expect(clock).to_contain_text(_day_around(datetime.now(UTC) + timedelta(days=8)))

        # --- Paid out -------------------------------------------------------------------------------------
        page.get_by_role("link", name="Your earnings and payouts").click()
        expect(page).to_have_url(re.compile(r"/creator/payouts$"))
        payout_rows = payouts.locator("table.payouts tbody tr")

        def paid_out() -> None:
            expect(payout_rows).to_have_count(1, timeout=1000)
            expect(payout_rows.first.locator(".badge")).to_have_text("paid", timeout=1000)

        _reload_until(page, paid_out)
        row = payout_rows.first
        expect(row.locator("td").nth(1)).to_have_text(money(NET))
        expect(row.locator(".badge")).to_have_class(re.compile(r"\bbadge-ok\b"))
        expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^Paid \d{4}-\d{2}-\d{2}$"))
        expect(_figure(page, "available")).to_have_text(ZERO)
        expect(_figure(page, "on-hold")).to_have_text(ZERO)
        expect(_figure(page, "all")).to_have_text(money(NET))  # earnings are what sales brought in, paid out or not
        expect(_figure(page, "next")).to_have_text(ZERO)
        expect(page.locator(".payout-waiting")).to_have_text("Payouts start once your available balance reaches $10.00.")
        expect(ledger_rows).to_have_count(2)
        payout_entry = ledger_rows.first  # newest first
        expect(payout_entry.locator("td").nth(1)).to_have_text("Payout")
        expect(payout_entry.locator("td").nth(2)).to_have_text(money(-NET))
        expect(ledger_rows.nth(1)).to_contain_text(f"Sale: {title}")
        after = tmp_path / "payouts-after.png"
        _screenshot(page, after)

        [(state, amount, transfer)] = _payout_row(pg_admin_url, username)
        assert (state, amount) == ("paid", NET)
        assert transfer and transfer.startswith("tr_dev_"), transfer

        # --- The ledger as CSV ----------------------------------------------------------------------------
        with page.expect_download() as downloaded:
            page.get_by_role("link", name="ledger", exact=True).click()
        download = downloaded.value
        assert download.failure() is None, download.failure()
        assert download.suggested_filename == "fairshelf-ledger.csv"
        lines = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
        assert [(line["kind"], line["amount"]) for line in lines] == [
            ("sale", f"{NET / 100:.2f}"), ("payout", f"{-NET / 100:.2f}")]
        sale, payout = lines
        assert (sale["gross"], sale["currency"], sale["order"], sale["item"]) == (PRICE, "USD", order_id, title)
        assert payout["payout"] and payout["order"] == "" and payout["gross"] == ""
    finally:
        _reset_clock(page)

    expect(page.locator('[data-figure="clock"]')).to_contain_text(_day_around(datetime.now(UTC)))
    _assert_console_clean(console)
