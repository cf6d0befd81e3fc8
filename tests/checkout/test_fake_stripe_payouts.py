"""The fake's Connect endpoints (tests/checkout/fake_stripe.py), through the official `stripe` client over
HTTPX: Express accounts and onboarding links, a payment's fee, transfers with Stripe's idempotency and
refusals, reversals, and a request held after processing (a worker killed before its own write)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import stripe

from app.checkout.contract import API_VERSION
from tests.checkout.conftest import STRIPE_SECRET_KEY
from tests.checkout.fake_stripe import FakeStripe, standard_fee


def client(fake: FakeStripe, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_SECRET_KEY, stripe_version=API_VERSION,
                               base_addresses={"api": fake.url}, http_client=stripe.HTTPXClient(timeout=5),
                               max_network_retries=retries)


async def onboarded_account(c: stripe.StripeClient, fake: FakeStripe) -> str:
    account = await c.v1.accounts.create_async(params={
        "type": "express", "email": "creator@example.com", "capabilities": {"transfers": {"requested": True}},
        "metadata": {"creator_id": "c1"}})
    fake.complete_onboarding(account.id)
    return account.id


def transfer_params(destination: str, amount: int = 455, group: str = "order_o1") -> dict[str, Any]:
    return {"amount": amount, "currency": "usd", "destination": destination, "transfer_group": group,
            "description": "Payout for order o1", "metadata": {"order_id": "o1"}}


def test_express_account_onboarding(fake_stripe: FakeStripe):
    async def main() -> None:
        c = client(fake_stripe)
        account = await c.v1.accounts.create_async(params={
            "type": "express", "email": "creator@example.com",
            "capabilities": {"transfers": {"requested": True}}, "metadata": {"creator_id": "c1"}})
        assert account.id.startswith("acct_") and account.type == "express" and account.country == "US"
        assert not account.payouts_enabled and account.capabilities["transfers"] == "inactive"
        assert "external_account" in account.requirements.currently_due
        assert account.metadata["creator_id"] == "c1"

        link = await c.v1.account_links.create_async(params={
            "account": account.id, "refresh_url": "https://fairshelf.test/r",
            "return_url": "https://fairshelf.test/d", "type": "account_onboarding"})
        assert link.url.startswith(f"https://connect.stripe.com/setup/e/{account.id}/")
        assert link.expires_at == link.created + 300
        with pytest.raises(stripe.InvalidRequestError) as missing:
            await c.v1.account_links.create_async(params={"account": account.id, "type": "account_onboarding",
                                                          "refresh_url": "https://fairshelf.test/r"})
        assert missing.value.code == "parameter_missing" and missing.value.param == "return_url"

        updated = fake_stripe.complete_onboarding(account.id)
        assert updated["payouts_enabled"] and updated["requirements"]["disabled_reason"] is None
        again = await c.v1.accounts.retrieve_async(account.id)
        assert again.payouts_enabled and again.capabilities["transfers"] == "active"
        assert again.requirements.currently_due == []
        with pytest.raises(stripe.InvalidRequestError) as unknown:
            await c.v1.accounts.retrieve_async("acct_nope")
        assert unknown.value.http_status == 404 and unknown.value.param == "account"

    asyncio.run(main())


def test_payment_intent_expands_to_the_balance_transaction_fee(fake_stripe: FakeStripe):
    assert standard_fee(499) == 44 and standard_fee(1000) == 59 and standard_fee(50) == 31  # 1.45 → 1

    async def main() -> None:
        c = client(fake_stripe)
        fake_stripe.add_payment_intent("pi_1", 499, transfer_group="order_o1")
        plain = await c.v1.payment_intents.retrieve_async("pi_1")
        assert isinstance(plain.latest_charge, str) and plain.latest_charge.startswith("ch_")
        pi = await c.v1.payment_intents.retrieve_async(
            "pi_1", params={"expand": ["latest_charge.balance_transaction"]})
        charge = pi.latest_charge
        assert pi.transfer_group == "order_o1" and charge.id == plain.latest_charge
        txn = charge.balance_transaction
        assert txn.object == "balance_transaction" and txn.source == charge.id
        assert (txn.amount, txn.fee, txn.net) == (499, 44, 455)
        assert txn.fee_details[0].type == "stripe_fee"
        charge_only = await c.v1.payment_intents.retrieve_async("pi_1", params={"expand": ["latest_charge"]})
        assert charge_only.latest_charge.balance_transaction == txn.id
        with pytest.raises(stripe.InvalidRequestError) as unknown:
            await c.v1.payment_intents.retrieve_async("pi_nope")
        assert unknown.value.param == "intent"

    asyncio.run(main())


def test_transfers_are_idempotent_listed_refused_and_reversed(fake_stripe: FakeStripe):
    async def main() -> None:
        c = client(fake_stripe)
        destination = await onboarded_account(c, fake_stripe)
        options: Any = {"idempotency_key": "payout-o1"}
        first = await c.v1.transfers.create_async(transfer_params(destination), options=options)
        replay = await c.v1.transfers.create_async(transfer_params(destination), options=options)
        assert first.id == replay.id and first.id.startswith("tr_") and first.amount == 455
        assert first.destination_payment.startswith("py_") and first.metadata["order_id"] == "o1"
        assert len(fake_stripe.transfers_created()) == 1 and len(fake_stripe.transfers) == 1
        assert fake_stripe.last("POST", "/v1/transfers").replayed

        with pytest.raises(stripe.IdempotencyError):
            await c.v1.transfers.create_async(transfer_params(destination, amount=1), options=options)
        with pytest.raises(stripe.InvalidRequestError) as unknown:
            await c.v1.transfers.create_async(transfer_params("acct_nope"))
        assert unknown.value.param == "destination" and "No such destination" in str(unknown.value)
        pending = (await c.v1.accounts.create_async(params={"type": "express"})).id
        with pytest.raises(stripe.InvalidRequestError) as incapable:
            await c.v1.transfers.create_async(transfer_params(pending))
        assert incapable.value.code == "insufficient_capabilities_for_transfer"
        with pytest.raises(stripe.InvalidRequestError) as bad_amount:
            await c.v1.transfers.create_async(transfer_params(destination, amount=0))
        assert bad_amount.value.param == "amount"

        second = await c.v1.transfers.create_async(transfer_params(destination, amount=100))
        await c.v1.transfers.create_async(transfer_params(destination, group="order_o2"))
        listed = await c.v1.transfers.list_async(params={"transfer_group": "order_o1"})
        assert [t.id for t in listed.data] == [second.id, first.id] and not listed.has_more

        reversal = await c.v1.transfers.reversals.create_async(first.id, params={"amount": 100})
        assert reversal.object == "transfer_reversal" and reversal.transfer == first.id
        assert reversal.amount == 100
        reversed_ = fake_stripe.reverse_transfer(first.id)
        assert reversed_["reversed"] and reversed_["amount_reversed"] == 455
        assert reversed_["reversals"]["total_count"] == 2
        with pytest.raises(stripe.InvalidRequestError):
            await c.v1.transfers.reversals.create_async(first.id)

    asyncio.run(main())


def test_a_transfer_processed_but_never_answered_is_replayed_on_retry(fake_stripe: FakeStripe):
    async def main() -> None:
        c = client(fake_stripe)
        destination = await onboarded_account(c, fake_stripe)
        held = fake_stripe.hold_after("POST", "/v1/transfers")
        options: Any = {"idempotency_key": "payout-o1"}
        call = asyncio.create_task(
            c.v1.transfers.create_async(transfer_params(destination), options=options))
        assert await asyncio.to_thread(held.processed.wait, 5)
        held.release.set()  # the fake drops the connection: the client never learns the transfer's id
        with pytest.raises(stripe.APIConnectionError):
            await call
        assert held.record is not None and held.record.status is None

        fake_stripe.fail_next(1, 500)  # faults still come first on the new routes
        with pytest.raises(stripe.APIError):
            await c.v1.transfers.create_async(transfer_params(destination), options=options)
        retried = await c.v1.transfers.create_async(transfer_params(destination), options=options)
        assert held.record.response is not None and retried.id == held.record.response["id"]
        assert [r.response["id"] for r in fake_stripe.transfers_created() if r.response] == [retried.id]

    asyncio.run(main())


def test_without_records_transfers_are_still_stored():
    fake = FakeStripe(record=False).start()
    try:
        async def main() -> None:
            c = client(fake)
            destination = await onboarded_account(c, fake)
            await c.v1.transfers.create_async(transfer_params(destination))
        asyncio.run(main())
        assert fake.requests == [] and len(fake.transfers) == 1
        with pytest.raises(RuntimeError):
            fake.transfers_created()
    finally:
        fake.stop()
