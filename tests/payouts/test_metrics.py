"""/metrics shows what an operator watches of payments: the webhook backlog and lag, and the payout queue."""

from __future__ import annotations

import re

from tests.payouts.stripe_helpers import insert_creator, insert_payout


def gauge(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} is not in /metrics"
    return float(match.group(1))


def test_metrics_show_the_webhook_backlog_and_the_payout_queue(client, db):
    creator = insert_creator(db)
    waiting = insert_payout(db, creator, "scheduled", 1500)
    db.execute("UPDATE payouts SET next_attempt_at = now() - interval '90 seconds' WHERE id = %s", (waiting,))
    other = insert_creator(db, "shelf_two")
    failed = insert_payout(db, other, "scheduled", 1200)
    db.execute("UPDATE payouts SET state = 'failed', failed_at = now() WHERE id = %s", (failed,))
    db.execute("INSERT INTO payment_events (stripe_id, type, livemode, created, payload, received_at) "
               "VALUES ('evt_waiting', 'charge.refunded', false, now(), '{}', now() - interval '40 seconds')")

    text = client.get("/metrics").text
    assert gauge(text, 'fairshelf_payouts{state="scheduled"}') == 1
    assert gauge(text, 'fairshelf_payouts{state="processing"}') == 0
    assert gauge(text, 'fairshelf_payouts{state="failed_last_day"}') == 1
    assert 90 <= gauge(text, "fairshelf_payouts_oldest_due_seconds") < 120
    assert gauge(text, 'fairshelf_webhook_events_unprocessed{state="received"}') == 1
    assert 40 <= gauge(text, "fairshelf_webhook_lag_seconds") < 70
