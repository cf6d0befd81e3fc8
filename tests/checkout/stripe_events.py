"""Events in Stripe's wire format, written for the tests from Stripe's API reference (independently of the app's
development processor), and signed with the stripe library's own signer."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import stripe
from litestar.testing import TestClient

API_VERSION = "2026-10-28.endive"


def event(event_type: str, obj: dict[str, Any], *, livemode: bool = False, created: int | None = None,
          event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "api_version": API_VERSION,
        "created": created or int(time.time()), "livemode": livemode, "pending_webhooks": 1, "type": event_type,
        "request": {"id": "req_" + secrets.token_hex(7), "idempotency_key": None}, "data": {"object": obj},
    }


def session(order_id: str, amount: int, *, session_id: str, payment_intent: str | None, payment_status: str = "paid",
            status: str = "complete", email: str = "fan@example.com", currency: str = "usd") -> dict[str, Any]:
    return {
        "id": session_id, "object": "checkout.session", "mode": "payment", "status": status,
        "payment_status": payment_status, "amount_total": amount, "amount_subtotal": amount, "currency": currency,
        "client_reference_id": order_id, "customer": None, "customer_email": email,
        "customer_details": {"email": email, "name": "A Fan", "address": None, "phone": None, "tax_exempt": "none"},
        "metadata": {"order_id": order_id}, "payment_intent": payment_intent, "subscription": None,
        "livemode": False, "created": int(time.time()) - 60, "expires_at": int(time.time()) + 86000,
        "success_url": "http://testserver.local/orders/x", "cancel_url": "http://testserver.local/",
    }


def charge(order_id: str, amount: int, *, payment_intent: str, refunded: int = 0, charge_id: str | None = None,
           currency: str = "usd") -> dict[str, Any]:
    return {
        "id": charge_id or "ch_" + payment_intent.removeprefix("pi_"), "object": "charge", "amount": amount,
        "amount_captured": amount, "amount_refunded": refunded, "refunded": refunded >= amount, "captured": True,
        "currency": currency, "payment_intent": payment_intent, "transfer_group": order_id, "paid": True,
        "status": "succeeded", "metadata": {}, "livemode": False, "created": int(time.time()),
    }


def dispute(amount: int, *, payment_intent: str, status: str, dispute_id: str | None = None,
            currency: str = "usd") -> dict[str, Any]:
    return {
        "id": dispute_id or "dp_" + payment_intent.removeprefix("pi_"), "object": "dispute", "amount": amount,
        "currency": currency, "charge": "ch_" + payment_intent.removeprefix("pi_"), "payment_intent": payment_intent,
        "status": status, "reason": "fraudulent", "livemode": False, "created": int(time.time()),
        "is_charge_refundable": False, "metadata": {},
    }


def signed(payload: dict[str, Any] | str, secret: str, timestamp: int | None = None) -> tuple[str, dict[str, str]]:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}


def deliver(client: TestClient, payload: dict[str, Any] | str, secret: str, timestamp: int | None = None,  # type: ignore[no-untyped-def]
            path: str = "/webhooks/stripe"):
    body, headers = signed(payload, secret, timestamp)
    return client.post(path, content=body, headers=headers)


# --- Creator tier billing: a subscription Checkout Session, the Subscription and its Invoices.

def subscription_session(creator_id: int, tier: str, amount: int, *, session_id: str, subscription_id: str,
                         customer_id: str, payment_status: str = "paid",
                         email: str = "maker@example.com") -> dict[str, Any]:
    """A Checkout Session in subscription mode: no payment intent, the subscription and customer it created, and
    the metadata the app set on it (metadata values are always strings at Stripe)."""
    return {
        "id": session_id, "object": "checkout.session", "mode": "subscription", "status": "complete",
        "payment_status": payment_status, "amount_total": amount, "amount_subtotal": amount, "currency": "usd",
        "client_reference_id": f"creator-{creator_id}", "customer": customer_id, "customer_email": email,
        "customer_details": {"email": email, "name": "A Maker", "address": None, "phone": None, "tax_exempt": "none"},
        "metadata": {"creator_id": str(creator_id), "tier": tier}, "payment_intent": None,
        "subscription": subscription_id, "invoice": "in_" + secrets.token_hex(8), "livemode": False,
        "created": int(time.time()) - 60, "expires_at": int(time.time()) + 86000,
        "success_url": "http://testserver.local/creator/billing?paid=1",
        "cancel_url": "http://testserver.local/creator/billing",
    }


def subscription(subscription_id: str, *, customer: str, status: str, creator_id: int, tier: str,
                 amount: int = 1000) -> dict[str, Any]:
    """A Subscription (status: incomplete, incomplete_expired, trialing, active, past_due, canceled, unpaid,
    paused), carrying the metadata the app passed as subscription_data.metadata."""
    item = {"id": "si_" + secrets.token_hex(7), "object": "subscription_item", "quantity": 1,
            "price": {"id": "price_" + secrets.token_hex(7), "object": "price", "currency": "usd",
                      "unit_amount": amount, "recurring": {"interval": "month", "interval_count": 1}}}
    return {
        "id": subscription_id, "object": "subscription", "customer": customer, "status": status,
        "metadata": {"creator_id": str(creator_id), "tier": tier}, "cancel_at_period_end": False,
        "canceled_at": None, "collection_method": "charge_automatically", "currency": "usd",
        "items": {"object": "list", "data": [item], "has_more": False,
                  "url": f"/v1/subscription_items?subscription={subscription_id}"},
        "latest_invoice": None, "livemode": False, "created": int(time.time()) - 60,
    }


def invoice(subscription_id: str, *, customer: str, paid: bool, amount: int = 1000,
            invoice_id: str | None = None) -> dict[str, Any]:
    """A subscription's Invoice: since the basil API versions the subscription is named under
    parent.subscription_details (no longer a top-level `subscription`)."""
    return {
        "id": invoice_id or "in_" + secrets.token_hex(8), "object": "invoice", "customer": customer,
        "status": "paid" if paid else "open", "amount_due": amount, "amount_paid": amount if paid else 0,
        "amount_remaining": 0 if paid else amount, "attempt_count": 1, "attempted": True,
        "billing_reason": "subscription_cycle", "collection_method": "charge_automatically", "currency": "usd",
        "parent": {"type": "subscription_details", "quote_details": None,
                   "subscription_details": {"metadata": {}, "subscription": subscription_id}},
        "livemode": False, "created": int(time.time()),
    }


def unrelated_completion() -> dict[str, Any]:
    """A well-formed event about no order of ours."""
    return event("checkout.session.completed", session(
        "ord_unknown", 499, session_id="cs_" + secrets.token_hex(12), payment_intent="pi_unknown"))


def account(account_id: str, *, ready: bool, due: tuple[str, ...] = ("external_account",)) -> dict[str, Any]:
    """A connected Express account (what account.updated carries)."""
    missing = [] if ready else list(due)
    return {
        "id": account_id, "object": "account", "type": "express", "country": "US", "email": "maker@example.com",
        "business_type": "individual", "charges_enabled": ready, "payouts_enabled": ready, "details_submitted": ready,
        "capabilities": {"transfers": "active" if ready else "inactive"},
        "requirements": {"alternatives": [], "current_deadline": None, "currently_due": missing,
                         "disabled_reason": None if ready else "requirements.past_due", "errors": [],
                         "eventually_due": missing, "past_due": missing, "pending_verification": []},
        "metadata": {}, "created": int(time.time()) - 3600,
    }


def transfer(transfer_id: str, *, payout_id: str, amount: int, destination: str, reversed_amount: int = 0,
             currency: str = "usd") -> dict[str, Any]:
    """A transfer to a connected account (what transfer.reversed and transfer.updated carry)."""
    return {
        "id": transfer_id, "object": "transfer", "amount": amount, "amount_reversed": reversed_amount,
        "balance_transaction": "txn_" + secrets.token_hex(12), "created": int(time.time()) - 600,
        "currency": currency, "description": f"Fairshelf payout {payout_id}", "destination": destination,
        "destination_payment": "py_" + secrets.token_hex(12), "livemode": False,
        "metadata": {"payout_id": payout_id}, "reversals": {"object": "list", "data": [], "has_more": False,
                                                            "total_count": 0, "url": f"/v1/transfers/{transfer_id}/reversals"},
        "reversed": reversed_amount >= amount, "source_transaction": None, "source_type": "card",
        "transfer_group": payout_id,
    }


def connect_event(event_type: str, obj: dict[str, Any], account_id: str, **kwargs: Any) -> dict[str, Any]:
    """An event about a connected account, as a Connect endpoint receives it (it names the account)."""
    return {**event(event_type, obj, **kwargs), "account": account_id}
