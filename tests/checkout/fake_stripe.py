"""A local stand-in for Stripe's API, speaking its wire format, for running the real `stripe` client against.

A small threaded HTTP server (stdlib http.server, 127.0.0.1, a free port) that answers the few endpoints the app
calls, the way Stripe's API reference describes them: form-encoded requests in Stripe's bracket notation
(line_items[0][price_data][unit_amount]=499), JSON objects back, errors as {"error": {"type": ..., "message": ...}}.

It records every request it receives (method, path, the form parameters as sent, the headers) and honours
idempotency like Stripe: a request repeating an Idempotency-Key gets the first response again (the same object id,
with Idempotent-Replayed: true), and the same key with different parameters is refused (400 idempotency_error).

Faults can be queued (`fail_next`): a 500 or 429 in Stripe's error shape, or a connection closed without an
answer. A fault stands for trouble before Stripe's idempotency layer ran, so it is never saved under the key and
a retry with the same key is processed afresh. `hold_after` is the opposite trouble: the request is processed
and saved under its key, and then never answered (a worker killed between Stripe's call and its own write).

Connect payouts are covered too: Express accounts and their onboarding links, payment intents with their
charge and balance transaction (Stripe's fee), transfers to connected accounts and their reversals.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation as the nested structure it stands for: a[b][0][c]=1 → {"a": {"b": [{"c": "1"}]}}.
    Values stay strings, as on the wire; containers whose keys are all indices become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        parts = [key] if match is None else [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts):
            if part == "":  # a[]=x: append
                part = str(len(node))
            if i == len(parts) - 1:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {k: _lists(v) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]  # the query string, one value a key (see query_pairs for repeated keys)
    pairs: list[tuple[str, str]]  # the form parameters in the order sent, keys flattened as on the wire
    headers: dict[str, str]  # lower-cased names
    status: int | None = None  # what the fake answered (None: it closed the connection instead)
    response: dict[str, Any] | None = None  # also set for a held request: what it would have answered
    query_pairs: list[tuple[str, str]] = field(default_factory=list)  # the query string in the order sent
    replayed: bool = False  # answered from the idempotency store (Idempotent-Replayed: true)

    @property
    def form(self) -> dict[str, str]:
        """The flattened parameters as sent: {"line_items[0][quantity]": "1", ...}."""
        return dict(self.pairs)

    def params(self) -> dict[str, Any]:
        """The parameters nested: {"line_items": [{"quantity": "1", ...}], ...}."""
        return nest(self.pairs)

    def query_params(self) -> dict[str, Any]:
        """The query string nested, as a GET's parameters: {"expand": ["latest_charge"], ...}."""
        return nest(self.query_pairs)

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def stripe_version(self) -> str | None:
        return self.headers.get("stripe-version")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


def _error(status: int, kind: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message, **extra}}


def _new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}" if prefix == "cs" else f"{prefix}_{secrets.token_hex(12)}"


def _missing(param: str) -> tuple[int, dict[str, Any]]:
    return _error(400, "invalid_request_error", f"Missing required param: {param}.", param=param,
                  code="parameter_missing")


def standard_fee(amount: int) -> int:
    """Stripe's standard US card pricing, 2.9 % + 30¢, the percentage rounded half up: 499 → 14 + 30 = 44."""
    return (amount * 29 + 500) // 1000 + 30


_DUE = ["external_account", "individual.dob.day", "tos_acceptance.date"]


@dataclass
class Held:
    """A request the fake processes (and saves under its idempotency key) but never answers: `hold_after`."""

    method: str
    path_prefix: str
    processed: threading.Event = field(default_factory=threading.Event)  # set once the request was processed
    release: threading.Event = field(default_factory=threading.Event)  # set it to drop the connection sooner
    record: Recorded | None = None  # the held request, once one came


