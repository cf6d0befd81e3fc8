"""The payout queue against Stripe: the app's StripeGateway over the official client, talking to the local fake of
Stripe's API (tests/checkout/fake_stripe.py), which records every request. Payouts are made by the real scheduler
and sent by the real worker; the rules money depends on are checked where they live, in the database."""

from __future__ import annotations

import dataclasses
import secrets

import httpx
import psycopg
import pytest

from tests.checkout import stripe_events
from tests.checkout.conftest import STRIPE_SECRET_KEY
from tests.checkout.fake_stripe import standard_fee
from tests.payouts.conftest import StripePayouts
from tests.payouts.stripe_helpers import (
    ALLOWED,
    NET,
    SALE,
    STATES,
    TRANSFERS,
    due_for_payout,
    emails_to,
    insert_creator,
    insert_payout,
    release_into_faults,
)

pytestmark = pytest.mark.usefixtures("quick_retries")

# --- Sending a payout


def test_a_payout_is_one_transfer_to_the_connected_account_with_its_idempotency_key(stripe_payouts, fake_stripe, db):
    p = stripe_payouts
    account = p.connect()
    p.pay_what_you_want()
    order_id = p.sell(SALE)
    fee_lookup = fake_stripe.last("GET", f"/v1/payment_intents/pi_{order_id}")
    assert fee_lookup.query_params()["expand"] == ["latest_charge.balance_transaction"]
    assert p.entries() == [("sale", NET)]
    assert db.execute("SELECT gross_cents FROM ledger_entries WHERE kind = 'sale'").fetchone() == (2000,)

    p.run_scheduler()
    assert p.payouts() == [] and fake_stripe.received("POST", TRANSFERS) == []  # still on hold

    p.advance(8)
    p.run_scheduler()
    payout = p.payout()
    assert (payout["state"], payout["amount_cents"], payout["attempts"]) == ("paid", NET, 1)
    assert payout["destination"] == account and payout["paid_at"] is not None and payout["last_error"] == ""
    assert payout["idempotency_key"] == f"payout-{payout['public_id']}"

    [sent] = fake_stripe.received("POST", TRANSFERS)
    assert sent.status == 200 and not sent.replayed and sent.response is not None
    assert sent.form == {"amount": str(NET), "currency": "usd", "destination": account,
                         "transfer_group": payout["public_id"],
                         "description": f"Fairshelf payout {payout['public_id']}",
                         "metadata[payout_id]": payout["public_id"]}
    assert sent.idempotency_key == payout["idempotency_key"]
    assert sent.authorization == f"Bearer {STRIPE_SECRET_KEY}"
    assert payout["transfer_id"] == sent.response["id"]
    transfer = fake_stripe.transfers[payout["transfer_id"]]
    assert (transfer["amount"], transfer["destination"], transfer["currency"]) == (NET, account, "usd")
    assert p.entries() == [("sale", NET), ("payout", -NET)]
    assert p.balance() == (0, 0)

    p.run_scheduler()  # the same period: nothing more
    p.send()  # nothing is due: no call
    assert len(fake_stripe.received("POST", TRANSFERS)) == 1 and len(fake_stripe.transfers) == 1
    assert p.payouts() == [("paid", NET)]


# --- What the database refuses, whatever code runs


def move(db: psycopg.Connection, creator_id: int, old: str, new: str) -> str | None:
    """Try to move a fresh payout from `old` to `new` (rolled back either way): None when the database allowed
    it, else its error."""
    with db.transaction(force_rollback=True):
        payout = insert_payout(db, creator_id, old)
        try:
            with db.transaction():
                if new == "paid":  # with what a paid payout needs, so that only the transition is in question
                    db.execute("UPDATE payouts SET state = 'paid', transfer_id = COALESCE(transfer_id, 'tr_moved'), "
                               "paid_at = COALESCE(paid_at, now()) WHERE id = %s", (payout,))
                else:
                    db.execute("UPDATE payouts SET state = %s WHERE id = %s", (new, payout))
        except psycopg.errors.CheckViolation as exc:
            return str(exc)
    return None


def test_payouts_move_only_along_the_state_machine(database_url, db):
    creator = insert_creator(db)
    refused = {}
    for old in STATES:
        for new in STATES:
            if old != new:
                error = move(db, creator, old, new)
                if error is not None:
                    refused[old, new] = error
    assert {(o, n) for o in STATES for n in STATES if o != n} - set(refused) == ALLOWED
    for (old, new), error in refused.items():
        assert f"cannot go from {old} to {new}" in error
    for pair in (("paid", "scheduled"), ("failed", "paid"), ("canceled", "scheduled"), ("processing", "canceled"),
                 ("scheduled", "paid"), ("paid", "processing"), ("failed", "scheduled")):
        assert pair in refused


