"""The creator's earnings page over HTTP with the development processor: every figure is the ledger's, refunds and
the hold period move them, the payout account's state is spelled out, the charts draw the counted days, and the
item counters (views, plays, downloads) reach the page. Also connecting a payout account, account.updated on the
Connect endpoint and its own secret, and the development clock."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from litestar.testing import TestClient

from app.checkout.devprocessor import dev_fee
from app.main import create_app
from app.payouts import accounts, queue
from app.payouts.stats import ItemCounter
from app.settings import Settings
from app.web.text import format_money
from tests.catalog.conftest import CreatorSetup, become_creator, other_browser, run_jobs
from tests.checkout import stripe_events
from tests.checkout.conftest import Shop
from tests.conftest import log_in, make_settings, post_form, sign_up
from tests.discovery.conftest import add_item
from tests.payouts.conftest import Payouts
from tests.payouts.ledger_rows import run
from tests.payouts.page_helpers import bars, chart_totals, clock_now, figures, flush_counts, page_of, refund

NET = 499 - dev_fee(499)  # what a $4.99 sale leaves the creator
CONNECT = "/webhooks/stripe/connect"


def money(cents: int) -> str:
    return format_money(cents, "USD")


@pytest.fixture
def bare(creator: CreatorSetup, db: psycopg.Connection) -> Payouts:
    """The `payouts` driver for a creator with nothing for sale (connecting, pages without sales)."""
    return Payouts(Shop(creator, "", creator.settings), db)


@pytest.fixture
def rival_browser(settings: Settings) -> Iterator[TestClient]:
    with other_browser(settings) as browser:
        become_creator(browser, "rival")
        yield browser


def flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="flash flash-\w+">(.*?)</p>', page, re.S)]


def views_of(db: psycopg.Connection, item_public_id: str) -> tuple[int, int, int]:
    row = db.execute("SELECT COALESCE(sum(s.views), 0), COALESCE(sum(s.plays), 0), COALESCE(sum(s.downloads), 0) "
                     "FROM item_stats_daily s JOIN items i ON i.id = s.item_id WHERE i.public_id = %s",
                     (item_public_id,)).fetchone()
    return tuple(int(v) for v in row)


# --- Figures --------------------------------------------------------------------------------------------------

def test_the_figures_are_the_ledgers_through_a_refund_and_the_hold(payouts: Payouts):
    payouts.connect()
    orders = [payouts.sell() for _ in range(3)]
    assert payouts.balance() == (3 * NET, 0)
    page = page_of(payouts.client)
    assert figures(page) == {"today": money(3 * NET), "week": money(3 * NET), "month": money(3 * NET),
                             "all": money(3 * NET), "available": money(0), "on-hold": money(3 * NET),
                             "next": money(0)}
    assert "3 sales" in page
    assert "Payouts start once your available balance reaches $10.00." in page
    assert "Night Drive" in page  # the ledger's recent entries name the item

    refund(payouts, orders[0], 200)  # a partial refund, still within the hold: netted there
    earned = 3 * NET - 200
    assert payouts.balance() == (earned, 0)
    shown = figures(page_of(payouts.client))
    assert [shown[k] for k in ("today", "week", "month", "all")] == [money(earned)] * 4
    assert (shown["available"], shown["on-hold"]) == (money(0), money(earned))

    payouts.advance(8)  # past the hold by the payout clock
    assert payouts.balance() == (earned, earned)
    page = page_of(payouts.client)
    shown = figures(page)
    assert (shown["available"], shown["on-hold"], shown["next"]) == (money(earned), money(0), money(earned))
    # Eight days on by the same clock, the sales are no longer today's or this week's.
    assert (shown["today"], shown["week"], shown["month"], shown["all"]) == (
        money(0), money(0), money(earned), money(earned))
    when = queue.next_payout_date(clock_now(payouts.db), payouts.settings)
    assert f"on {when.strftime('%A %-d %B')}" in page

    payouts.run_scheduler()  # the payout goes out: the page follows the ledger
    assert payouts.payouts() == [("paid", earned)]
    shown = figures(page_of(payouts.client))
    assert (shown["available"], shown["on-hold"], shown["all"]) == (money(0), money(0), money(earned))


def test_an_account_that_is_not_ready_says_what_stripe_still_needs(bare: Payouts):
    account_id = bare.connect(ready=False)
    page = html.unescape(page_of(bare.client))
    assert "Not ready" in page
    assert "<li>a bank account or debit card to receive payouts</li>" in page
    assert "Your payout account is not ready yet. Stripe still needs: a bank account or debit card to receive " \
           "payouts." in page
    assert "Continue setup at Stripe" in page

    due = ("external_account", "individual.verification.document", "tos_acceptance.date", "tos_acceptance.ip",
           "company.tax_id")
    payload = stripe_events.connect_event("account.updated", stripe_events.account(account_id, ready=False, due=due),
                                          account_id, created=int(time.time()) + 1)
    assert stripe_events.deliver(bare.client, payload, bare.settings.connect_webhook_secret, path=CONNECT) \
        .status_code == 200
    run_jobs(bare.settings)
    words = accounts.describe(list(due))
    assert words == ["a bank account or debit card to receive payouts", "an identity document",
                     "accepting Stripe's terms of service", "company: tax id"]
    page = html.unescape(page_of(bare.client))
    for need in words:
        assert f"<li>{need}</li>" in page
    assert f"Stripe still needs: {', '.join(words)}." in page
    assert figures(page)["next"] == money(0)


def test_an_unconnected_account_shows_the_connect_button(creator: CreatorSetup):
    page = page_of(creator.client)
    assert '<form method="post" action="/creator/payouts/connect">' in page
    assert "Connect a payout account</button>" in page
    assert "Connect a payout account to get paid." in page
    assert figures(page) == {"today": money(0), "week": money(0), "month": money(0), "all": money(0),
                             "available": money(0), "on-hold": money(0), "next": money(0)}


@pytest.mark.parametrize(("query", "days"), [("", 30), ("?days=30", 30), ("?days=90", 90), ("?days=7", 30),
                                              ("?days=100000", 30), ("?days=-5", 30)])
def test_the_charts_draw_one_bar_a_day_for_30_or_90_days(creator: CreatorSetup, query: str, days: int):
    page = page_of(creator.client, f"/creator/payouts{query}")
    charts = chart_totals(page)
    assert list(charts) == ["Sales", "Earned from sales", "Views", "Plays and downloads"]
    assert all(covered == days for _, covered in charts.values())
    assert bars(page) == 4 * days


def test_todays_sale_is_on_todays_bar_whatever_the_database_time_zone(creator: CreatorSetup, db: psycopg.Connection,
                                                                      monkeypatch: pytest.MonkeyPatch):
    # Whatever the hour, one of these puts the current moment on a different calendar day than UTC.
    zone = "Etc/GMT-14" if datetime.now(UTC).hour >= 10 else "Etc/GMT+12"
    creator_id = db.execute("SELECT user_id FROM creators").fetchone()[0]
    item = add_item(db, creator_id, "Time Zones", price_mode="fixed", price_cents=499)
    db.execute("INSERT INTO orders (public_id, item_id, creator_id, buyer_email, amount_cents, currency, state, paid_at) "
               "SELECT 'tzorder00001', id, creator_id, 'tz@example.com', 499, 'USD', 'paid', now() FROM items "
               "WHERE public_id = %s", (item,))
    db.execute("INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, gross_cents, available_at, "
               "order_id, key) SELECT creator_id, 'USD', 'sale', 455, 499, now() + interval '7 days', id, "
               "'sale:' || id FROM orders")
    monkeypatch.setenv("PGTZ", zone)  # the app's new connections use the server's zone as a session would
    with other_browser(creator.settings) as browser:
        assert log_in(browser, "maker").status_code == 303
        page = page_of(browser)
    assert figures(page)["today"] == money(NET)  # the earnings figures are right either way
    sales_chart = page[page.index("<strong>Sales</strong>"):page.index("<strong>Earned from sales</strong>")]
    today = datetime.now(UTC).date()
    assert re.findall(r"<title>([^<]*)</title>", sales_chart)[-1] == f"{today.strftime('%b %-d')}: 1"


# --- Who sees what --------------------------------------------------------------------------------------------

def test_an_anonymous_visitor_is_sent_to_log_in(client: TestClient):
    for path in ("/creator/payouts", "/creator/payouts?days=90", "/creator/payouts/connect/return"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=/creator/payouts")


def test_a_fan_without_a_creator_profile_is_told_to_start_selling(client: TestClient):
    sign_up(client, "justafan")
    response = client.get("/creator/payouts", follow_redirects=False)
    # me_creator refuses with 403 and a pointer to /sell (as every creator page does), rather than a redirect.
    assert response.status_code == 403
    assert "Start selling first" in response.text
    assert post_form(client, "/creator/payouts/connect", {}).status_code == 403


def test_a_creator_never_sees_another_creators_numbers(payouts: Payouts, rival_browser: TestClient):
    payouts.connect()
    payouts.sell()
    rival_id = payouts.db.execute("SELECT id FROM users WHERE username = 'rival'").fetchone()[0]
    payouts.db.execute(
        "INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, actor_id, key, memo) "
        "VALUES (%s, 'USD', 'adjustment', 123456, now(), %s, 'adjustment:rival', 'Rival bonus')", (rival_id, rival_id))

    mine = page_of(payouts.client)
    assert figures(mine)["all"] == money(NET)
    assert figures(mine)["on-hold"] == money(NET)
    assert money(123456) not in mine and "Rival bonus" not in mine

    theirs = page_of(rival_browser)
    assert figures(theirs) == {"today": money(0), "week": money(0), "month": money(0), "all": money(0),
                               "available": money(123456), "on-hold": money(0), "next": money(0)}
    assert money(NET) not in theirs and "Night Drive" not in theirs
    assert "Connect a payout account to get paid." in theirs  # the maker's account is not theirs either


# --- Views, plays and downloads -------------------------------------------------------------------------------

def test_views_plays_and_downloads_are_counted_and_charted(payouts: Payouts, settings: Settings):
    item = payouts.shop.item_id
    cached = settings.with_(page_cache_seconds=30)
    with other_browser(cached) as anonymous:
        for _ in range(3):
            assert anonymous.get(f"/i/{item}").status_code == 200
        hits = anonymous.app.state.metrics.registry.get_sample_value("fairshelf_page_cache_total", {"result": "hit"})
        assert hits == 2  # two of the three views were answered from the cache, and still counted
        assert anonymous.get(f"/i/{item}", headers={"HX-Request": "true"}).status_code == 200
        assert anonymous.get("/i/nosuchitem1").status_code == 404
        assert anonymous.get(f"/i/{'x' * 40}").status_code == 404
        flush_counts(anonymous)
        assert views_of(payouts.db, item) == (3, 0, 0)
        assert payouts.db.execute("SELECT count(*) FROM item_stats_daily").fetchone() == (1,)  # unknown ids dropped
        assert flush_counts(anonymous) == 0  # nothing is written twice

    owner = payouts.client
    for _ in range(2):
        assert owner.get(f"/i/{item}/stream", follow_redirects=False).status_code in (302, 303, 307)
    assert owner.get(f"/i/{item}/download", follow_redirects=False).status_code in (302, 303, 307)
    assert owner.get("/i/nosuchitem1/stream", follow_redirects=False).status_code == 404
    flush_counts(owner)
    views, plays, downloads = views_of(payouts.db, item)
    assert (views, plays, downloads) == (3, 2, 1)
    day = payouts.db.execute("SELECT day FROM item_stats_daily").fetchone()[0]
    assert day == datetime.now(UTC).date()

    charts = chart_totals(page_of(owner))
    assert charts["Views"] == (str(views), 30)
    assert charts["Plays and downloads"] == (str(plays + downloads), 30)


def test_head_requests_are_not_counted_as_views(payouts: Payouts, settings: Settings):
    item = payouts.shop.item_id
    with other_browser(settings.with_(page_cache_seconds=30)) as anonymous:
        assert anonymous.head(f"/i/{item}").status_code == 200
        assert anonymous.get(f"/i/{item}").status_code == 200
        flush_counts(anonymous)
    assert views_of(payouts.db, item) == (1, 0, 0)


def test_a_flush_of_unknown_items_reports_no_rows_written(settings: Settings, db: psycopg.Connection):
    counter = ItemCounter()
    counter.add("nosuchitem1", "views")
    counter.add("nosuchitem2", "plays")

    async def flush(sessionmaker) -> int:  # type: ignore[no-untyped-def]
        return await counter.flush(sessionmaker)

    written = run(settings, flush)
    assert db.execute("SELECT count(*) FROM item_stats_daily").fetchone() == (0,)
    assert written == 0


# --- Connecting a payout account ------------------------------------------------------------------------------

def test_connecting_a_payout_account_through_the_development_onboarding(bare: Payouts, db: psycopg.Connection):
    started = post_form(bare.client, "/creator/payouts/connect", {})
    assert started.status_code == 303
    link = urlsplit(started.headers["location"])
    assert (link.scheme, link.netloc) == ("http", "testserver.local") and link.path.startswith("/dev/connect/")
    accounts_made = db.execute("SELECT creator_id, stripe_account_id, payouts_enabled FROM payout_accounts").fetchall()
    assert [(c, ready) for c, _, ready in accounts_made] == [(bare.creator_id, False)]
    account_id = accounts_made[0][1]
    assert account_id.startswith("acct_dev_")
    again = post_form(bare.client, "/creator/payouts/connect", {})  # a double click: the same account
    assert again.status_code == 303
    assert db.execute("SELECT stripe_account_id FROM payout_accounts").fetchall() == [(account_id,)]

    onboarding = bare.client.get(link.path)
    assert onboarding.status_code == 200
    assert account_id in onboarding.text and "Complete onboarding" in onboarding.text
    assert onboarding.headers["cache-control"] == "no-store"
    assert bare.client.get("/dev/connect/not-a-real-token").status_code == 404
    assert post_form(bare.client, "/dev/connect/not-a-real-token", {"action": "complete"}).status_code == 404
    assert post_form(bare.client, link.path, {"action": "everything"}).status_code == 422
    assert db.execute("SELECT count(*) FROM payment_events").fetchone() == (0,)  # nothing was sent

    refreshed = bare.client.get("/creator/payouts/connect/refresh", follow_redirects=False)
    assert refreshed.status_code == 303 and urlsplit(refreshed.headers["location"]).path.startswith("/dev/connect/")

    # The page's buttons make the processor POST account.updated to the Connect endpoint: delivered here instead.
    bare.account_event(account_id, ready=False)
    back = bare.client.get("/creator/payouts/connect/return", follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/creator/payouts"
    page = page_of(bare.client)
    not_ready = flashes(page)
    assert len(not_ready) == 1 and "ready:" not in not_ready[0]
    assert "Continue setup at Stripe" in page
    assert flashes(page_of(bare.client)) == []  # shown once

    bare.account_event(account_id, ready=True, created=int(time.time()) + 1)
    back = bare.client.get("/creator/payouts/connect/return", follow_redirects=False)
    assert back.status_code == 303
    page = page_of(bare.client)
    assert flashes(page) == ["Your payout account is ready: you will be paid with the next payout."]
    assert "Manage at Stripe" in page
    assert db.execute("SELECT payouts_enabled, details_submitted, currently_due FROM payout_accounts").fetchone() \
        == (True, True, [])


def test_account_updated_for_an_unknown_account_is_ignored(client: TestClient, settings: Settings,
                                                          db: psycopg.Connection):
    payload = stripe_events.connect_event("account.updated", stripe_events.account("acct_nobody", ready=True),
                                          "acct_nobody")
    assert stripe_events.deliver(client, payload, settings.connect_webhook_secret, path=CONNECT).status_code == 200
    run_jobs(settings)
    assert db.execute("SELECT state FROM payment_events WHERE stripe_id = %s", (payload["id"],)).fetchone() \
        == ("ignored",)
    assert db.execute("SELECT count(*) FROM payout_accounts").fetchone() == (0,)


def test_an_older_account_updated_does_not_override_a_newer_one(bare: Payouts, db: psycopg.Connection):
    account_id = bare.connect(ready=True)
    now = int(time.time())
    older = bare.account_event(account_id, ready=False, created=now - 3600)  # arrives late
    assert db.execute("SELECT state FROM payment_events WHERE stripe_id = %s", (older["id"],)).fetchone() \
        == ("processed",)
    assert db.execute("SELECT payouts_enabled, currently_due FROM payout_accounts").fetchone() == (True, [])
    assert "Manage at Stripe" in page_of(bare.client)

    bare.account_event(account_id, ready=False, created=now + 60)  # a newer one does
    assert db.execute("SELECT payouts_enabled, currently_due FROM payout_accounts").fetchone() \
        == (False, ["external_account"])
    assert "Continue setup at Stripe" in page_of(bare.client)


def test_a_connect_event_signed_with_the_wrong_secret_is_refused(client: TestClient, db: psycopg.Connection):
    payload = stripe_events.connect_event("account.updated", stripe_events.account("acct_x", ready=True), "acct_x")
    response = stripe_events.deliver(client, payload, "whsec_not_ours_0123456789", path=CONNECT)
    assert response.status_code == 400
    assert db.execute("SELECT count(*) FROM payment_events").fetchone() == (0,)


def test_the_connect_endpoint_may_have_a_secret_of_its_own(database_url: str, tmp_path: Path, db: psycopg.Connection):
    own = "whsec_connect_only_0123456789abcdef"
    settings = make_settings(database_url, var_dir=tmp_path / "var", stripe_connect_webhook_secret=own)
    assert settings.connect_webhook_secret == own != settings.webhook_secret

    def account_event() -> dict:
        return stripe_events.connect_event("account.updated", stripe_events.account("acct_x", ready=True), "acct_x")

    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        assert stripe_events.deliver(client, account_event(), own, path=CONNECT).status_code == 200
        assert stripe_events.deliver(client, account_event(), settings.webhook_secret, path=CONNECT) \
            .status_code == 400
        assert stripe_events.deliver(client, stripe_events.unrelated_completion(), own).status_code == 400
        assert stripe_events.deliver(client, stripe_events.unrelated_completion(), settings.webhook_secret) \
            .status_code == 200
    assert db.execute("SELECT type FROM payment_events ORDER BY id").fetchall() == [
        ("account.updated",), ("checkout.session.completed",)]


# --- The development clock ------------------------------------------------------------------------------------

def test_the_development_clock_moves_ahead_runs_the_scheduler_and_resets(creator: CreatorSetup,
                                                                         db: psycopg.Connection):
    client = creator.client
    day = "%A %-d %B %Y"
    page = page_of(client, "/dev/clock")
    assert figures(page)["clock"].startswith(datetime.now(UTC).strftime(day))

    moved = post_form(client, "/dev/clock", {"days": "8", "action": "advance"})
    assert moved.status_code == 303 and moved.headers["location"] == "/dev/clock"
    assert db.execute("SELECT offset_seconds FROM dev_clock").fetchall() == [(8 * 86400,)]
    assert db.execute("SELECT payload FROM jobs WHERE kind = 'payouts.schedule' AND state = 'queued'").fetchall() \
        == [({},)]
    page = page_of(client, "/dev/clock")
    assert "The clock moved 8 days ahead" in page
    assert figures(page)["clock"].startswith((datetime.now(UTC) + timedelta(days=8)).strftime(day))
    run_jobs(creator.settings)
    assert db.execute("SELECT count(*) FROM payout_runs").fetchone() == (1,)

    for days in ("0", "abc", "61", "-3", ""):
        refused = post_form(client, "/dev/clock", {"days": days, "action": "advance"})
        assert refused.status_code == 422, days
    assert db.execute("SELECT offset_seconds FROM dev_clock").fetchall() == [(8 * 86400,)]

    reset = post_form(client, "/dev/clock", {"action": "reset"})
    assert reset.status_code == 303
    assert db.execute("SELECT count(*) FROM dev_clock").fetchone() == (0,)
    page = page_of(client, "/dev/clock")
    assert "The clock is back to real time." in page
    assert figures(page)["clock"].startswith(datetime.now(UTC).strftime(day))
