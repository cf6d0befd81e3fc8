"""The development payment processor: a local hosted-checkout page whose buttons produce events in Stripe's JSON
shape, signed with the webhook secret the way Stripe signs them, and POSTed over HTTP to our real webhook
endpoint. The development path therefore runs exactly the production verification and processing code.

It keeps no state of its own: a checkout session is a signed token in the page's address. It refuses to run in
production mode.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import quote

import httpx
from itsdangerous import BadSignature, URLSafeSerializer

from app.checkout.contract import API_VERSION
from app.checkout.gateway import (
    CheckoutSession,
    PaymentRequest,
    ProcessorUnavailable,
    RefundRequest,
    SubscriptionRequest,
    TransferRequest,
)
from app.settings import Settings
from app.web.errors import NotFound

WEBHOOK_PATH = "/webhooks/stripe"
CONNECT_WEBHOOK_PATH = "/webhooks/stripe/connect"
STILL_DUE = ["external_account", "individual.verification.document"]


def dev_fee(amount_cents: int) -> int:
    """The development processor's fee: Stripe's standard card price in the US, 2.9% (rounded half up) + 30¢."""
    return (amount_cents * 29 + 500) // 1000 + 30


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _suffix(seed: str) -> str:
    """A stable id part derived from the session id, so the same session always names the same intent."""
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


def event(event_type: str, obj: dict[str, Any], *, livemode: bool = False) -> dict[str, Any]:
    return {
        "id": "evt_dev_" + secrets.token_hex(12), "object": "event", "api_version": API_VERSION,
        "created": int(time.time()), "livemode": livemode, "pending_webhooks": 1, "type": event_type,
        "request": {"id": None, "idempotency_key": None}, "data": {"object": obj},
    }


def session_object(session: dict[str, Any], *, status: str, payment_status: str) -> dict[str, Any]:
    subscription = session["mode"] == "subscription"
    sid = _suffix(session["id"])
    return {
        "id": session["id"], "object": "checkout.session", "mode": session["mode"], "status": status,
        "payment_status": payment_status, "amount_total": session["amount"], "amount_subtotal": session["amount"],
        "currency": session["currency"].lower(), "client_reference_id": session["reference"],
        "customer": session.get("customer") or ("cus_dev_" + sid if subscription else None),
        "customer_email": session["email"],
        "customer_details": {"email": session["email"], "name": None},
        "metadata": session["metadata"],
        "payment_intent": None if subscription else "pi_dev_" + sid,
        "subscription": ("sub_dev_" + sid) if subscription else None,
        "success_url": session["success_url"], "cancel_url": session["cancel_url"],
        "livemode": False, "created": session["created"], "expires_at": session["created"] + 86400,
    }


def charge_object(payment_intent: str, order_id: str, amount: int, currency: str, refunded: int) -> dict[str, Any]:
    return {
        "id": "ch_dev_" + payment_intent.removeprefix("pi_dev_"), "object": "charge", "amount": amount,
        "amount_captured": amount, "amount_refunded": refunded, "refunded": refunded >= amount,
        "currency": currency.lower(), "payment_intent": payment_intent, "transfer_group": order_id,
        "metadata": {"order_id": order_id}, "paid": True, "status": "succeeded", "livemode": False,
        "created": int(time.time()),
    }


def dispute_object(charge: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "id": "dp_dev_" + charge["id"].removeprefix("ch_dev_"), "object": "dispute", "amount": charge["amount"],
        "currency": charge["currency"], "charge": charge["id"], "payment_intent": charge["payment_intent"],
        "status": status, "reason": "fraudulent", "livemode": False, "created": int(time.time()),
    }


def subscription_object(session: dict[str, Any], status: str) -> dict[str, Any]:
    sid = _suffix(session["id"])
    return {
        "id": "sub_dev_" + sid, "object": "subscription", "customer": session.get("customer") or "cus_dev_" + sid,
        "status": status, "metadata": session["metadata"], "cancel_at_period_end": False, "livemode": False,
        "created": session["created"],
    }


def invoice_object(session: dict[str, Any], paid: bool) -> dict[str, Any]:
    sub = subscription_object(session, "active")
    return {
        "id": "in_dev_" + secrets.token_hex(8), "object": "invoice", "customer": sub["customer"],
        "status": "paid" if paid else "open", "amount_due": session["amount"], "currency": session["currency"].lower(),
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub["id"],
                                                                            "metadata": session["metadata"]}},
        "livemode": False, "created": int(time.time()),
    }


def account_object(account_id: str, *, complete: bool) -> dict[str, Any]:
    """A connected Express account as Stripe describes it: ready for payouts, or still missing something."""
    due = [] if complete else STILL_DUE
    return {
        "id": account_id, "object": "account", "type": "express", "country": "US", "email": None,
        "charges_enabled": complete, "payouts_enabled": complete, "details_submitted": complete,
        "capabilities": {"transfers": "active" if complete else "inactive"},
        "requirements": {"currently_due": due, "eventually_due": due, "past_due": due, "pending_verification": [],
                         "disabled_reason": None if complete else "requirements.past_due", "current_deadline": None,
                         "errors": []},
        "metadata": {}, "livemode": False, "created": int(time.time()),
    }


class DevProcessor:
    """The Gateway for development and tests; its hosted pages live in app.checkout.dev_routes."""

    def __init__(self, settings: Settings) -> None:
        if settings.mode == "production":
            raise RuntimeError("The development payment processor refuses to run in production mode.")
        self.settings = settings
        self.sessions = URLSafeSerializer(settings.secret_key, salt="dev-checkout-session")
        self.links = URLSafeSerializer(settings.secret_key, salt="dev-connect-link")

    # The Gateway protocol ------------------------------------------------------------------------------------

    async def create_checkout(self, request: PaymentRequest) -> CheckoutSession:
        return self._session("payment", request.amount_cents, request.currency, request.email, request.order_id,
                             {"order_id": request.order_id}, request.description, request.success_url,
                             request.cancel_url)

    async def create_subscription_checkout(self, request: SubscriptionRequest) -> CheckoutSession:
        return self._session("subscription", request.amount_cents, request.currency, request.email,
                             f"creator-{request.creator_id}",
                             {"creator_id": str(request.creator_id), "tier": request.tier}, request.description,
                             request.success_url, request.cancel_url, customer=request.customer_id)

    async def refund(self, request: RefundRequest) -> None:
        charge = charge_object(request.payment_intent_id, request.order_id, request.amount_cents, request.currency,
                               refunded=request.amount_cents)
        await self.deliver(event("charge.refunded", charge))

    async def cancel_subscription(self, subscription_id: str) -> None:
        return None  # the creator's new subscription replaces it; a development subscription bills nobody

    async def sale_fee(self, payment_intent_id: str, amount_cents: int) -> int:
        return dev_fee(amount_cents)

    async def create_account(self, creator_id: int, email: str) -> str:
        return "acct_dev_" + hmac.new(self.settings.secret_key.encode(), f"account:{creator_id}".encode(),
                                      hashlib.sha256).hexdigest()[:16]

    async def account_link(self, account_id: str, refresh_url: str, return_url: str) -> str:
        token = self.links.dumps({"account": account_id, "refresh_url": refresh_url, "return_url": return_url})
        return f"{self.settings.base_url}/dev/connect/{quote(token)}"

    async def retrieve_account(self, account_id: str) -> dict[str, Any] | None:
        return None  # the development processor keeps no state: its onboarding page reports through events

    async def create_transfer(self, request: TransferRequest) -> str:
        # Derived from the idempotency key, as Stripe's idempotency guarantees: the same payout, the same transfer.
        return "tr_dev_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]

    async def find_transfer(self, transfer_group: str) -> str | None:
        return None

    # Sessions and deliveries ---------------------------------------------------------------------------------

    def _session(self, mode: str, amount: int, currency: str, email: str, reference: str, metadata: dict[str, str],
                 description: str, success_url: str, cancel_url: str, customer: str | None = None) -> CheckoutSession:
        session = {"id": "cs_dev_" + secrets.token_hex(12), "mode": mode, "amount": amount, "currency": currency,
                   "email": email, "reference": reference, "metadata": metadata, "description": description,
                   "success_url": success_url, "cancel_url": cancel_url, "customer": customer,
                   "created": int(time.time())}
        token = self.sessions.dumps(session)
        return CheckoutSession(id=session["id"], url=f"{self.settings.base_url}/dev/checkout/{quote(token)}")

    def open(self, token: str) -> dict[str, Any]:
        try:
            return self.sessions.loads(token)  # type: ignore[no-any-return]
        except BadSignature:
            raise NotFound("There is no such development checkout session.") from None

    def success_url(self, session: dict[str, Any]) -> str:
        return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])

    def open_onboarding(self, token: str) -> dict[str, Any]:
        try:
            return self.links.loads(token)  # type: ignore[no-any-return]
        except BadSignature:
            raise NotFound("There is no such development onboarding link.") from None

    async def onboard(self, account_id: str, *, complete: bool) -> None:
        """What Stripe sends the Connect endpoint when the creator finishes (or leaves) onboarding."""
        payload = event("account.updated", account_object(account_id, complete=complete))
        payload["account"] = account_id
        await self.deliver(payload, connect=True)

    async def deliver(self, payload: dict[str, Any], *, connect: bool = False) -> None:
        """POST one event to a webhook endpoint over HTTP, signed like Stripe signs it."""
        body = json.dumps(payload, separators=(",", ":"))
        secret = self.settings.connect_webhook_secret if connect else self.settings.webhook_secret
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Fairshelf-DevProcessor/1",
                   "Stripe-Signature": sign(body, secret)}
        path = CONNECT_WEBHOOK_PATH if connect else WEBHOOK_PATH
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(self.settings.base_url + path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ProcessorUnavailable(f"delivering {payload['type']} failed: {exc}") from exc
        if response.status_code != 200:
            raise ProcessorUnavailable(f"the webhook answered {response.status_code} to {payload['type']}")

    async def pay(self, session: dict[str, Any]) -> None:
        if session["mode"] == "subscription":
            await self.deliver(event("checkout.session.completed", session_object(session, status="complete",
                                                                                  payment_status="paid")))
            await self.deliver(event("customer.subscription.created", subscription_object(session, "active")))
            await self.deliver(event("invoice.paid", invoice_object(session, paid=True)))
            return
        await self.deliver(event("checkout.session.completed",
                                 session_object(session, status="complete", payment_status="paid")))

    async def pay_later(self, session: dict[str, Any], succeeds: bool) -> None:
        """A delayed payment method (a bank debit): completed unpaid now, then succeeded or failed."""
        await self.deliver(event("checkout.session.completed",
                                 session_object(session, status="complete", payment_status="unpaid")))
        kind = "checkout.session.async_payment_succeeded" if succeeds else "checkout.session.async_payment_failed"
        await self.deliver(event(kind, session_object(session, status="complete",
                                                      payment_status="paid" if succeeds else "unpaid")))

    async def expire(self, session: dict[str, Any]) -> None:
        await self.deliver(event("checkout.session.expired",
                                 session_object(session, status="expired", payment_status="unpaid")))

    async def dispute(self, session: dict[str, Any], outcome: str) -> None:
        """outcome: "open" (a dispute is created), "won" or "lost" (it closes)."""
        intent = "pi_dev_" + _suffix(session["id"])
        charge = charge_object(intent, session["reference"], session["amount"], session["currency"], refunded=0)
        if outcome == "open":
            await self.deliver(event("charge.dispute.created", dispute_object(charge, "needs_response")))
        else:
            await self.deliver(event("charge.dispute.closed", dispute_object(charge, outcome)))

    async def invoice_failed(self, session: dict[str, Any]) -> None:
        await self.deliver(event("invoice.payment_failed", invoice_object(session, paid=False)))
        await self.deliver(event("customer.subscription.updated", subscription_object(session, "past_due")))

    async def end_subscription(self, session: dict[str, Any]) -> None:
        await self.deliver(event("customer.subscription.deleted", subscription_object(session, "canceled")))