@pytest.mark.parametrize("state", ["paid", "failed", "canceled"])
def test_a_final_payout_keeps_its_amount_and_transfer(database_url, db, state):
    creator = insert_creator(db)
    payout = insert_payout(db, creator, state)
    changes = ["amount_cents = amount_cents + 1", "amount_cents = 1", "transfer_id = 'tr_other'"]
    for change in changes + (["transfer_id = NULL"] if state == "paid" else []):
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute(f"UPDATE payouts SET {change} WHERE id = %s", (payout,))
    before = db.execute("SELECT amount_cents, transfer_id, state FROM payouts WHERE id = %s", (payout,)).fetchone()
    assert before[0] == 1000 and before[2] == state
    # What may still change on a paid payout: money Stripe reversed later, and notes for the admin.
    db.execute("UPDATE payouts SET amount_reversed_cents = 100, last_error = 'noted' WHERE id = %s", (payout,))


def test_the_ledger_is_append_only_and_a_payout_never_takes_more_than_is_available(database_url, db):
    creator = insert_creator(db)
    credit = db.execute(
        "INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, actor_id, key, memo) "
        "VALUES (%s, 'USD', 'adjustment', 1000, now(), %s, 'adjustment:a1', 'opening') RETURNING id",
        (creator, creator)).fetchone()[0]
    db.execute(  # money on hold until tomorrow does not count
        "INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, actor_id, key, memo) "
        "VALUES (%s, 'USD', 'adjustment', 5000, now() + interval '1 day', %s, 'adjustment:a2', 'later')",
        (creator, creator))
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        db.execute("UPDATE ledger_entries SET amount_cents = 2000 WHERE id = %s", (credit,))
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        db.execute("DELETE FROM ledger_entries WHERE id = %s", (credit,))

    too_much = insert_payout(db, creator, "scheduled", 1500)
    with pytest.raises(psycopg.errors.CheckViolation, match="exceeds the available balance"):
        db.execute("INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, payout_id, "
                   "key) VALUES (%s, 'USD', 'payout', -1500, now(), %s, 'payout:x')", (creator, too_much))
    db.execute("UPDATE payouts SET state = 'canceled' WHERE id = %s", (too_much,))
    enough = insert_payout(db, creator, "scheduled", 1000)
    db.execute("INSERT INTO ledger_entries (creator_id, currency, kind, amount_cents, available_at, payout_id, key) "
               "VALUES (%s, 'USD', 'payout', -1000, now(), %s, 'payout:y')", (creator, enough))
    assert db.execute("SELECT sum(amount_cents), count(*) FROM ledger_entries").fetchone() == (5000, 3)


def test_a_creator_has_at_most_one_open_payout(database_url, db):
    creator = insert_creator(db)
    first = insert_payout(db, creator, "scheduled")
    for state in ("scheduled", "processing"):
        with pytest.raises(psycopg.errors.UniqueViolation):
            insert_payout(db, creator, state)
    insert_payout(db, creator, "failed")  # closed ones do not count
    db.execute("UPDATE payouts SET state = 'processing' WHERE id = %s", (first,))
    with pytest.raises(psycopg.errors.UniqueViolation):
        insert_payout(db, creator, "scheduled")
    db.execute("UPDATE payouts SET state = 'paid', transfer_id = 'tr_1', paid_at = now() WHERE id = %s", (first,))
    insert_payout(db, creator, "scheduled")
    insert_payout(db, insert_creator(db, "shelf_two"), "scheduled")  # another creator's is their own


# --- When Stripe fails


