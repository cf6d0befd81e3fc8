"""The webhook contract (app.checkout.contract): the API version we are pinned to and every field we read.

Three things are held together here: the contract itself (pinned literally, so renaming a field fails this test
rather than production), the development processor (the events it sends carry every field the contract names),
and the processing (an event missing any field we read fails visibly, as a contract error, instead of half
applying).
"""

from __future__ import annotations

import asyncio
import copy
import secrets
from typing import Any
from urllib.parse import unquote

import pytest

from app.checkout import contract
from app.checkout.devprocessor import DevProcessor
from app.checkout.gateway import PaymentRequest, RefundRequest, SubscriptionRequest
from app.settings import Settings
from tests.checkout import stripe_events
from tests.conftest import TEST_SECRET

# Metadata keys belong to one kind of session each; contract.facts lets the other kind's keys be absent.
METADATA = ("metadata.order_id", "metadata.creator_id", "metadata.tier", "metadata.payout_id")
# Transfers are reversed at the processor only (by its dashboard or API); the development processor never does.
PROCESSOR_ONLY = {"transfer.reversed", "transfer.updated"}
METADATA_OF_MODE = {"payment": ("metadata.order_id",), "subscription": ("metadata.creator_id", "metadata.tier")}


def test_the_pinned_versions():
    assert contract.API_VERSION == "2026-10-28.endive"
    assert contract.CONTRACT_VERSION == 1
    assert stripe_events.API_VERSION == contract.API_VERSION  # the tests' events are rendered in the same version


def test_the_fields_we_read_are_pinned():
    session = ("id", "mode", "status", "payment_status", "payment_intent", "amount_total", "currency",
               "customer_details.email", "metadata.order_id", "subscription", "customer", "metadata.creator_id",
               "metadata.tier")
    charge = ("id", "amount", "amount_refunded", "currency", "payment_intent", "transfer_group")
    dispute = ("id", "amount", "currency", "charge", "payment_intent", "status")
    subscription = ("id", "customer", "status", "metadata.creator_id", "metadata.tier")
    invoice = ("id", "customer", "parent.subscription_details.subscription")
    account = ("id", "charges_enabled", "payouts_enabled", "details_submitted", "requirements.currently_due",
               "requirements.disabled_reason")
    transfer = ("id", "amount", "amount_reversed", "currency", "destination", "transfer_group", "metadata.payout_id")
    assert contract.READS == {
        "checkout.session.completed": session,
        "checkout.session.async_payment_succeeded": session,
        "checkout.session.async_payment_failed": session,
        "checkout.session.expired": session,
        "charge.refunded": charge,
        "charge.dispute.created": dispute,
        "charge.dispute.closed": dispute,
        "customer.subscription.created": subscription,
        "customer.subscription.updated": subscription,
        "customer.subscription.deleted": subscription,
        "invoice.paid": invoice,
        "invoice.payment_failed": invoice,
        "account.updated": account,
        "transfer.reversed": transfer,
        "transfer.updated": transfer,
    }
    assert contract.EVENT_FIELDS == ("id", "object", "type", "created", "livemode", "api_version", "data.object")


# --- The development processor sends what we read -------------------------------------------------------------


