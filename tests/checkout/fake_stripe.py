"""A local stand-in for Stripe's API, speaking its wire format, for running the real `stripe` client against.

A small threaded HTTP server (stdlib http.server, 127.0.0.1, a free port) that answers the few endpoints the app
calls, the way Stripe's API reference describes them: form-encoded requests in Stripe's bracket notation
(line_items[0][price_data][unit_amount]=499), JSON objects back, errors as {"error": {"type": ..., "message": ...}}.

It records every request it receives (method, path, the form parameters as sent, the headers) and honours
idempotency like Stripe: a request repeating an Idempotency-Key gets the first response again (the same object id,
with Idempotent-Replayed: true), and the same key with different parameters is refused (400 idempotency_error).

Faults can be queued (`fail_next`): a 500 or 429 in Stripe's error shape, or a connection closed without an
answer. A fault stands for trouble before Stripe's idempotency layer ran, so it is never saved under the key and
a retry with the same key is processed afresh.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    query: dict[str, str]
    pairs: list[tuple[str, str]]  # the form parameters in the order sent, keys flattened as on the wire
    headers: dict[str, str]  # lower-cased names
    status: int | None = None  # what the fake answered (None: it closed the connection instead)
    response: dict[str, Any] | None = None

    @property
    def form(self) -> dict[str, str]:
        """The flattened parameters as sent: {"line_items[0][quantity]": "1", ...}."""
        return dict(self.pairs)

    def params(self) -> dict[str, Any]:
        """The parameters nested: {"line_items": [{"quantity": "1", ...}], ...}."""
        return nest(self.pairs)

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


@dataclass
class FakeStripe:
    """Stripe's API for the endpoints the app uses, over HTTP on 127.0.0.1. Use `running()` or start()/stop()."""

    secret_key_prefix: str = "sk_test_"
    requests: list[Recorded] = field(default_factory=list)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → {"amount", "currency", ...}
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _faults: list[str] = field(default_factory=list)
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

    def add_payment_intent(self, payment_intent_id: str, amount: int, currency: str = "usd") -> None:
        """A payment that succeeded, so it can be refunded."""
        with self._lock:
            self.payment_intents[payment_intent_id] = {"amount": amount, "currency": currency, "refunded": 0,
                                                       "charge": "ch_" + secrets.token_hex(12)}

    def add_subscription(self, subscription_id: str, customer: str = "cus_test", **metadata: str) -> None:
        with self._lock:
            self.subscriptions[subscription_id] = {
                "id": subscription_id, "object": "subscription", "customer": customer, "status": "active",
                "metadata": metadata, "livemode": False, "created": int(time.time()), "canceled_at": None,
            }

    # --- Reading what it received

    def received(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or r.path == path)]

    def last(self, method: str, path: str) -> Recorded:
        found = self.received(method, path)
        assert found, f"the fake received no {method} {path}; it got {[(r.method, r.path) for r in self.requests]}"
        return found[-1]

    # --- Answering (called from the server's threads)

    def _handle(self, record: Recorded) -> tuple[int | None, dict[str, Any] | None, dict[str, str]]:
        with self._lock:
            self.requests.append(record)
            fault = self._faults.pop(0) if self._faults else None
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

    def _cancel_subscription(self, subscription_id: str) -> tuple[int, dict[str, Any]]:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return _error(404, "invalid_request_error", f"No such subscription: '{subscription_id}'",
                          param="id", code="resource_missing")
        subscription.update(status="canceled", canceled_at=int(time.time()))
        return 200, dict(subscription)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    stripe: FakeStripe

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test output is for the tests
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        record = Recorded(
            method=self.command, path=parts.path, query=dict(parse_qsl(parts.query)),
            pairs=parse_qsl(body, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        status, payload, headers = self.stripe._handle(record)
        record.status, record.response = status, payload
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