@pytest.mark.parametrize(("fault", "base"), [(500, 60), ("close", 60), (429, 240)])
def test_a_retryable_failure_waits_then_retries_with_the_same_key_and_pays_once(stripe_payouts, fake_stripe, fault,
                                                                                 base):
    p = stripe_payouts
    due_for_payout(p)
    # The client library retries a 500 or a dropped connection twice itself; a rate limit it leaves to us.
    fake_stripe.fail_next(1 if fault == 429 else 3, fault)
    p.run_scheduler()
    payout = p.payout()
    assert (payout["state"], payout["attempts"], payout["transfer_id"]) == ("scheduled", 1, None)
    assert payout["last_error"] != "" and payout["locked_by"] is None
    if fault == 429:
        assert "Too many requests" in payout["last_error"]
    # Back-off: a minute after the first failure (±20 %), four times as long when Stripe asked us to slow down.
    wait = p.seconds_until_due()
    assert 0.8 * base - 2 <= wait <= 1.2 * base
    if fault == 429:
        assert wait > 1.2 * 60
    tried = fake_stripe.received("POST", TRANSFERS)
    assert [r.status for r in tried] == ([429] if fault == 429 else [500 if fault == 500 else None] * 3)
    assert fake_stripe.transfers == {}
    page = p.client.get("/creator/payouts").text
    assert "we try again automatically" in page

    p.send()  # not due yet
    assert len(fake_stripe.received("POST", TRANSFERS)) == len(tried)

    p.make_due()
    p.send()
    payout = p.payout()
    assert (payout["state"], payout["attempts"], payout["last_error"]) == ("paid", 2, "")
    sent = fake_stripe.received("POST", TRANSFERS)
    assert len(sent) == len(tried) + 1
    assert {r.idempotency_key for r in sent} == {payout["idempotency_key"]}
    assert all(r.pairs == sent[0].pairs for r in sent)
    [made] = fake_stripe.transfers_created()
    assert made.response is not None and payout["transfer_id"] == made.response["id"]
    assert list(fake_stripe.transfers) == [payout["transfer_id"]]
    assert p.entries() == [("sale", NET), ("payout", -NET)]


def test_an_account_stripe_refuses_fails_the_payout_returns_the_money_and_tells_the_creator(stripe_payouts,
                                                                                           fake_stripe, db):
    p = stripe_payouts
    account = due_for_payout(p)
    # Stripe restricted the account (its bank account is past due); the account.updated event is not here yet.
    p.onboard(account, ready=False, tell=False)
    p.run_scheduler()

    [sent] = fake_stripe.received("POST", TRANSFERS)
    assert sent.status == 400 and sent.response is not None
    assert sent.response["error"]["code"] == "insufficient_capabilities_for_transfer"
    payout = p.payout()
    assert (payout["state"], payout["attempts"], payout["transfer_id"]) == ("failed", 1, None)
    assert payout["failed_at"] is not None
    assert "insufficient_capabilities_for_transfer" in payout["last_error"]  # for the admin
    reason = payout["failure_reason"]  # for the creator: what to do
    assert "payout account cannot receive transfers" in reason and "payout settings" in reason
    assert p.entries() == [("sale", NET), ("payout", -NET), ("payout_reversal", NET)]
    assert db.execute("SELECT memo, payout_id FROM ledger_entries WHERE kind = 'payout_reversal'").fetchone() == \
        (reason, payout["id"])
    assert p.balance() == (NET, NET)
    [email] = emails_to(db, "maker@example.com", "payout_failed")
    assert payout["public_id"] in email and reason in email and "$19.12" in email
    assert reason in p.client.get("/creator/payouts").text

    p.run_scheduler()  # the same period: not tried again
    assert p.payouts() == [("failed", NET)]

    # The creator adds a bank account; the next period's run pays the money that came back.
    p.onboard(account, ready=True)
    p.advance(7)
    p.run_scheduler()
    assert p.payouts() == [("failed", NET), ("paid", NET)]
    first, second = fake_stripe.received("POST", TRANSFERS)
    assert first.idempotency_key != second.idempotency_key and second.status == 200
    assert len(fake_stripe.transfers) == 1 and p.balance() == (0, 0)
    assert len(emails_to(db, "maker@example.com", "payout_failed")) == 1


@pytest.fixture
def patient(stripe_payouts: StripePayouts) -> StripePayouts:
    """The Stripe driver whose worker gives a payout up after two attempts."""
    shop = dataclasses.replace(stripe_payouts.shop,
                               settings=stripe_payouts.settings.with_(payout_max_attempts=2))
    return dataclasses.replace(stripe_payouts, shop=shop)


