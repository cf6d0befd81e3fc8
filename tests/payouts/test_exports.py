"""CSV exports of a creator's sales, payouts and ledger over HTTP: what the database holds, exact decimal amounts,
cells a spreadsheet will not run as formulas, only the signed-in creator's rows, and a 100,000-row ledger streamed
in pieces rather than built in memory."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from app.settings import Settings
from tests.catalog.conftest import CreatorSetup, become_creator, other_browser
from tests.discovery.conftest import add_item
from tests.payouts.conftest import Payouts
from tests.payouts.page_helpers import refund

FORMULA_TITLE = '=HYPERLINK("http://evil.example","Free money")'
SALES = ["order", "created", "paid", "item", "buyer_email", "amount", "currency", "state", "refunded",
         "processor_fee", "net"]
PAYOUTS = ["payout", "created", "state", "amount", "currency", "paid", "transfer", "reversed", "attempts", "reason"]
LEDGER = ["entry", "created", "kind", "amount", "gross", "currency", "available", "memo", "order", "item", "payout"]


def dollars(cents: int | None) -> str:
    return "" if cents is None else str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def when(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def export(client: TestClient, name: str) -> list[list[str]]:
    response = client.get(f"/creator/payouts/export/{name}.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="fairshelf-{name}.csv"'
    assert "no-store" in response.headers["cache-control"]
    return list(csv.reader(io.StringIO(response.text)))


def same_instant(shown: str, expected: datetime | None) -> bool:
    return (expected is None and shown == "") or datetime.fromisoformat(shown) == expected


@pytest.fixture
def rival(settings: Settings, db: psycopg.Connection) -> Iterator[tuple[TestClient, str]]:
    """Another creator with a paid order and a ledger entry of their own; yields their browser and order id."""
    with other_browser(settings) as browser:
        become_creator(browser, "rival")
        rival_id = db.execute("SELECT id FROM users WHERE username = 'rival'").fetchone()[0]
        item = add_item(db, rival_id, "Rival Record", price_mode="fixed", price_cents=900)
        db.execute("INSERT INTO orders (public_id, item_id, creator_id, buyer_email, amount_cents, currency, state, "
                   "paid_at) SELECT 'rivalorder01', id, creator_id, 'someone@example.com', 900, 'USD', 'paid', now() "
                   "FROM items WHERE public_id = %s", (item,))
        db.execute("INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, order_id, "
                   "key, gross_cents) SELECT creator_id, 'USD', 'sale', 844, now(), id, 'sale:' || id, 900 "
                   "FROM orders WHERE public_id = 'rivalorder01'")
        yield browser, "rivalorder01"


def test_the_exports_are_what_the_database_holds(payouts: Payouts, db: psycopg.Connection):
    payouts.connect()
    db.execute("UPDATE items SET title = %s WHERE public_id = %s", (FORMULA_TITLE, payouts.shop.item_id))
    orders = [payouts.sell() for _ in range(4)]
    refund(payouts, orders[1], 499)  # in full
    refund(payouts, orders[2], 100)
    payouts.advance(8)
    payouts.run_scheduler()
    paid = 4 * (499 - 44) - 499 - 100
    assert payouts.payouts() == [("paid", paid)]
    db.execute("INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, actor_id, key, "
               "memo) VALUES (%(c)s, 'USD', 'adjustment', -150, now(), %(c)s, 'adjustment:test', '=1+2')",
               {"c": payouts.creator_id})
    client = payouts.client

    sales = export(client, "sales")
    assert sales[0] == SALES
    rows = db.execute("SELECT o.public_id, o.created_at, o.paid_at, o.buyer_email, o.amount_cents, o.state, "
                      "o.amount_refunded_cents, l.gross_cents - l.amount_cents, l.amount_cents FROM orders o "
                      "JOIN ledger_entries l ON l.order_id = o.id AND l.kind = 'sale' ORDER BY o.id").fetchall()
    assert [r[0] for r in rows] == orders
    assert len(sales) == 1 + len(rows)
    for line, (order, created, paid_at, email, amount, state, refunded, fee, net) in zip(sales[1:], rows,
                                                                                          strict=True):
        assert line[0] == order and line[3] == "'" + FORMULA_TITLE and line[4] == email
        assert same_instant(line[1], created) and same_instant(line[2], paid_at)
        assert line[5:] == [dollars(amount), "USD", state, dollars(refunded), dollars(fee), dollars(net)]
    assert [line[5:] for line in sales[1:]] == [
        ["4.99", "USD", "paid", "0.00", "0.44", "4.55"], ["4.99", "USD", "refunded", "4.99", "0.44", "4.55"],
        ["4.99", "USD", "paid", "1.00", "0.44", "4.55"], ["4.99", "USD", "paid", "0.00", "0.44", "4.55"]]

    ledger = export(client, "ledger")
    assert ledger[0] == LEDGER
    entries = db.execute(
        "SELECT l.id, l.created_at, l.kind, l.amount_cents, l.gross_cents, l.currency, l.available_at, l.memo, "
        "o.public_id, p.public_id FROM ledger_entries l LEFT JOIN orders o ON o.id = l.order_id "
        "LEFT JOIN payouts p ON p.id = l.payout_id WHERE l.creator_id = %s ORDER BY l.id",
        (payouts.creator_id,)).fetchall()
    assert len(ledger) == 1 + len(entries) == 1 + 4 + 2 + 1 + 1
    for line, (pk, created, kind, amount, gross, currency, available, memo, order, payout) in zip(
            ledger[1:], entries, strict=True):
        assert line[0] == str(pk) and line[2] == kind and line[5] == currency
        assert (line[3], line[4]) == (dollars(amount), dollars(gross))
        assert same_instant(line[1], created) and same_instant(line[6], available)
        assert line[8] == (order or "") and line[10] == (payout or "")
        assert line[9] == ("'" + FORMULA_TITLE if order else "")
        assert line[7] == ("'" + memo if memo[:1] in "=+-@" and memo else memo)
    assert [(line[2], line[3], line[4]) for line in ledger[1:]] == [
        ("sale", "4.55", "4.99")] * 4 + [("refund", "-4.99", ""), ("refund", "-1.00", ""),
                                         ("payout", f"-{dollars(paid)}", ""), ("adjustment", "-1.50", "")]
    assert ledger[-1][7] == "'=1+2"  # the memo, formula-safe

    payout_rows = export(client, "payouts")
    assert payout_rows[0] == PAYOUTS
    public_id, created, paid_at, transfer, attempts = db.execute(
        "SELECT public_id, created_at, paid_at, transfer_id, attempts FROM payouts").fetchone()
    [line] = payout_rows[1:]
    assert line[0] == public_id and line[2:5] == ["paid", dollars(paid), "USD"] and line[6] == transfer
    assert same_instant(line[1], created) and same_instant(line[5], paid_at)
    assert line[7:] == ["0.00", str(attempts), ""]


def test_unknown_exports_are_not_found(creator: CreatorSetup):
    for path in ("refunds.csv", "sales", "sales.txt", "ledger.csv.csv", ".csv", "SALES.csv"):
        assert creator.client.get(f"/creator/payouts/export/{path}").status_code == 404, path


def test_an_anonymous_visitor_is_sent_to_log_in(client: TestClient):
    for name in ("sales", "payouts", "ledger"):
        response = client.get(f"/creator/payouts/export/{name}.csv", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next=/creator/payouts/export/{name}.csv"


def test_another_creators_rows_never_appear(payouts: Payouts, rival: tuple[TestClient, str],
                                            db: psycopg.Connection):
    rival_browser, rival_order = rival
    payouts.connect()
    mine = payouts.sell()
    for name in ("sales", "ledger", "payouts"):
        text = payouts.client.get(f"/creator/payouts/export/{name}.csv").text
        assert rival_order not in text and "Rival Record" not in text and "8.44" not in text
    assert [line[0] for line in export(payouts.client, "sales")[1:]] == [mine]

    theirs_sales = export(rival_browser, "sales")
    assert [line[0] for line in theirs_sales[1:]] == [rival_order]
    theirs_ledger = export(rival_browser, "ledger")
    assert [(line[2], line[3], line[8], line[9]) for line in theirs_ledger[1:]] == [
        ("sale", "8.44", rival_order, "Rival Record")]
    assert export(rival_browser, "payouts") == [PAYOUTS]
    for text in (str(theirs_sales), str(theirs_ledger)):
        assert mine not in text and "Night Drive" not in text


# --- A large export streams ------------------------------------------------------------------------------------

ROWS = 100_000


def get_raw(client: TestClient, path: str) -> list[dict[str, Any]]:
    """GET `path` from the browser's app as an ASGI server would, keeping every message the app sends (the test
    client joins a streamed body into one piece)."""
    request = client.build_request("GET", path)
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("testserver.local", 80), "extensions": {},
    }
    messages: list[dict[str, Any]] = []

    async def call() -> None:
        done = asyncio.Event()
        asked = 0

        async def receive() -> dict[str, Any]:
            nonlocal asked
            asked += 1
            if asked == 1:
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done.set()

        await client.app(scope, receive, send)

    client.blocking_portal.call(call)
    return messages


def test_a_100000_row_ledger_export_streams_every_entry_once_in_order(creator: CreatorSetup, db: psycopg.Connection):
    creator_id = db.execute("SELECT user_id FROM creators").fetchone()[0]
    db.execute("INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, actor_id, key, memo) "
               "SELECT %(c)s, 'USD', 'adjustment', CASE WHEN g %% 2 = 0 THEN g ELSE -g END, now(), %(c)s, "
               "'adjustment:bulk:' || g, 'bulk ' || g FROM generate_series(1, %(n)s) g", {"c": creator_id, "n": ROWS})
    ids = [r[0] for r in db.execute("SELECT id FROM ledger_entries ORDER BY id")]
    assert len(ids) == ROWS

    messages = get_raw(creator.client, "/creator/payouts/export/ledger.csv")
    start = messages[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert headers["content-type"].startswith("text/csv")
    assert headers["content-disposition"] == 'attachment; filename="fairshelf-ledger.csv"'
    bodies = [m for m in messages[1:] if m["type"] == "http.response.body"]
    chunks = [m["body"] for m in bodies if m.get("body")]
    assert len(chunks) > 1  # sent in pieces as the rows are read, not as one body
    assert bodies[0].get("more_body") is True and bodies[-1].get("more_body", False) is False
    assert max(len(chunk) for chunk in chunks) < len(b"".join(chunks)) // 10

    text = b"".join(chunks).decode()
    assert len(text.splitlines()) == ROWS + 1
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == LEDGER
    exported = [int(line[0]) for line in lines[1:]]
    assert exported == ids  # every entry once, in id order
    assert lines[1][2:4] == ["adjustment", "-0.01"] and lines[2][3] == "0.02"
    assert lines[-1][3] == dollars(ROWS) and lines[-1][7] == f"bulk {ROWS}"
