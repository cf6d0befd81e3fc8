"""The processor's event payloads we depend on: the pinned API version and, per event type, the fields we read.

Both the webhook processing (which parses events through `facts`) and the development processor (which builds
events in the same shape) go through this module, and tests/checkout/test_contract.py pins every field: a field
renamed here, or missing from an event, fails the suite rather than production.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The Stripe API version our client sends (Stripe-Version) and our webhook endpoint is configured with. Events are
# rendered in the endpoint's version, so the shapes below are this version's.
API_VERSION = "2026-10-28.endive"
CONTRACT_VERSION = 1

SESSION = ("id", "mode", "status", "payment_status", "payment_intent", "amount_total", "currency",
           "customer_details.email", "metadata.order_id", "subscription", "customer", "metadata.creator_id",
           "metadata.tier")
CHARGE = ("id", "amount", "amount_refunded", "currency", "payment_intent", "transfer_group")
DISPUTE = ("id", "amount", "currency", "charge", "payment_intent", "status")
SUBSCRIPTION = ("id", "customer", "status", "metadata.creator_id", "metadata.tier")
INVOICE = ("id", "customer", "parent.subscription_details.subscription")
ACCOUNT = ("id", "charges_enabled", "payouts_enabled", "details_submitted", "requirements.currently_due",
           "requirements.disabled_reason")
TRANSFER = ("id", "amount", "amount_reversed", "currency", "destination", "transfer_group", "metadata.payout_id")

READS: dict[str, tuple[str, ...]] = {
    "checkout.session.completed": SESSION,
    "checkout.session.async_payment_succeeded": SESSION,
    "checkout.session.async_payment_failed": SESSION,
    "checkout.session.expired": SESSION,
    "charge.refunded": CHARGE,
    "charge.dispute.created": DISPUTE,
    "charge.dispute.closed": DISPUTE,
    "customer.subscription.created": SUBSCRIPTION,
    "customer.subscription.updated": SUBSCRIPTION,
    "customer.subscription.deleted": SUBSCRIPTION,
    "invoice.paid": INVOICE,
    "invoice.payment_failed": INVOICE,
    "account.updated": ACCOUNT,
    "transfer.reversed": TRANSFER,
    "transfer.updated": TRANSFER,
}
EVENT_FIELDS = ("id", "object", "type", "created", "livemode", "api_version", "data.object")


class ContractBroken(Exception):
    """An event lacks a field we depend on: retrying will not help; it is marked failed for a person to look at."""


class NotYetKnown(Exception):
    """The event refers to something an event still on its way will create (a dispute that overtook the payment's
    completion): the job retries it with back-off."""


def field(obj: dict[str, Any], path: str) -> Any:
    """The value at a dotted path; the key must be present (its value may be null)."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ContractBroken(f"{obj.get('object', 'object')} has no field {path!r}")
        value = value[part]
    return value


def fields(obj: dict[str, Any], paths: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every field of `paths`; those in `optional` may be absent (e.g. metadata keys set only in one mode)."""
    found = {}
    for path in paths:
        try:
            found[path] = field(obj, path)
        except ContractBroken:
            if path not in optional:
                raise
            found[path] = None
    return found


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    type: str
    created: datetime
    livemode: bool
    api_version: str
    object: dict[str, Any]


def envelope(event: dict[str, Any]) -> Envelope:
    values = fields(event, EVENT_FIELDS)
    if values["object"] != "event" or not isinstance(values["data.object"], dict):
        raise ContractBroken("not an event")
    return Envelope(id=str(values["id"]), type=str(values["type"]),
                    created=datetime.fromtimestamp(int(values["created"]), UTC), livemode=bool(values["livemode"]),
                    api_version=str(values["api_version"] or ""), object=values["data.object"])


def facts(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The fields we read from an event's object, checked against the contract."""
    # Metadata holds only what we set, so its keys depend on the kind of session (orders carry order_id, tier
    # subscriptions creator_id and tier); the handlers check the ones they need. Every other field is always
    # present in the processor's objects (null when it does not apply).
    return fields(obj, READS[event_type], ("metadata.order_id", "metadata.creator_id", "metadata.tier",
                                           "metadata.payout_id"))