def test_retries_exhausted_with_no_transfer_at_stripe_fail_and_return_the_money(patient, fake_stripe, db):
    p = patient
    due_for_payout(p)
    fake_stripe.fail_next(3, 500)
    p.run_scheduler()
    assert p.payout()["state"] == "scheduled"
    p.make_due()
    fake_stripe.fail_next(3, 500)
    p.send()

    payout = p.payout()
    assert (payout["state"], payout["attempts"], payout["transfer_id"]) == ("failed", 2, None)
    assert "several attempts" in payout["failure_reason"] and payout["last_error"] != ""
    # Before giving up it asked Stripe whether one of the unanswered calls made a transfer after all.
    lookup = fake_stripe.last("GET", TRANSFERS)
    assert lookup.query == {"transfer_group": payout["public_id"], "limit": "1"} and lookup.status == 200
    after = fake_stripe.requests[fake_stripe.requests.index(lookup) + 1:]
    assert [r for r in after if r.path == TRANSFERS] == []
    assert len(fake_stripe.received("POST", TRANSFERS)) == 6 and fake_stripe.transfers == {}
    assert p.entries() == [("sale", NET), ("payout", -NET), ("payout_reversal", NET)]
    assert p.balance() == (NET, NET)
    assert len(emails_to(db, "maker@example.com", "payout_failed")) == 1


def test_retries_exhausted_after_stripe_made_the_transfer_record_it_as_paid(patient, fake_stripe, db):
    p = patient
    account = due_for_payout(p)
    fake_stripe.fail_next(3, 500)
    p.run_scheduler()
    p.make_due()
    # The last attempt reaches Stripe, which makes the transfer; its answer is lost and the retries fail.
    held = fake_stripe.hold_after("POST", TRANSFERS)
    release_into_faults(fake_stripe, held, 2)
    p.send()

    assert held.record is not None and held.record.response is not None
    made = held.record.response["id"]
    payout = p.payout()
    assert (payout["state"], payout["attempts"], payout["transfer_id"]) == ("paid", 2, made)
    posts = fake_stripe.received("POST", TRANSFERS)
    assert [r.status for r in posts] == [500, 500, 500, None, 500, 500]
    assert {r.idempotency_key for r in posts} == {payout["idempotency_key"]}
    lookup = fake_stripe.last("GET", TRANSFERS)
    assert lookup.query["transfer_group"] == payout["public_id"]
    after = fake_stripe.requests[fake_stripe.requests.index(lookup) + 1:]
    assert [r for r in after if r.method == "POST" and r.path == TRANSFERS] == []  # no second POST
    assert [r.response["id"] for r in fake_stripe.transfers_created() if r.response] == [made]
    assert list(fake_stripe.transfers) == [made] and fake_stripe.transfers[made]["destination"] == account
    assert p.entries() == [("sale", NET), ("payout", -NET)]
    assert emails_to(db, "maker@example.com", "payout_failed") == []


@pytest.mark.parametrize("at_stripe", [True, False], ids=["transfer-exists", "nothing-there"])
def test_a_payout_first_tried_over_a_day_ago_looks_for_its_transfer_before_sending(stripe_payouts, fake_stripe, db,
                                                                                  at_stripe):
    p = stripe_payouts
    account = due_for_payout(p)
    fake_stripe.fail_next(3, 500)
    p.run_scheduler()
    payout = p.payout()
    assert payout["state"] == "scheduled"
    existing = None
    if at_stripe:
        # An earlier attempt made the transfer; a day on, Stripe no longer knows the payout's idempotency key, so
        # sending again would make a second one (the fake: a request without that key).
        with httpx.Client(base_url=fake_stripe.url) as http:
            response = http.post(TRANSFERS, headers={"Authorization": f"Bearer {STRIPE_SECRET_KEY}"}, data={
                "amount": str(NET), "currency": "usd", "destination": account,
                "transfer_group": payout["public_id"], "metadata[payout_id]": payout["public_id"]})
        assert response.status_code == 200
        existing = response.json()["id"]
    db.execute("UPDATE payouts SET first_attempt_at = now() - interval '25 hours', next_attempt_at = now() "
               "WHERE id = %s", (payout["id"],))
    posts_before = len(fake_stripe.received("POST", TRANSFERS))
    p.send()

    payout = p.payout()
    assert payout["state"] == "paid" and payout["attempts"] == 2
    lookup = fake_stripe.last("GET", TRANSFERS)
    assert lookup.query["transfer_group"] == payout["public_id"]
    posts = fake_stripe.received("POST", TRANSFERS)[posts_before:]
    if at_stripe:
        assert payout["transfer_id"] == existing
        assert posts == []  # found and recorded, not sent again
        assert list(fake_stripe.transfers) == [existing]
    else:
        [sent] = posts
        assert sent.status == 200 and sent.idempotency_key == payout["idempotency_key"]
        assert fake_stripe.requests.index(lookup) < fake_stripe.requests.index(sent)
        assert list(fake_stripe.transfers) == [payout["transfer_id"]]
    assert p.entries() == [("sale", NET), ("payout", -NET)]


