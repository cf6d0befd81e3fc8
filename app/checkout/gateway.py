"""The payment gateway boundary: what the app asks of a processor, and the Stripe implementation of it.

"Separate charges and transfers": buyers pay the platform's account, the order's public id is the transfer group,
and creators are paid later by the payout queue. Every outgoing call carries an idempotency key derived from what
it is for, so a retry (ours or the client library's) can never charge, refund or subscribe twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import stripe

from app.checkout.contract import API_VERSION
from app.settings import Settings
from app.web.errors import AppError

log = logging.getLogger("fairshelf.checkout")


class ProcessorUnavailable(AppError):
    status_code = 503
    title = "Payments briefly unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__("We could not reach the payment processor, so nothing was charged or refunded. Please try "
                         "again shortly.")
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    order_id: str  # the order's public id: metadata, transfer group and idempotency key
    description: str
    amount_cents: int
    currency: str
    email: str
    success_url: str
    cancel_url: str


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    creator_id: int
    tier: str
    description: str
    amount_cents: int  # per month
    currency: str
    email: str
    customer_id: str | None
    success_url: str
    cancel_url: str
    attempt: str  # one idempotency key per click; the client library's own retries reuse it


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True, slots=True)
class RefundRequest:
    order_id: str
    payment_intent_id: str
    amount_cents: int
    currency: str
    charge_id: str | None


class Gateway(Protocol):
    async def create_checkout(self, request: PaymentRequest) -> CheckoutSession: ...

    async def create_subscription_checkout(self, request: SubscriptionRequest) -> CheckoutSession: ...

    async def refund(self, request: RefundRequest) -> None: ...

    async def cancel_subscription(self, subscription_id: str) -> None: ...


def payment_session_params(request: PaymentRequest) -> dict[str, Any]:
    return {
        "mode": "payment",
        "line_items": [{
            "quantity": 1,
            "price_data": {"currency": request.currency.lower(), "unit_amount": request.amount_cents,
                           "product_data": {"name": request.description[:250]}},
        }],
        "customer_email": request.email,
        "client_reference_id": request.order_id,
        "metadata": {"order_id": request.order_id},
        "payment_intent_data": {"transfer_group": request.order_id, "metadata": {"order_id": request.order_id}},
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
    }


def subscription_session_params(request: SubscriptionRequest) -> dict[str, Any]:
    metadata = {"creator_id": str(request.creator_id), "tier": request.tier}
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{
            "quantity": 1,
            "price_data": {"currency": request.currency.lower(), "unit_amount": request.amount_cents,
                           "recurring": {"interval": "month"}, "product_data": {"name": request.description}},
        }],
        "client_reference_id": f"creator-{request.creator_id}",
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
    }
    if request.customer_id:
        params["customer"] = request.customer_id
    else:
        params["customer_email"] = request.email
    return params


class StripeGateway:
    """The official client over HTTPX (async), pinned to the API version our webhook contract describes."""

    def __init__(self, settings: Settings) -> None:
        self.client = stripe.StripeClient(
            settings.stripe_secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
            http_client=stripe.HTTPXClient(timeout=10),  # with two retries, a hung processor costs ≤ 30 s
            max_network_retries=2,
        )

    async def _call(self, what: str, call: Any, params: dict[str, Any], key: str) -> Any:
        try:
            return await call(params=params, options={"idempotency_key": key})
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            log.warning("stripe %s failed: %s", what, exc)
            raise ProcessorUnavailable(str(exc)) from exc
        except stripe.StripeError as exc:
            # A request Stripe refuses (bad parameters, wrong key) is our problem, not the buyer's: log it whole.
            log.error("stripe refused %s: %s", what, exc)
            raise ProcessorUnavailable(str(exc)) from exc

    async def create_checkout(self, request: PaymentRequest) -> CheckoutSession:
        session = await self._call("checkout", self.client.v1.checkout.sessions.create_async,
                                   payment_session_params(request), f"checkout-{request.order_id}")
        return CheckoutSession(id=session.id, url=session.url)

    async def create_subscription_checkout(self, request: SubscriptionRequest) -> CheckoutSession:
        session = await self._call("subscription checkout", self.client.v1.checkout.sessions.create_async,
                                   subscription_session_params(request), f"tier-{request.attempt}")
        return CheckoutSession(id=session.id, url=session.url)

    async def refund(self, request: RefundRequest) -> None:
        await self._call("refund", self.client.v1.refunds.create_async,
                         {"payment_intent": request.payment_intent_id, "reason": "requested_by_customer",
                          "metadata": {"order_id": request.order_id}}, f"refund-{request.order_id}")

    async def cancel_subscription(self, subscription_id: str) -> None:
        try:
            await self.client.v1.subscriptions.cancel_async(subscription_id)
        except stripe.InvalidRequestError as exc:
            if getattr(exc, "code", None) != "resource_missing":
                raise ProcessorUnavailable(str(exc)) from exc
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(str(exc)) from exc


def make_gateway(settings: Settings) -> Gateway:
    if settings.payments == "stripe":
        return StripeGateway(settings)
    from app.checkout.devprocessor import DevProcessor

    return DevProcessor(settings)
