"""Buying, in a real browser: a creator publishes an audio item at pay what you want (from $3, suggesting
$5); a fan names a higher price, pays on the development processor's checkout page, watches the order page
confirm the payment by itself, finds the item in their library, plays it and downloads the very file the
creator uploaded. Another fan's payment is declined: the order page says so and nothing is theirs to play.

The development processor's buttons sign Stripe-shaped events and POST them to the server's own
/webhooks/stripe; the worker subprocess settles the order, so the whole path (webhook, inbox, worker,
entitlements) runs for real."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from app.db import embedded
from tests.browser.conftest import ConsoleWatch, LiveServer, sign_up
from tests.media import samples

PROCESSING_TIMEOUT = 20_000  # ms for the worker (polling every 0.2 s here) to check a file
SETTLE_TIMEOUT = 15_000  # ms for a webhook event to reach the worker and settle the order
MINIMUM, SUGGESTED, NAMED = "3", "5", "6.50"


@dataclass(frozen=True)
class ShelfItem:
    public_id: str
    title: str
    creator_name: str
    filename: str
    sha256: str
    creator_state: dict  # the creator's signed-in storage state, for pages seen as the owner


def _screenshot(page: Page, path: Path) -> None:
    # caret="initial": see test_catalog_journey (a hidden caret leaves a style attribute that htmx settles
    # onto swapped-in fields, tripping the CSP).
    page.screenshot(path=path, full_page=True, caret="initial")


def _assert_console_clean(console: ConsoleWatch) -> None:
    assert console.errors == [], "the browser console reported errors:\n" + "\n".join(console.errors)


def _new_page(browser: Browser, base_url: str, console: ConsoleWatch,
              **options: object) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=base_url, **options)  # type: ignore[arg-type]
    return context, console.watch(context.new_page())


def _order_row(pg_admin_url: str, order_id: str) -> tuple[int, str, str]:
    """(amount_cents, currency, state) of an order, as the live server's database holds it."""
    with psycopg.connect(embedded.database_url(pg_admin_url, "fairshelf_browser")) as conn:
        row = conn.execute("SELECT amount_cents, currency, state FROM orders WHERE public_id = %s",
                           (order_id,)).fetchone()
    assert row is not None, f"no order {order_id} in the database"
    return row


class HtmxCalls:
    """HTMX requests a page makes (the order page's polling)."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        page.on("request", self._on_request)

    def _on_request(self, request: Request) -> None:
        if request.headers.get("hx-request") == "true":
            self.urls.append(request.url)


def _start_checkout(page: Page, item: ShelfItem) -> None:
    """From the item page, through the buy page (keeping the suggested amount), to the development
    processor's checkout page."""
    page.goto(f"/i/{item.public_id}")
    page.locator(".buy-box").get_by_role("link", name="Name your price").click()
    expect(page).to_have_url(re.compile(rf"/i/{item.public_id}/buy$"))
    page.get_by_role("button", name="Continue to payment").click()
    expect(page).to_have_url(re.compile(r"/dev/checkout/[^/]+$"))


def _press_dev_button(page: Page, name: str) -> None:
    """Press a button on the development checkout page; its form posts to this session's own address."""
    session_path = re.search(r"/dev/checkout/[^/?#]+", page.url).group(0)  # type: ignore[union-attr]
    form = page.locator(".dev-checkout > .dev-actions form").filter(
        has=page.get_by_role("button", name=name, exact=True))
    assert form.get_attribute("action") == f"{session_path}/{name.lower()}"
    form.get_by_role("button", name=name, exact=True).click()


def _order_id(page: Page) -> str:
    match = re.search(r"/orders/([^/?#]+)", page.url)
    assert match, page.url
    return match.group(1)