@dataclass
class FakeStripe:
    """Stripe's API for the endpoints the app uses, over HTTP on 127.0.0.1. Use `running()` or start()/stop()."""

    secret_key_prefix: str = "sk_test_"
    record: bool = True  # False: keep no request records (benchmarks); the objects are still stored
    requests: list[Recorded] = field(default_factory=list)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → {"amount", "currency", ...}
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → Account object
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → Transfer object, oldest first
    _transfer_groups: dict[str, list[str]] = field(default_factory=dict)  # transfer_group → transfer ids
    _faults: deque[str] = field(default_factory=deque)
    _holds: list[Held] = field(default_factory=list)  # armed, first come first held
    _held: list[Held] = field(default_factory=list)  # every hold ever armed, to release on stop()
    _replies: dict[str, tuple[str, str, list[tuple[str, str]], int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- Running it

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeStripe:
        fake = self

        class Handler(_Handler):
            stripe = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # keep-alive connections of the client must not hold up stop()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-stripe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for held in self._held:
            held.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[FakeStripe]:
        fake = cls().start()
        try:
            yield fake
        finally:
            fake.stop()

    # --- Arranging

    def fail_next(self, count: int = 1, status: int | str = 500) -> None:
        """Answer the next `count` requests with a fault: 500 (api_error), 429 (too many requests, code
        rate_limit) or "close" (the connection is closed without an answer)."""
        if status not in (500, 429, "close"):
            raise ValueError(f"unknown fault {status!r}")
        with self._lock:
            self._faults.extend([str(status)] * count)

    def hold_after(self, method: str, path_prefix: str) -> Held:
        """Process the next request for `method` and a path starting with `path_prefix` as usual (the object
        created, the result saved under its idempotency key), set `processed`, then never answer it: wait for
        `release` (30 s at most) and close the connection. One-shot."""
        held = Held(method, path_prefix)
        with self._lock:
            self._holds.append(held)
            self._held.append(held)
        return held

    def add_payment_intent(self, payment_intent_id: str, amount: int, currency: str = "usd",
                           transfer_group: str | None = None, fee: int | None = None) -> None:
        """A payment that succeeded, so it can be refunded and its charge's balance transaction read. `fee`:
        Stripe's, by default its standard card pricing (`standard_fee`)."""
        with self._lock:
            self.payment_intents[payment_intent_id] = {
                "amount": amount, "currency": currency, "refunded": 0,
                "charge": "ch_" + secrets.token_hex(12),
                "transfer_group": transfer_group, "fee": standard_fee(amount) if fee is None else fee,
                "balance_transaction": "txn_" + secrets.token_hex(12), "created": int(time.time()),
            }

    def add_subscription(self, subscription_id: str, customer: str = "cus_test", **metadata: str) -> None:
        with self._lock:
            self.subscriptions[subscription_id] = {
                "id": subscription_id, "object": "subscription", "customer": customer, "status": "active",
                "metadata": metadata, "livemode": False, "created": int(time.time()), "canceled_at": None,
            }

    def complete_onboarding(self, account_id: str, payouts_enabled: bool = True) -> dict[str, Any]:
        """The account's holder finished onboarding: details submitted and, with payouts_enabled, everything
        enabled and nothing due; without, the bank account still past due and nothing enabled. Returns the
        account as Stripe would now show it (for an account.updated event)."""
        with self._lock:
            account = self.accounts[account_id]
            due = [] if payouts_enabled else ["external_account"]
            account.update(charges_enabled=payouts_enabled, payouts_enabled=payouts_enabled,
                           details_submitted=True,
                           capabilities={"transfers": "active" if payouts_enabled else "inactive"})
            account["requirements"].update(
                currently_due=list(due), eventually_due=list(due), past_due=list(due),
                pending_verification=[], current_deadline=None, errors=[],
                disabled_reason=None if payouts_enabled else "requirements.past_due")
            return copy.deepcopy(account)

    def reverse_transfer(self, transfer_id: str, amount: int | None = None) -> dict[str, Any]:
        """Reverse (part of) a transfer, as the platform could from the Dashboard. Returns the transfer as
        Stripe would now show it (for a transfer.reversed event)."""
        with self._lock:
            status, body = self._reverse(transfer_id, amount, {})
            assert status == 200, body
            return copy.deepcopy(self.transfers[transfer_id])

    # --- Reading what it received

    def received(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or r.path == path)]

    def last(self, method: str, path: str) -> Recorded:
        found = self.received(method, path)
        assert found, f"the fake received no {method} {path}; it got {[(r.method, r.path) for r in self.requests]}"
        return found[-1]

    def transfers_created(self) -> list[Recorded]:
        """The POST /v1/transfers that created a transfer: answered 200 (or held after creating one), not
        idempotent replays. Reads the records, so needs record=True (else count `transfers`)."""
        if not self.record:
            raise RuntimeError("FakeStripe(record=False) keeps no records: count fake.transfers instead")
        with self._lock:
            return [r for r in self.requests
                    if r.method == "POST" and r.path == "/v1/transfers" and not r.replayed
                    and r.response is not None and r.response.get("object") == "transfer"]

    # --- Answering (called from the server's threads)

    def _handle(self, record: Recorded) -> tuple[int | None, dict[str, Any] | None, dict[str, str]]:
        with self._lock:
            if self.record:
                self.requests.append(record)
            fault = self._faults.popleft() if self._faults else None
        if fault == "close":
            return None, None, {}
        if fault == "500":
            status, body = _error(500, "api_error", "An unknown error occurred (injected by the fake).")
            return status, body, {}
        if fault == "429":
            status, body = _error(429, "invalid_request_error", "Too many requests (injected by the fake).",
                                  code="rate_limit")
            return status, body, {}

        auth = record.authorization or ""
        if not auth.startswith("Bearer " + self.secret_key_prefix):
            status, body = _error(401, "invalid_request_error", "Invalid API Key provided.")
            return status, body, {}

        status, body, headers = self._answer(record)
        with self._lock:
            held = next((h for h in self._holds
                         if h.method == record.method and record.path.startswith(h.path_prefix)), None)
            if held is not None:
                self._holds.remove(held)
        if held is None:
            return status, body, headers
        record.response, held.record = body, record
        held.processed.set()
        held.release.wait(30)
        return None, None, {}  # the connection is closed without an answer

    def _answer(self, record: Recorded) -> tuple[int, dict[str, Any], dict[str, str]]:
        key = record.idempotency_key
        with self._lock:
            if key is not None and key in self._replies:
                method, path, pairs, status, body = self._replies[key]
                if (method, path, sorted(pairs)) != (record.method, record.path, sorted(record.pairs)):
                    status, body = _error(
                        400, "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.")
                    return status, body, {}
                record.replayed = True
                return status, body, {"Idempotent-Replayed": "true"}
            status, body = self._route(record)
            # Stripe saves the result once the endpoint has run; not when the parameters failed validation.
            if key is not None and (status < 400 or "param" not in body["error"]):
                self._replies[key] = (record.method, record.path, list(record.pairs), status, body)
        return status, body, {}

    def _route(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        method, path = record.method, record.path
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(record)
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(record)
        match = re.fullmatch(r"/v1/subscriptions/([^/]+)", path)
        if method == "DELETE" and match:
            return self._cancel_subscription(match.group(1))
        if path == "/v1/accounts" and method == "POST":
            return self._create_account(record)
        if path == "/v1/account_links" and method == "POST":
            return self._create_account_link(record)
        if path == "/v1/transfers":
            if method == "POST":
                return self._create_transfer(record)
            if method == "GET":
                return self._list_transfers(record)
        match = re.fullmatch(r"/v1/(accounts|payment_intents|transfers)/([^/]+)(/reversals)?", path)
        if match:
            kind, object_id, reversals = match.groups()
            if method == "GET" and kind == "accounts" and not reversals:
                return self._retrieve_account(object_id)
            if method == "GET" and kind == "payment_intents" and not reversals:
                return self._retrieve_payment_intent(object_id, record.query_params().get("expand") or [])
            if method == "GET" and kind == "transfers" and not reversals:
                transfer = self.transfers.get(object_id)
                if transfer is None:
                    return _error(404, "invalid_request_error", f"No such transfer: '{object_id}'",
                                  param="id", code="resource_missing")
                return 200, copy.deepcopy(transfer)
            if method == "POST" and kind == "transfers" and reversals:
                p = record.params()
                return self._reverse(object_id, p.get("amount"), p.get("metadata") or {})
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_session(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        p = record.params()
        mode = p.get("mode")
        if mode not in ("payment", "subscription", "setup"):
            return _error(400, "invalid_request_error", "Missing required param: mode.", param="mode",
                          code="parameter_missing")
        items = p.get("line_items")
        if mode != "setup" and not isinstance(items, list):
            return _error(400, "invalid_request_error", "Missing required param: line_items.", param="line_items",
                          code="parameter_missing")
        total, currency = 0, None
        for i, line in enumerate(items or []):
            price = line.get("price_data") or {}
            try:
                total += int(price["unit_amount"]) * int(line.get("quantity", "1"))
            except (KeyError, ValueError):
                return _error(400, "invalid_request_error", f"Invalid line_items[{i}][price_data].",
                              param=f"line_items[{i}][price_data]")
            if (mode == "subscription") != ("recurring" in price):
                return _error(400, "invalid_request_error",
                              "You must provide at least one recurring price in `subscription` mode and only "
                              "one-time prices in `payment` mode.", param=f"line_items[{i}]")
            currency = currency or price.get("currency")
        session_id = _new_id("cs")
        now = int(time.time())
        session = {
            "id": session_id, "object": "checkout.session", "mode": mode, "status": "open",
            "payment_status": "unpaid", "url": f"https://checkout.stripe.com/c/pay/{session_id}#fake",
            "amount_total": total, "amount_subtotal": total, "currency": currency,
            "metadata": p.get("metadata", {}), "client_reference_id": p.get("client_reference_id"),
            "customer": p.get("customer"), "customer_email": p.get("customer_email"), "customer_details": None,
            "payment_intent": None, "subscription": None, "success_url": p.get("success_url"),
            "cancel_url": p.get("cancel_url"), "livemode": False, "created": now, "expires_at": now + 86400,
        }
        self.sessions[session_id] = session
        return 200, session

    def _create_refund(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        p = record.params()
        pi_id = p.get("payment_intent")
        if not pi_id and not p.get("charge"):
            return _error(400, "invalid_request_error", "One of `charge` or `payment_intent` is required.",
                          code="parameter_missing")
        pi = self.payment_intents.get(pi_id or "")
        if pi is None:
            return _error(404, "invalid_request_error", f"No such payment_intent: '{pi_id}'",
                          param="payment_intent", code="resource_missing")
        amount = int(p.get("amount", pi["amount"] - pi["refunded"]))
        if amount <= 0 or pi["refunded"] + amount > pi["amount"]:
            return _error(400, "invalid_request_error", f"Charge {pi['charge']} has already been refunded.",
                          code="charge_already_refunded")
        pi["refunded"] += amount
        return 200, {
            "id": "re_" + secrets.token_hex(12), "object": "refund", "amount": amount, "currency": pi["currency"],
            "charge": pi["charge"], "payment_intent": pi_id, "reason": p.get("reason"), "status": "succeeded",
            "metadata": p.get("metadata", {}), "created": int(time.time()),
        }

    # --- Connect: accounts, onboarding links, transfers (all called under the lock)

    def _create_account(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        p = record.params()
        kind = p.get("type")
        if kind is None and "controller" not in p:
            return _missing("type")
        if kind is not None and kind not in ("express", "standard", "custom"):
            return _error(400, "invalid_request_error",
                          "Invalid type: must be one of custom, express, or standard", param="type")
        account_id = "acct_" + secrets.token_hex(8)
        account = {
            "id": account_id, "object": "account", "type": kind or "none", "email": p.get("email"),
            "country": p.get("country") or "US", "default_currency": "usd",
            "business_type": p.get("business_type"),
            "charges_enabled": False, "payouts_enabled": False, "details_submitted": False,
            "capabilities": {"transfers": "inactive"},
            "requirements": {"currently_due": list(_DUE), "eventually_due": list(_DUE), "past_due": [],
                             "pending_verification": [], "disabled_reason": "requirements.past_due",
                             "current_deadline": None, "errors": [], "alternatives": []},
            "metadata": p.get("metadata") or {}, "created": int(time.time()), "livemode": False,
        }
        self.accounts[account_id] = account
        return 200, copy.deepcopy(account)

    def _retrieve_account(self, account_id: str) -> tuple[int, dict[str, Any]]:
        account = self.accounts.get(account_id)
        if account is None:
            return _error(404, "invalid_request_error", f"No such account: '{account_id}'", param="account",
                          code="resource_missing")
        return 200, copy.deepcopy(account)

    def _create_account_link(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        p = record.params()
        for param in ("account", "refresh_url", "return_url", "type"):
            if not p.get(param):
                return _missing(param)
        if p["type"] not in ("account_onboarding", "account_update"):
            return _error(400, "invalid_request_error",
                          "Invalid type: must be one of account_onboarding or account_update", param="type")
        if p["account"] not in self.accounts:
            return _error(404, "invalid_request_error", f"No such account: '{p['account']}'", param="account",
                          code="resource_missing")
        now = int(time.time())
        return 200, {"object": "account_link", "created": now, "expires_at": now + 300,
                     "url": f"https://connect.stripe.com/setup/e/{p['account']}/{secrets.token_hex(12)}"}

    def _retrieve_payment_intent(self, pi_id: str, expand: list[str]) -> tuple[int, dict[str, Any]]:
        pi = self.payment_intents.get(pi_id)
        if pi is None:
            return _error(404, "invalid_request_error", f"No such payment_intent: '{pi_id}'", param="intent",
                          code="resource_missing")
        amount, currency, fee = pi["amount"], pi["currency"], pi["fee"]
        balance_transaction: str | dict[str, Any] = pi["balance_transaction"]
        if "latest_charge.balance_transaction" in expand:
            balance_transaction = {
                "id": pi["balance_transaction"], "object": "balance_transaction", "amount": amount,
                "currency": currency, "fee": fee, "net": amount - fee,
                "fee_details": [{"amount": fee, "currency": currency, "type": "stripe_fee",
                                 "description": "Stripe processing fees", "application": None}],
                "type": "charge", "reporting_category": "charge", "source": pi["charge"], "status": "pending",
                "description": None, "exchange_rate": None, "available_on": pi["created"] + 2 * 86400,
                "created": pi["created"],
            }
        latest_charge: str | dict[str, Any] = pi["charge"]
        if "latest_charge" in expand or "latest_charge.balance_transaction" in expand:
            latest_charge = {
                "id": pi["charge"], "object": "charge", "amount": amount, "amount_captured": amount,
                "amount_refunded": pi["refunded"], "refunded": pi["refunded"] == amount, "captured": True,
                "paid": True, "status": "succeeded", "currency": currency, "payment_intent": pi_id,
                "transfer_group": pi["transfer_group"], "balance_transaction": balance_transaction,
                "livemode": False, "created": pi["created"],
            }
        return 200, {
            "id": pi_id, "object": "payment_intent", "amount": amount, "amount_received": amount,
            "currency": currency, "status": "succeeded", "transfer_group": pi["transfer_group"],
            "latest_charge": latest_charge, "livemode": False, "created": pi["created"],
        }

    def _create_transfer(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        p = record.params()
        for param in ("amount", "currency", "destination"):
            if not p.get(param):
                return _missing(param)
        try:
            amount = int(p["amount"])
        except ValueError:
            return _error(400, "invalid_request_error", f"Invalid integer: {p['amount']}", param="amount")
        if amount < 1:
            return _error(400, "invalid_request_error", "This value must be greater than or equal to 1.",
                          param="amount")
        destination = p["destination"]
        account = self.accounts.get(destination)
        if account is None:
            return _error(400, "invalid_request_error", f"No such destination: '{destination}'",
                          param="destination", code="resource_missing")
        if account["capabilities"].get("transfers") != "active":
            return _error(400, "invalid_request_error",
                          "Your destination account needs to have at least one of the following capabilities "
                          "enabled: transfers, crypto_transfers, legacy_payments",
                          code="insufficient_capabilities_for_transfer")
        transfer_id = "tr_" + secrets.token_hex(12)
        transfer = {
            "id": transfer_id, "object": "transfer", "amount": amount, "amount_reversed": 0,
            "currency": p["currency"].lower(), "destination": destination,
            "destination_payment": "py_" + secrets.token_hex(12), "transfer_group": p.get("transfer_group"),
            "description": p.get("description"), "metadata": p.get("metadata") or {}, "reversed": False,
            "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                          "url": f"/v1/transfers/{transfer_id}/reversals"},
            "balance_transaction": "txn_" + secrets.token_hex(12), "source_transaction": None,
            "source_type": "card", "created": int(time.time()), "livemode": False,
        }
        self.transfers[transfer_id] = transfer
        if transfer["transfer_group"]:
            self._transfer_groups.setdefault(transfer["transfer_group"], []).append(transfer_id)
        return 200, copy.deepcopy(transfer)

    def _list_transfers(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        q = record.query_params()
        try:
            limit = int(q.get("limit", 10))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _error(400, "invalid_request_error", "This value must be between 1 and 100.",
                          param="limit")
        group = q.get("transfer_group")
        ids = reversed(self._transfer_groups.get(group, [])) if group else reversed(self.transfers.keys())
        page = [copy.deepcopy(self.transfers[i]) for i in islice(ids, limit + 1)]
        return 200, {"object": "list", "data": page[:limit], "has_more": len(page) > limit,
                     "url": "/v1/transfers"}

    def _reverse(self, transfer_id: str, amount: Any, metadata: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            return _error(404, "invalid_request_error", f"No such transfer: '{transfer_id}'", param="id",
                          code="resource_missing")
        left = transfer["amount"] - transfer["amount_reversed"]
        if left == 0:
            return _error(400, "invalid_request_error",
                          f"Transfer {transfer_id} has already been fully reversed.")
        try:
            amount = left if amount is None else int(amount)
        except ValueError:
            return _error(400, "invalid_request_error", f"Invalid integer: {amount}", param="amount")
        if not 1 <= amount <= left:
            return _error(400, "invalid_request_error",
                          f"Reversal amount ({amount}) must be between 1 and the transfer's unreversed "
                          f"amount ({left}).", param="amount")
        reversal = {
            "id": "trr_" + secrets.token_hex(12), "object": "transfer_reversal", "amount": amount,
            "currency": transfer["currency"], "transfer": transfer_id,
            "balance_transaction": "txn_" + secrets.token_hex(12), "destination_payment_refund": None,
            "source_refund": None, "metadata": metadata, "created": int(time.time()),
        }
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        reversals = transfer["reversals"]
        reversals["data"].insert(0, reversal)
        reversals["total_count"] += 1
        return 200, copy.deepcopy(reversal)

    def _cancel_subscription(self, subscription_id: str) -> tuple[int, dict[str, Any]]:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return _error(404, "invalid_request_error", f"No such subscription: '{subscription_id}'",
                          param="id", code="resource_missing")
        subscription.update(status="canceled", canceled_at=int(time.time()))
        return 200, dict(subscription)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between
    stripe: FakeStripe

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test output is for the tests
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        query = parse_qsl(parts.query, keep_blank_values=True)
        record = Recorded(
            method=self.command, path=parts.path, query=dict(query), query_pairs=query,
            pairs=parse_qsl(body, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        status, payload, headers = self.stripe._handle(record)
        record.status = status
        if payload is not None:  # a held request keeps what it would have answered
            record.response = payload
        if status is None or payload is None:
            self.close_connection = True  # no answer at all: the client sees the connection drop
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(7))
        self.send_header("Stripe-Version", record.stripe_version or "")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve
