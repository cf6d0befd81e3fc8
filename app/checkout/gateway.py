"""The payment gateway boundary: what the app asks of a processor, and the Stripe implementation of it.

"Separate charges and transfers": buyers pay the platform's account, the order's public id is the transfer group,
and creators are paid later by the payout queue. Every outgoing call carries an idempotency key derived from what
it is for, so a retry (ours or the client library's) can never charge, refund or subscribe twice.
"""

from __future__ import annotations

import logging
import secrets
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


@dataclass(frozen=True, slots=True)
class TransferRequest:
    payout_id: str  # the payout's public id: transfer group and metadata
    amount_cents: int
    currency: str
    destination: str  # the creator's connected account
    idempotency_key: str


class TransferFailed(Exception):
    """A transfer the processor did not make. `retryable`: trying again later can succeed (the processor was
    unreachable, rate-limited us, or the platform's balance was short); otherwise the creator has to act, and
    `reason` tells them what to do."""

    def __init__(self, detail: str, *, retryable: bool, reason: str = "", rate_limited: bool = False) -> None:
        super().__init__(detail)
        self.detail, self.retryable, self.reason, self.rate_limited = detail, retryable, reason, rate_limited


class FeeNotYetKnown(Exception):
    """The charge's balance transaction is not there yet; asking again later will find it."""


ACCOUNT_REFUSED = ("Your payout account cannot receive transfers yet. Open your payout settings, finish what "
                   "Stripe still asks for, and the money will go out with the next payout.")


class Gateway(Protocol):
    async def create_checkout(self, request: PaymentRequest) -> CheckoutSession: ...

    async def create_subscription_checkout(self, request: SubscriptionRequest) -> CheckoutSession: ...

    async def refund(self, request: RefundRequest) -> None: ...

    async def cancel_subscription(self, subscription_id: str) -> None: ...

    async def sale_fee(self, payment_intent_id: str, amount_cents: int) -> int: ...

    async def create_account(self, creator_id: int, email: str) -> str: ...

    async def account_link(self, account_id: str, refresh_url: str, return_url: str) -> str: ...

    async def retrieve_account(self, account_id: str) -> dict[str, Any] | None: ...

    async def create_transfer(self, request: TransferRequest) -> str: ...

    async def find_transfer(self, transfer_group: str) -> str | None: ...


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

    # --- Getting paid

    async def sale_fee(self, payment_intent_id: str, amount_cents: int) -> int:
        """The processor's fee on a payment, from its charge's balance transaction."""
        try:
            intent = await self.client.v1.payment_intents.retrieve_async(
                payment_intent_id, params={"expand": ["latest_charge.balance_transaction"]})
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(str(exc)) from exc
        charge = intent.latest_charge
        transaction = getattr(charge, "balance_transaction", None) if charge is not None else None
        if transaction is None or isinstance(transaction, str):
            raise FeeNotYetKnown(f"payment {payment_intent_id} has no balance transaction yet")
        return int(transaction.fee)

    async def create_account(self, creator_id: int, email: str) -> str:
        account = await self._call("account", self.client.v1.accounts.create_async, {
            "type": "express", "email": email, "capabilities": {"transfers": {"requested": True}},
            "metadata": {"creator_id": str(creator_id)},
        }, f"account-{creator_id}")
        return str(account.id)

    async def account_link(self, account_id: str, refresh_url: str, return_url: str) -> str:
        link = await self._call("account link", self.client.v1.account_links.create_async, {
            "account": account_id, "refresh_url": refresh_url, "return_url": return_url,
            "type": "account_onboarding"}, f"link-{secrets.token_hex(8)}")  # a link is single-use: a new one per click
        return str(link.url)

    async def retrieve_account(self, account_id: str) -> dict[str, Any] | None:
        try:
            account = await self.client.v1.accounts.retrieve_async(account_id)
        except stripe.StripeError as exc:
            raise ProcessorUnavailable(str(exc)) from exc
        return account.to_dict()

    async def create_transfer(self, request: TransferRequest) -> str:
        params = {"amount": request.amount_cents, "currency": request.currency.lower(),
                  "destination": request.destination, "transfer_group": request.payout_id,
                  "description": f"Fairshelf payout {request.payout_id}",
                  "metadata": {"payout_id": request.payout_id}}
        try:
            transfer = await self.client.v1.transfers.create_async(
                params=params, options={"idempotency_key": request.idempotency_key})  # type: ignore[arg-type]
        except stripe.RateLimitError as exc:
            raise TransferFailed(str(exc), retryable=True, rate_limited=True) from exc
        except (stripe.APIConnectionError, stripe.APIError, stripe.AuthenticationError) as exc:
            raise TransferFailed(str(exc), retryable=True) from exc  # the outcome is unknown: the same key finds it
        except stripe.StripeError as exc:
            code = getattr(exc, "code", None) or ""
            if code in ("balance_insufficient", "lock_timeout", "idempotency_error"):
                raise TransferFailed(f"{code}: {exc}", retryable=True) from exc  # the platform's problem, not theirs
            raise TransferFailed(f"{code}: {exc}", retryable=False, reason=ACCOUNT_REFUSED) from exc
        return str(transfer.id)

    async def find_transfer(self, transfer_group: str) -> str | None:
        try:
            found = await self.client.v1.transfers.list_async(params={"transfer_group": transfer_group, "limit": 1})
        except stripe.StripeError as exc:
            raise TransferFailed(str(exc), retryable=True) from exc
        return str(found.data[0].id) if found.data else None


def make_gateway(settings: Settings) -> Gateway:
    if settings.payments == "stripe":
        return StripeGateway(settings)
    from app.checkout.devprocessor import DevProcessor

    return DevProcessor(settings)