@pytest.fixture(scope="module")
def item(browser: Browser, base_url: str, live_server: LiveServer,
         tmp_path_factory: pytest.TempPathFactory) -> ShelfItem:
    """A creator signs up, starts selling in USD and publishes an audio item (a real WAV, uploaded through the
    wizard) at pay what you want, from $3, suggesting $5. Module-scoped, so it runs before the per-test log
    check starts watching: it checks the server's logs and its own console itself."""
    live_server.mark_logs()
    console = ConsoleWatch()
    username = f"seller_{uuid.uuid4().hex[:10]}"
    name = "Ilse Marchetti"
    # The live database is shared: use no word other journeys search for ("harbour", "lantern"…).
    title = f"Copper Chimes {username[-4:]}"
    wav = samples.write_wav(tmp_path_factory.mktemp("buying"), "copper-chimes.wav", seconds=3.0)
    context, page = _new_page(browser, base_url, console)
    try:
        sign_up(page, username, name)
        page.goto("/sell")
        page.get_by_role("radio", name=re.compile(r"^Basic")).check()
        page.get_by_label("Currency for your prices").select_option("USD")
        page.get_by_role("button", name="Start selling").click()
        expect(page).to_have_url(re.compile(r"/creator$"))

        page.goto("/creator/items/new")
        page.locator("label.type-option", has_text="Audio").click()
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(re.compile(r"/creator/items/[^/]+/details$"))
        public_id = re.search(r"/creator/items/([^/]+)/", page.url).group(1)  # type: ignore[union-attr]
        page.get_by_label("Title").fill(title)
        page.get_by_label("Description").fill("Three seconds of a copper chime, tuned to A.")
        page.get_by_role("radio", name=re.compile(r"^Handmade")).check()
        page.get_by_role("button", name="Save and continue").click()

        expect(page).to_have_url(re.compile(rf"/creator/items/{public_id}/files$"))
        page.locator("#file").set_input_files(wav)
        file_form = page.locator("form.upload-form", has=page.locator("#file"))
        file_form.get_by_role("button", name="Upload").click()
        row = page.locator("#files li.upload").filter(has_text=wav.name)
        expect(row.locator(".badge")).to_have_text("ready", timeout=PROCESSING_TIMEOUT)
        page.get_by_role("button", name="Continue to pricing").click()

        expect(page).to_have_url(re.compile(rf"/creator/items/{public_id}/pricing$"))
        page.get_by_role("radio", name="Pay what you want").check()
        page.get_by_label("Minimum", exact=True).fill(MINIMUM)
        page.get_by_label("Suggested price", exact=True).fill(SUGGESTED)
        page.get_by_role("button", name="Save and continue").click()
        expect(page).to_have_url(re.compile(rf"/creator/items/{public_id}/publish$"))
        expect(page.locator("#step dl.details")).to_contain_text(
            "Pay what you want, from $3.00 (suggested $5.00)")
        expect(page.locator("#step .form-errors")).to_have_count(0)
        page.get_by_role("button", name="Publish").click()
        expect(page).to_have_url(re.compile(rf"/i/{public_id}$"))
        expect(page.locator(".price")).to_contain_text("from $3.00")
        shelf_item = ShelfItem(public_id=public_id, title=title, creator_name=name, filename=wav.name,
                               sha256=hashlib.sha256(wav.read_bytes()).hexdigest(),
                               creator_state=context.storage_state())
    finally:
        context.close()
    _assert_console_clean(console)
    live_server.check_alive()
    trouble = live_server.log_trouble()
    assert not trouble, "the server logged errors while the creator set up the item:\n" + "\n".join(trouble)
    return shelf_item


