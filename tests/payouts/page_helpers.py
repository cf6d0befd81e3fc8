"""Reading the earnings page back (its figures and charts), refunds as the processor reports them, writing a
browser's view counters, and the payout clock as the app reads it."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import psycopg
from litestar.testing import TestClient

from tests.catalog.conftest import run_jobs
from tests.checkout import stripe_events
from tests.checkout.conftest import order_row
from tests.payouts.conftest import Payouts

FIGURE = re.compile(r'data-figure="([\w-]+)">([^<]*)<')
CAPTION = re.compile(r"<figcaption>\s*<strong>([^<]+)</strong>(.*?)</figcaption>", re.S)
CAPTION_TOTAL = re.compile(r"([^\s·]+) in (\d+) days")
BAR = '<rect class="chart-bar"'


def page_of(client: TestClient, path: str = "/creator/payouts") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.text


def figures(page: str) -> dict[str, str]:
    """The page's figures by name ("today", "week", "month", "all", "available", "on-hold", "next")."""
    return {name: html.unescape(value).strip() for name, value in FIGURE.findall(page)}


def chart_totals(page: str) -> dict[str, tuple[str, int]]:
    """Each chart's total as shown, and the number of days it covers, by title."""
    totals = {}
    for title, rest in CAPTION.findall(page):
        found = CAPTION_TOTAL.search(html.unescape(re.sub(r"<[^>]+>", " ", rest)))
        assert found, rest
        totals[html.unescape(title)] = (found[1], int(found[2]))
    return totals


def bars(page: str) -> int:
    return page.count(BAR)


def refund(payouts: Payouts, order_id: str, refunded_total: int) -> None:
    """charge.refunded for an order (the cumulative amount refunded so far), delivered and processed."""
    order = order_row(payouts.db, order_id)
    payload = stripe_events.event("charge.refunded", stripe_events.charge(
        order_id, order["amount_cents"], payment_intent=order["payment_intent_id"], refunded=refunded_total))
    assert stripe_events.deliver(payouts.client, payload, payouts.settings.webhook_secret).status_code == 200
    run_jobs(payouts.settings)


def flush_counts(client: TestClient) -> int:
    """Write the views, plays and downloads the browser's app counted so far (its background task would)."""
    state = client.app.state
    return client.blocking_portal.call(state.item_counter.flush, state.sessionmaker)


def clock_now(db: psycopg.Connection) -> datetime:
    offset = db.execute("SELECT COALESCE((SELECT offset_seconds FROM dev_clock), 0)").fetchone()[0]
    return datetime.now(UTC) + timedelta(seconds=offset)
