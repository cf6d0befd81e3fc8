"""Creator tier billing: a monthly subscription on the platform's account, kept current by the processor's events.

Status follows the subscription: active → past_due (a payment failed; the tier still applies for the grace
period) → canceled. An older event arriving after a newer one changes nothing (billing_updated_at).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Creator
from app.catalog.tiers import TIERS
from app.checkout.contract import ContractBroken, Envelope, NotYetKnown
from app.checkout.gateway import SubscriptionRequest
from app.settings import Settings
from app.worker.queue import enqueue

STATUS = {"active": "active", "trialing": "active", "past_due": "past_due", "unpaid": "canceled",
          "canceled": "canceled", "incomplete_expired": "canceled", "paused": "canceled"}


def subscription_request(creator: Creator, email: str, tier: str, settings: Settings) -> SubscriptionRequest:
    chosen = TIERS[tier]
    return SubscriptionRequest(
        creator_id=creator.user_id, tier=tier, description=f"Fairshelf {chosen.name} tier", currency="USD",
        amount_cents=chosen.monthly_cents, email=email, customer_id=creator.billing_customer_id,
        success_url=f"{settings.base_url}/creator/billing?paid=1", cancel_url=f"{settings.base_url}/creator/billing",
        attempt=secrets.token_hex(12),
    )


async def _lock_creator(db: AsyncSession, creator_id: Any) -> Creator:
    try:
        user_id = int(creator_id)
    except (TypeError, ValueError):
        raise ContractBroken(f"subscription metadata names no creator ({creator_id!r})") from None
    creator = await db.scalar(select(Creator).where(Creator.user_id == user_id).with_for_update())
    if creator is None:
        raise ContractBroken(f"creator {user_id} does not exist")
    return creator


def _stale(creator: Creator, event: Envelope) -> bool:
    return creator.billing_updated_at is not None and event.created < creator.billing_updated_at


def _set_status(creator: Creator, status: str, at: datetime) -> None:
    if status == "past_due":
        creator.past_due_since = creator.past_due_since or at
    elif status == "active":
        creator.past_due_since = None
    creator.tier_status = status
    creator.billing_updated_at = at


async def session_completed(db: AsyncSession, f: dict[str, Any], event: Envelope) -> str:
    creator = await _lock_creator(db, f["metadata.creator_id"])
    tier = f["metadata.tier"]
    if tier not in TIERS:
        raise ContractBroken(f"unknown tier {tier!r}")
    if _stale(creator, event):
        return "ignored"  # e.g. an old subscription's checkout, completed before the creator switched tiers
    previous = creator.subscription_id
    if previous and previous != f["subscription"]:
        # The new subscription replaces the old one: cancel that at the processor (after this commits).
        await enqueue(db, "checkout.cancel_subscription", {"subscription_id": previous},
                      dedupe_key=f"cancel-subscription:{previous}")
    creator.subscription_id, creator.billing_customer_id, creator.tier = f["subscription"], f["customer"], tier
    if f["payment_status"] in ("paid", "no_payment_required"):
        _set_status(creator, "active", event.created)
    return "processed"


async def subscription_changed(db: AsyncSession, f: dict[str, Any], event: Envelope) -> str:
    creator = await _lock_creator(db, f["metadata.creator_id"])
    if creator.subscription_id not in (None, f["id"]) or _stale(creator, event):
        return "ignored"  # an older subscription, or an older state of this one
    creator.subscription_id, creator.billing_customer_id = f["id"], f["customer"]
    status = "canceled" if event.type.endswith("deleted") else STATUS.get(f["status"])
    if status is None:
        return "ignored"  # incomplete: the first payment has not happened yet
    tier = f["metadata.tier"]
    if tier in TIERS:
        creator.tier = tier
    _set_status(creator, status, event.created)
    return "processed"


async def invoice(db: AsyncSession, f: dict[str, Any], event: Envelope) -> str:
    subscription = f["parent.subscription_details.subscription"]
    creator = await db.scalar(select(Creator).where(or_(
        Creator.subscription_id == subscription, Creator.billing_customer_id == f["customer"]
    )).with_for_update())
    if creator is None:
        raise NotYetKnown(f"no creator with subscription {subscription} yet")
    if creator.subscription_id not in (None, subscription):
        return "ignored"
    failed = event.type == "invoice.payment_failed"
    if _stale(creator, event):
        # Too old to change the status, but a failure is still the start of the grace period if it came first.
        if failed and creator.tier_status == "past_due" and creator.past_due_since and \
                event.created < creator.past_due_since:
            creator.past_due_since = event.created
            return "processed"
        return "ignored"
    _set_status(creator, "past_due" if failed else "active", event.created)
    return "processed"