@pytest.mark.browser
def test_fan_names_a_price_pays_plays_and_downloads(page: Page, browser: Browser, base_url: str,
                                                    item: ShelfItem, console: ConsoleWatch,
                                                    screenshots: Path, pg_admin_url: str) -> None:
    """The fan browses in `page`'s own context, apart from the creator's."""
    shot = iter(range(1, 100))

    def screenshot(label: str, target: Page) -> None:
        _screenshot(target, screenshots / f"buying-{next(shot):02d}-{label}.png")

    sign_up(page, f"fan_{uuid.uuid4().hex[:10]}", "Noor Haddad")

    # Not theirs yet: no player, and the stream is refused.
    page.goto(f"/i/{item.public_id}")
    expect(page.locator(".buy-box")).to_contain_text("Name your price")
    expect(page.locator(".player audio")).to_have_count(0)
    assert page.request.get(f"/i/{item.public_id}/stream", max_redirects=0).status == 403

    # The buy page: the amount starts at the suggestion, the hint names the least and the suggestion.
    page.locator(".buy-box").get_by_role("link", name="Name your price").click()
    expect(page).to_have_url(re.compile(rf"/i/{item.public_id}/buy$"))
    expect(page.get_by_role("heading", name=item.title, level=1)).to_be_visible()
    amount = page.get_by_label("Your price (USD)")
    expect(amount).to_have_value("5.00")
    expect(page.locator("#field-amount")).to_contain_text("At least $3.00. Suggested: $5.00.")
    expect(page.get_by_label("Your email")).to_have_count(0)  # signed in: the account's email is used
    amount.fill(NAMED)
    screenshot("buy", page)
    page.get_by_role("button", name="Continue to payment").click()

    # The development processor's hosted checkout page.
    expect(page).to_have_url(re.compile(r"/dev/checkout/[^/]+$"))
    expect(page.locator(".dev-checkout .price")).to_have_text("$6.50")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{item.title} — Fairshelf")
    screenshot("dev-checkout", page)

    # Pay: back to the order page, which asks again each second until the worker has settled the order.
    polls = HtmxCalls(page)
    with page.expect_response(lambda r: "/orders/" in r.url and r.request.is_navigation_request()) as first:
        _press_dev_button(page, "Pay")
    expect(page).to_have_url(re.compile(r"/orders/[^/?]+\?session_id=cs_dev_"))
    order_id = _order_id(page)
    arrived_pending = "Confirming your payment" in first.value.text()
    page.evaluate("window.__sameDocument = true")
    status = page.locator("#order-status")
    expect(status).to_contain_text("Payment received — thank you!", timeout=SETTLE_TIMEOUT)
    expect(status).to_have_class(re.compile(r"\border-paid\b"))
    assert page.evaluate("window.__sameDocument === true"), "the order page reloaded instead of updating"
    if arrived_pending:  # (the worker may already have settled it before the page first loaded)
        assert any(f"/orders/{order_id}" in url for url in polls.urls), "the pending order page never polled"
    expect(page.get_by_role("heading", name=item.title, level=1)).to_be_visible()
    expect(page.locator(".card").first).to_contain_text(f"order {order_id}")
    expect(page.locator(".card").first).to_contain_text("You paid: $6.50")
    assert _order_row(pg_admin_url, order_id) == (650, "USD", "paid")
    screenshot("order-paid", page)

    # The library lists it, bought for what they named.
    status.get_by_role("link", name="Open your library").click()
    expect(page).to_have_url(re.compile(r"/library$"))
    entry = page.locator(".library-entry").filter(has_text=item.title)
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(f"by {item.creator_name}")
    expect(entry).to_contain_text("bought for $6.50")
    file_link = entry.get_by_role("link", name=item.filename)
    expect(file_link).to_be_visible()
    screenshot("library", page)

    # The download is the very file the creator uploaded.
    with page.expect_download() as downloaded:
        file_link.click()
    download = downloaded.value
    assert download.failure() is None, download.failure()
    assert download.suggested_filename == item.filename
    got = hashlib.sha256(Path(download.path()).read_bytes()).hexdigest()
    assert got == item.sha256, "the downloaded file is not the uploaded one"

    # The item page: theirs now, with a player that really plays.
    entry.get_by_role("link", name="Play").click()
    expect(page).to_have_url(re.compile(rf"/i/{item.public_id}$"))
    expect(page.locator(".buy-box .owned")).to_contain_text("In your library")
    expect(page.locator(".player figcaption")).to_have_text("Your copy")
    audio = page.locator(".player audio")
    expect(audio).to_have_attribute("src", f"/i/{item.public_id}/stream")
    # A real click on the page gives it user activation, so Chromium's autoplay policy lets play() start.
    page.get_by_role("heading", name=item.title, level=1).click()
    page.evaluate("() => document.querySelector('.player audio').play()")
    page.wait_for_function("() => document.querySelector('.player audio').currentTime > 0.5", timeout=10_000)
    assert audio.evaluate("a => a.duration") == pytest.approx(3.0, abs=0.1)
    assert audio.evaluate("a => a.error") is None
    audio.evaluate("a => a.pause()")
    screenshot("item-as-buyer", page)

    # The item page as its owner: their own copy to play and download, and the files list.
    owner_context, owner = _new_page(browser, base_url, console, storage_state=item.creator_state)
    try:
        owner.goto(f"/i/{item.public_id}")
        expect(owner.locator(".buy-box .owned")).to_have_text("✓ Your item")
        expect(owner.locator(".buy-box").get_by_role("link", name="Download")).to_be_visible()
        expect(owner.locator(".player audio")).to_have_count(1)
        screenshot("item-as-owner", owner)
    finally:
        owner_context.close()

    _assert_console_clean(console)


@pytest.mark.browser
def test_declined_payment_gives_no_access(page: Page, item: ShelfItem, console: ConsoleWatch,
                                          screenshots: Path, pg_admin_url: str) -> None:
    sign_up(page, f"fan_{uuid.uuid4().hex[:10]}", "Piet Declined")
    _start_checkout(page, item)  # the suggested $5.00
    expect(page.locator(".dev-checkout .price")).to_have_text("$5.00")
    _press_dev_button(page, "Decline")

    expect(page).to_have_url(re.compile(r"/orders/[^/?]+\?session_id=cs_dev_"))
    order_id = _order_id(page)
    status = page.locator("#order-status")
    expect(status).to_contain_text("Your payment was declined. Nothing was charged.", timeout=SETTLE_TIMEOUT)
    expect(status).to_have_class(re.compile(r"\border-failed\b"))
    expect(status.get_by_role("link", name="Try again")).to_have_attribute("href", f"/i/{item.public_id}/buy")
    assert _order_row(pg_admin_url, order_id) == (500, "USD", "failed")
    _screenshot(page, screenshots / "buying-declined-order.png")

    page.goto("/library")
    expect(page.get_by_role("heading", name="Your library", level=1)).to_be_visible()
    expect(page.locator(".library-entry")).to_have_count(0)
    expect(page.locator("#library .empty")).to_contain_text("Nothing here yet.")
    _screenshot(page, screenshots / "buying-declined-library.png")

    page.goto(f"/i/{item.public_id}")
    expect(page.locator(".buy-box")).to_contain_text("Name your price")
    expect(page.locator(".player audio")).to_have_count(0)

    for path in ("stream", "download"):
        response = page.request.get(f"/i/{item.public_id}/{path}", max_redirects=0)
        assert response.status == 403, f"/{path} answered {response.status}, not 403"

    _assert_console_clean(console)
