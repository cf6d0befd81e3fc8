"""POST /webhooks/stripe: verify the signature on the raw body, store the event, answer at once.

Processing happens in the worker (app.checkout.events), so the processor gets its 200 in milliseconds however
busy we are. A bad or missing signature stores nothing; a duplicate delivery is acknowledged and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import stripe
from litestar import Request, Response, post
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncSession

from app.checkout.contract import ContractBroken, Envelope, envelope
from app.db.engine import Db
from app.worker.queue import enqueue

TOLERANCE_SECONDS = 300
MAX_ATTEMPTS = 12  # with the queue's exponential back-off, a day and more of retries


def _refuse(message: str) -> Response[dict[str, str]]:
    return Response({"error": message}, status_code=400)


async def store(db: AsyncSession, event: Envelope, body: bytes) -> bool:
    """Insert the event and its processing job in one transaction; False when this event id was stored before."""
    row = await db.execute(
        text("INSERT INTO payment_events (stripe_id, type, livemode, api_version, created, payload) "
             "VALUES (:id, :type, :livemode, :api_version, :created, CAST(:payload AS jsonb)) "
             "ON CONFLICT (stripe_id) DO NOTHING RETURNING id"),
        {"id": event.id, "type": event.type, "livemode": event.livemode, "api_version": event.api_version,
         "created": event.created, "payload": body.decode()},
    )
    event_id = row.scalar_one_or_none()
    if event_id is not None:
        await enqueue(db, "checkout.process_event", {"event_id": event_id}, max_attempts=MAX_ATTEMPTS)
    await db.commit()
    return event_id is not None


@post("/webhooks/stripe", opt={"exclude_from_csrf": True}, status_code=200, include_in_schema=False)
async def stripe_webhook(request: Request[Any, Any, Any], db: Db) -> Response[dict[str, Any]]:
    return await receive(request, db, request.app.state.settings.webhook_secret)


@post("/webhooks/stripe/connect", opt={"exclude_from_csrf": True}, status_code=200, include_in_schema=False)
async def stripe_connect_webhook(request: Request[Any, Any, Any], db: Db) -> Response[dict[str, Any]]:
    """Events about connected accounts (account.updated …), which Stripe signs with the Connect endpoint's own
    secret. They are stored and processed exactly like the platform's own."""
    return await receive(request, db, request.app.state.settings.connect_webhook_secret)


async def receive(request: Request[Any, Any, Any], db: Db, secret: str) -> Response[dict[str, Any]]:
    settings = request.app.state.settings
    body = await request.body()
    signature = request.headers.get("stripe-signature")
    try:
        stripe.Webhook.construct_event(body, signature, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        return _refuse("invalid or missing signature")
    except ValueError:
        return _refuse("the body is not valid JSON")
    except (AttributeError, TypeError, KeyError):  # signed, valid JSON, but not an object the client can read
        return _refuse("not an event")
    try:
        event = envelope(json.loads(body))
    except (ContractBroken, ValueError, TypeError, OverflowError) as exc:
        return _refuse(f"not an event: {exc}")
    if event.livemode != settings.livemode:
        mode = "live" if settings.livemode else "test"
        return _refuse(f"this endpoint takes {mode}-mode events only")
    try:
        stored = await store(db, event, body)
    except DataError:  # e.g. a \u0000 escape, which PostgreSQL's jsonb cannot hold
        await db.rollback()
        return _refuse("the event cannot be stored as JSON")
    return Response({"received": True, "duplicate": not stored}, status_code=200)


ROUTES = [stripe_webhook, stripe_connect_webhook]
