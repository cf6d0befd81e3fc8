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


def deliver(client: TestClient, payload: dict[str, Any] | str, secret: str, timestamp: int | None = None):  # type: ignore[no-untyped-def]
    body, headers = signed(payload, secret, timestamp)
    return client.post("/webhooks/stripe", content=body, headers=headers)