# --- What Stripe reports later


def reversed_event(payout: dict, account: str, amount_reversed: int, event_type: str = "transfer.reversed") -> dict:
    return stripe_events.event(event_type, stripe_events.transfer(
        payout["transfer_id"], payout_id=payout["public_id"], amount=payout["amount_cents"], destination=account,
        reversed_amount=amount_reversed))


def event_state(db: psycopg.Connection, payload: dict) -> str:
    return db.execute("SELECT state FROM payment_events WHERE stripe_id = %s", (payload["id"],)).fetchone()[0]


def test_a_reversed_transfer_returns_the_money_once_per_new_reversed_amount(stripe_payouts, fake_stripe, db):
    p = stripe_payouts
    account = due_for_payout(p)
    p.run_scheduler()
    payout = p.payout()
    assert payout["state"] == "paid"

    partial = fake_stripe.reverse_transfer(payout["transfer_id"], 500)
    first = reversed_event(payout, account, partial["amount_reversed"])
    p.deliver(first)
    assert event_state(db, first) == "processed"
    assert p.entries()[-1] == ("payout_reversal", 500)
    assert p.payout()["amount_reversed_cents"] == 500 and p.payout()["state"] == "paid"

    # Stripe delivering it again, and a transfer.updated with the same total, change nothing.
    again = stripe_events.deliver(p.client, first, p.settings.webhook_secret)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    same = reversed_event(payout, account, 500, "transfer.updated")
    p.deliver(same)
    assert event_state(db, same) == "processed"
    assert [e for e in p.entries() if e[0] == "payout_reversal"] == [("payout_reversal", 500)]

    full = fake_stripe.reverse_transfer(payout["transfer_id"])
    assert full["amount_reversed"] == NET
    p.deliver(reversed_event(payout, account, full["amount_reversed"]))
    reversals = [amount for kind, amount in p.entries() if kind == "payout_reversal"]
    assert reversals == [500, NET - 500] and sum(reversals) == NET
    assert p.payout()["amount_reversed_cents"] == NET
    assert p.balance() == (NET, NET)

    # An older event arriving late (a smaller total) changes nothing either.
    p.deliver(reversed_event(payout, account, 500))
    assert [amount for kind, amount in p.entries() if kind == "payout_reversal"] == [500, NET - 500]

    unknown = stripe_events.event("transfer.reversed", stripe_events.transfer(
        "tr_" + secrets.token_hex(12), payout_id="nosuchpayout0000", amount=700, destination=account,
        reversed_amount=700))
    p.deliver(unknown)
    assert event_state(db, unknown) == "ignored"
    assert len(p.entries()) == 4


def test_a_refund_after_the_payout_is_netted_against_the_next_sales(stripe_payouts, fake_stripe, db):
    p = stripe_payouts
    p.connect()
    p.pay_what_you_want()
    first = p.sell(SALE)
    p.advance(8)
    p.run_scheduler()
    assert p.payouts() == [("paid", NET)]

    # The buyer gets the whole $20 back after the creator was paid: the creator now owes it.
    p.deliver(stripe_events.event("charge.refunded", stripe_events.charge(
        first, 2000, payment_intent="pi_" + first, refunded=2000)))
    assert p.entries()[-1] == ("refund", -2000)
    assert p.balance() == (-2000, -2000)

    def net(cents: int) -> int:
        return cents - standard_fee(cents)

    available = -2000
    for sale in ("15.00", "15.00"):  # -574, then 852: still below the $10.00 minimum
        p.sell(sale)
        available += net(1500)
        assert p.balance()[1] == available
        p.advance(7)
        p.run_scheduler()
        assert p.payouts() == [("paid", NET)]
    assert 0 < available < 1000
    response = p.client.get("/creator/payouts")
    assert response.status_code == 200
    page = response.text
    assert "Payouts start once your available balance reaches $10.00" in page

    p.sell("5.00")
    available += net(500)
    p.advance(7)
    p.run_scheduler()
    assert p.payouts() == [("paid", NET), ("paid", available)]
    assert fake_stripe.last("POST", TRANSFERS).form["amount"] == str(available)
    assert p.balance() == (0, 0)
    assert len(fake_stripe.transfers) == 2
