"""Payout accounts: connecting a creator's Stripe Connect Express account, and keeping its status current from
account.updated events (and from the processor itself when the creator comes back from onboarding)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.contract import fields
from app.checkout.gateway import Gateway, ProcessorUnavailable
from app.payouts.models import PayoutAccount
from app.settings import Settings

log = logging.getLogger("fairshelf.payouts")

ACCOUNT_FIELDS = ("id", "charges_enabled", "payouts_enabled", "details_submitted", "requirements.currently_due",
                  "requirements.disabled_reason")

# What Stripe's requirement names ask of a person, in words; anything else is shown by its own name.
REQUIREMENTS = {
    "external_account": "a bank account or debit card to receive payouts",
    "tos_acceptance.date": "accepting Stripe's terms of service",
    "tos_acceptance.ip": "accepting Stripe's terms of service",
    "individual.verification.document": "an identity document",
    "individual.dob.day": "your date of birth", "individual.dob.month": "your date of birth",
    "individual.dob.year": "your date of birth",
    "individual.address.line1": "your address", "individual.address.city": "your address",
    "individual.address.postal_code": "your address",
    "individual.first_name": "your legal name", "individual.last_name": "your legal name",
    "individual.ssn_last_4": "the last four digits of your SSN", "individual.id_number": "your ID number",
    "individual.email": "your email address", "individual.phone": "your phone number",
    "business_profile.url": "a website or product description", "business_profile.mcc": "your type of business",
    "business_type": "your type of business",
}


def describe(requirements: list[str]) -> list[str]:
    seen: list[str] = []
    for name in requirements:
        words = REQUIREMENTS.get(name, name.replace("_", " ").replace(".", ": "))
        if words not in seen:
            seen.append(words)
    return seen


@dataclass(frozen=True, slots=True)
class AccountView:
    """A payout account as the dashboard shows it."""

    connected: bool
    ready: bool
    still_needed: list[str]
    details_submitted: bool
    disabled_reason: str


async def account_of(db: AsyncSession, creator_id: int) -> PayoutAccount | None:
    return await db.get(PayoutAccount, creator_id)


def view(account: PayoutAccount | None) -> AccountView:
    if account is None:
        return AccountView(False, False, [], False, "")
    return AccountView(True, account.payouts_enabled, describe(list(account.currently_due)),
                       account.details_submitted, account.disabled_reason)


async def start_onboarding(db: AsyncSession, gateway: Gateway, creator_id: int, email: str,
                           settings: Settings) -> str:
    """The address of the processor's onboarding for this creator, creating their account on first use."""
    account = await account_of(db, creator_id)
    if account is None:
        # The processor's idempotency key is per creator, so a double click creates one account.
        account_id = await gateway.create_account(creator_id, email)
        await db.execute(text("INSERT INTO payout_accounts (creator_id, stripe_account_id) VALUES (:c, :a) "
                              "ON CONFLICT (creator_id) DO NOTHING"), {"c": creator_id, "a": account_id})
        await db.commit()
        account = await account_of(db, creator_id)
        assert account is not None
    base = settings.base_url
    return await gateway.account_link(account.stripe_account_id, f"{base}/creator/payouts/connect/refresh",
                                      f"{base}/creator/payouts/connect/return")


async def apply_status(db: AsyncSession, obj: dict[str, Any], as_of: datetime) -> bool:
    """Record an account's status as the processor described it at `as_of`; an older description changes
    nothing. False when the account is not one of ours."""
    f = fields(obj, ACCOUNT_FIELDS, ("requirements.disabled_reason",))
    account = (await db.scalars(select(PayoutAccount).where(PayoutAccount.stripe_account_id == f["id"])
                                .with_for_update())).one_or_none()
    if account is None:
        return False
    if account.processor_updated_at is not None and account.processor_updated_at > as_of:
        return True
    account.charges_enabled = bool(f["charges_enabled"])
    account.payouts_enabled = bool(f["payouts_enabled"])
    account.details_submitted = bool(f["details_submitted"])
    account.currently_due = [str(r) for r in (f["requirements.currently_due"] or [])][:50]
    account.disabled_reason = str(f["requirements.disabled_reason"] or "")[:100]
    account.processor_updated_at = as_of
    await db.flush()
    return True


async def refresh(db: AsyncSession, gateway: Gateway, creator_id: int) -> None:
    """Ask the processor for the account's status now (the creator just came back from onboarding, possibly
    before its event did)."""
    account = await account_of(db, creator_id)
    if account is None:
        return
    try:
        found = await gateway.retrieve_account(account.stripe_account_id)
    except ProcessorUnavailable as exc:
        log.warning("could not refresh payout account %s: %s", account.stripe_account_id, exc.detail)
        return  # its account.updated event brings the same news
    if found is not None:
        await apply_status(db, found, datetime.now(UTC))
        await db.commit()