class Recording(DevProcessor):
    """The development processor with its deliveries kept instead of POSTed: the events exactly as it sends them
    (built by devprocessor.event(), session_object(), charge_object(), dispute_object(), subscription_object()
    and invoice_object())."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[dict[str, Any]] = []

    async def deliver(self, payload: dict[str, Any], *, connect: bool = False) -> None:
        self.sent.append(payload)


async def _every_dev_event() -> dict[str, list[dict[str, Any]]]:
    processor = Recording(Settings(mode="test", secret_key=TEST_SECRET, base_url="http://testserver.local"))

    async def session(request: PaymentRequest | SubscriptionRequest) -> dict[str, Any]:
        create = (processor.create_checkout if isinstance(request, PaymentRequest)
                  else processor.create_subscription_checkout)
        checkout = await create(request)  # type: ignore[arg-type]
        return processor.open(unquote(checkout.url.rsplit("/", 1)[1]))  # the page's token is the session

    def order(order_id: str) -> PaymentRequest:
        return PaymentRequest(order_id=order_id, description="Night Drive — Fairshelf", amount_cents=499,
                              currency="USD", email="fan@example.com", success_url="http://testserver.local/ok",
                              cancel_url="http://testserver.local/")

    await processor.pay(await session(order("ordpaid00001")))
    await processor.pay_later(await session(order("ordlater0001")), succeeds=True)
    await processor.pay_later(await session(order("ordlater0002")), succeeds=False)
    await processor.expire(await session(order("ordexpire001")))
    disputed = await session(order("orddispute01"))
    for outcome in ("open", "won", "lost"):
        await processor.dispute(disputed, outcome)
    await processor.refund(RefundRequest(order_id="ordpaid00001", payment_intent_id="pi_dev_0123456789abcdef01234567",
                                         amount_cents=499, currency="USD", charge_id=None))
    tier = await session(SubscriptionRequest(
        creator_id=7, tier="small_files", description="Fairshelf Small Files tier", amount_cents=1000,
        currency="USD", email="maker@example.com", customer_id=None, success_url="http://testserver.local/ok",
        cancel_url="http://testserver.local/", attempt=secrets.token_hex(12)))
    await processor.pay(tier)
    await processor.invoice_failed(tier)
    await processor.end_subscription(tier)
    account = await processor.create_account(7, "maker@example.com")
    await processor.onboard(account, complete=False)
    await processor.onboard(account, complete=True)

    by_type: dict[str, list[dict[str, Any]]] = {}
    for payload in processor.sent:
        by_type.setdefault(payload["type"], []).append(payload)
    return by_type


@pytest.fixture(scope="module")
def dev_events() -> dict[str, list[dict[str, Any]]]:
    """Every event the development processor sends, by type: paying, paying later (succeeding and failing),
    expiring, disputes opened, won and lost, a refund, a tier subscription paid, failing and ended, and a payout
    account's onboarding left incomplete and then completed."""
    return asyncio.run(_every_dev_event())


def test_the_development_processor_sends_every_event_type_we_handle(dev_events):
    assert set(dev_events) == set(contract.READS) - PROCESSOR_ONLY


@pytest.mark.parametrize("event_type", sorted(set(contract.READS) - PROCESSOR_ONLY))
def test_the_development_processor_sends_every_field_we_read(event_type, dev_events):
    for payload in dev_events[event_type]:
        envelope = contract.envelope(payload)  # every envelope field, or ContractBroken
        assert (envelope.type, envelope.api_version, envelope.livemode) == (event_type, contract.API_VERSION, False)
        obj = payload["data"]["object"]
        paths = contract.READS[event_type]
        if obj["object"] == "checkout.session":
            # The session's own mode's metadata keys must be there; the other mode's are optional by design.
            paths = tuple(p for p in paths if p not in METADATA or p in METADATA_OF_MODE[obj["mode"]])
        missing = []
        for path in paths:
            try:
                contract.field(obj, path)
            except contract.ContractBroken:
                missing.append(path)
        assert missing == [], f"{event_type} ({obj.get('mode', obj['object'])}) lacks {missing}"
        contract.facts(event_type, obj)  # and the processing's own reading of it succeeds


# --- A missing field fails the event, as a contract error ---------------------------------------------------------


def _stripe_built(creator_id: int = 1) -> dict[str, dict[str, Any]]:
    """One event of every type we handle, built by the tests from Stripe's reference (tests/checkout/stripe_events)."""
    order_id, intent = "ord" + secrets.token_hex(4), "pi_" + secrets.token_hex(8)
    sub, customer = "sub_" + secrets.token_hex(8), "cus_" + secrets.token_hex(7)
    session = stripe_events.session(order_id, 499, session_id="cs_" + secrets.token_hex(12), payment_intent=intent)
    built = {f"checkout.session.{kind}": session for kind in
             ("completed", "async_payment_succeeded", "async_payment_failed", "expired")}
    built["charge.refunded"] = stripe_events.charge(order_id, 499, payment_intent=intent, refunded=499)
    for kind, status in (("created", "needs_response"), ("closed", "won")):
        built[f"charge.dispute.{kind}"] = stripe_events.dispute(499, payment_intent=intent, status=status)
    for kind, status in (("created", "active"), ("updated", "past_due"), ("deleted", "canceled")):
        built[f"customer.subscription.{kind}"] = stripe_events.subscription(
            sub, customer=customer, status=status, creator_id=creator_id, tier="small_files")
    for kind, paid in (("paid", True), ("payment_failed", False)):
        built[f"invoice.{kind}"] = stripe_events.invoice(sub, customer=customer, paid=paid)
    built["account.updated"] = stripe_events.account("acct_" + secrets.token_hex(8), ready=True)
    for kind in ("reversed", "updated"):
        built[f"transfer.{kind}"] = stripe_events.transfer("tr_" + secrets.token_hex(12), payout_id="p" * 16,
                                                            amount=2500, destination="acct_x", reversed_amount=2500)
    assert set(built) == set(contract.READS)
    return built


