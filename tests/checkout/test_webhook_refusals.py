"""Deliveries the webhook endpoint refuses (forged, stale, malformed, of the other mode) store nothing; the ones at
the edges (a signature from 290 s ago, a secret being rotated, an unknown event type) are accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from tests.checkout import stripe_events

# --- Deliveries the endpoint refuses -------------------------------------------------------------------------------


def _sign_bytes(body: bytes, secret: str) -> dict[str, str]:
    """A Stripe-Signature over raw bytes (the stripe library's signer takes text)."""
    t = int(time.time())
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"}


def _tampered(secret: str) -> tuple[str, dict[str, str]]:
    body, _ = stripe_events.signed(stripe_events.unrelated_completion(), secret)
    _, headers = stripe_events.signed(stripe_events.unrelated_completion(), secret)  # a valid signature, of another body
    return body, headers


def _with_nul(secret: str) -> tuple[str, dict[str, str]]:
    payload = stripe_events.unrelated_completion()
    payload["data"]["object"]["customer_details"]["name"] = "A\x00Fan"  # json.dumps writes it as \u0000
    return stripe_events.signed(payload, secret)


def _lone_surrogate(secret: str) -> tuple[str, dict[str, str]]:
    body = json.dumps(stripe_events.unrelated_completion()).replace('"A Fan"', '"A \\ud800 Fan"')  # valid to Python, not to jsonb
    assert "\\ud800" in body
    return stripe_events.signed(body, secret)


def _overlong_id(secret: str) -> tuple[str, dict[str, str]]:
    payload = stripe_events.unrelated_completion()
    payload["id"] = "evt_" + "x" * 300
    return stripe_events.signed(payload, secret)


Refusal = Callable[[str], tuple[str | bytes, dict[str, str]]]
REFUSED: dict[str, Refusal] = {
    "replayed: signed over 300 s ago": lambda s: stripe_events.signed(stripe_events.unrelated_completion(), s, timestamp=int(time.time()) - 301),
    "tampered body": _tampered,
    "signed with another secret": lambda s: stripe_events.signed(stripe_events.unrelated_completion(), "whsec_someone_else"),
    "no Stripe-Signature header": lambda s: (json.dumps(stripe_events.unrelated_completion()), {"Content-Type": "application/json"}),
    "a header without a v1 signature": lambda s: (json.dumps(stripe_events.unrelated_completion()), {
        "Stripe-Signature": stripe_events.signed(stripe_events.unrelated_completion(), s)[1]["Stripe-Signature"].replace("v1=", "v0=")}),
    "an unreadable header": lambda s: (json.dumps(stripe_events.unrelated_completion()), {"Stripe-Signature": "nonsense"}),
    "malformed JSON, signed": lambda s: stripe_events.signed('{"id": "evt_1", "object": "event", ', s),
    "signed JSON that is not an event": lambda s: stripe_events.signed('{"hello": 1}', s),
    "signed bytes that are not UTF-8": lambda s: (b'{"id": "evt_\xff"}', _sign_bytes(b'{"id": "evt_\xff"}', s)),
    "a live-mode event at a test-mode endpoint": lambda s: stripe_events.signed(
        {**stripe_events.unrelated_completion(), "livemode": True}, s),
    "a \\u0000 escape, which jsonb cannot hold": _with_nul,
    "a lone surrogate escape": _lone_surrogate,
    "NaN, which is not JSON": lambda s: stripe_events.signed(
        stripe_events.event("invoice.paid", {"id": "in_1", "object": "invoice", "amount_due": float("nan")}), s),
    "an event id longer than Stripe's": _overlong_id,
}


def test_refused_deliveries_store_nothing(client, settings, inbox, db):
    answers = {}
    for case, build in REFUSED.items():
        body, headers = build(settings.webhook_secret)
        response = client.post("/webhooks/stripe", content=body, headers=headers)
        answers[case] = (response.status_code, "error" in response.json(), inbox.count())
    # Every one refused with an explanation (never a 500), and nothing stored.
    assert answers == dict.fromkeys(REFUSED, (400, True, 0))
    assert db.execute("SELECT count(*) FROM jobs").fetchone() == (0,)


def test_signed_json_that_is_not_an_object_is_refused(client, settings, inbox):
    # The stripe library itself trips over these (AttributeError): it must still be a 400, never a 500.
    answers = {body: stripe_events.deliver(client, body, settings.webhook_secret).status_code
               for body in ("[]", "null", '"evt_1"', "1")}
    assert answers == dict.fromkeys(answers, 400)
    assert inbox.count() == 0


def test_deliveries_at_the_edges_are_accepted(client, settings, inbox):
    old = stripe_events.unrelated_completion()
    body, headers = stripe_events.signed(old, settings.webhook_secret, timestamp=int(time.time()) - 290)
    assert client.post("/webhooks/stripe", content=body, headers=headers).status_code == 200

    # While an endpoint secret is rolled, Stripe signs with the old and the new: one v1 must match.
    rolled = stripe_events.unrelated_completion()
    body, headers = stripe_events.signed(rolled, "whsec_the_old_one")
    _, ours = stripe_events.signed(rolled, settings.webhook_secret)
    headers["Stripe-Signature"] += "," + ours["Stripe-Signature"].split(",")[1]
    assert client.post("/webhooks/stripe", content=body, headers=headers).status_code == 200
    assert inbox.state(old)[0] == inbox.state(rolled)[0] == "received"


def test_an_unknown_event_type_is_stored_and_ignored(inbox):
    payout = stripe_events.event("payout.paid", {
        "id": "po_" + secrets.token_hex(8), "object": "payout", "amount": 12000, "currency": "usd",
        "arrival_date": int(time.time()), "status": "paid", "method": "standard", "livemode": False})
    inbox.deliver(payout, times=2)
    inbox.process()
    assert inbox.state(payout) == ("ignored", "")