def without(obj: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of `obj` without the key at the dotted `path`."""
    copied = copy.deepcopy(obj)
    *parents, last = path.split(".")
    inner = copied
    for part in parents:
        inner = inner[part]
    del inner[last]
    return copied


def test_an_event_missing_a_field_we_read_fails_as_a_contract_error(inbox, db):
    expected, sent = {}, {}
    for event_type, obj in _stripe_built().items():
        for path in contract.READS[event_type]:
            if path in METADATA:
                continue  # optional by design: see the next test
            removals = [path] + ([path.split(".")[0]] if "." in path else [])  # the field, or what holds it
            for removed in removals:
                if (event_type, removed) in sent:
                    continue  # a parent removed once already (it holds several fields we read)
                payload = stripe_events.event(event_type, without(obj, removed))
                inbox.deliver(payload)
                sent[event_type, removed] = payload
                # A removed parent fails on the first field under it that the contract reads.
                expected[event_type, removed] = ("failed", f"contract: {obj['object']} has no field {path!r}")
    inbox.process()

    assert {key: inbox.state(payload) for key, payload in sent.items()} == expected
    # A contract error is not retried: the job ends at once, and the event waits on the admin page.
    assert db.execute("SELECT state, attempts, count(*) FROM jobs GROUP BY 1, 2").fetchall() == [
        ("failed", 1, len(sent))]


def test_metadata_keys_are_optional_where_the_processing_allows(creator, inbox, db):
    maker = db.execute("SELECT user_id FROM creators").fetchone()[0]
    built = _stripe_built(maker)
    tier_session = stripe_events.subscription_session(maker, "small_files", 1000, session_id="cs_" + secrets.token_hex(12),
                                                       subscription_id="sub_" + secrets.token_hex(8),
                                                       customer_id="cus_" + secrets.token_hex(7))
    no_creator = ("failed", "contract: subscription metadata names no creator (None)")
    cases = {
        # A payment session without our order id is not one we created.
        ("checkout.session.completed", "payment", "metadata.order_id"): ("ignored", ""),
        # A tier session must name its creator and tier.
        ("checkout.session.completed", "subscription", "metadata.creator_id"): no_creator,
        ("checkout.session.completed", "subscription", "metadata.tier"): ("failed", "contract: unknown tier None"),
        ("customer.subscription.created", "", "metadata.creator_id"): no_creator,
        ("customer.subscription.updated", "", "metadata.creator_id"): no_creator,
        ("customer.subscription.deleted", "", "metadata.creator_id"): no_creator,
        # A subscription without a tier keeps the creator's tier; its status still applies.
        ("customer.subscription.created", "", "metadata.tier"): ("processed", ""),
    }
    sent = {}
    for key in cases:
        event_type, mode, path = key
        obj = tier_session if mode == "subscription" else built[event_type]
        sent[key] = stripe_events.event(event_type, without(obj, path))
        inbox.deliver(sent[key])
    inbox.process()

    assert {key: inbox.state(payload) for key, payload in sent.items()} == cases
    assert db.execute("SELECT tier, tier_status FROM creators").fetchone() == ("basic", "active")


def test_an_event_without_an_envelope_field_is_refused(client, settings, inbox):
    payload = stripe_events.event("charge.refunded", _stripe_built()["charge.refunded"])
    answers = {}
    for path in contract.EVENT_FIELDS:
        response = stripe_events.deliver(client, without(payload, path), settings.webhook_secret)
        answers[path] = (response.status_code, response.json()["error"].startswith("not an event"))
    assert answers == dict.fromkeys(contract.EVENT_FIELDS, (400, True))
    assert inbox.count() == 0
