"""/health and /metrics, and the middleware that times every request by route."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import text

from app.checkout import events as checkout_events
from app.db.engine import Db
from app.payouts import admin as payout_admin
from app.worker.queue import queue_stats


class Metrics:
    """The app's Prometheus metrics, on a registry of its own (one per app, so tests can build many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fairshelf_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram(
            "fairshelf_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=self.registry,
        )
        self.pool = Gauge("fairshelf_db_pool_connections", "Database pool connections", ["state"], registry=self.registry)
        self.jobs = Gauge("fairshelf_jobs", "Jobs waiting or running", ["kind", "state"], registry=self.registry)
        self.page_cache = Counter("fairshelf_page_cache", "Public page requests by cache outcome", ["result"],
                                  registry=self.registry)
        self.job_age = Gauge("fairshelf_jobs_oldest_due_seconds", "Age of the oldest due job", ["kind"],
                             registry=self.registry)
        self.webhooks = Gauge("fairshelf_webhook_events_unprocessed", "Stored payment events not processed yet",
                              ["state"], registry=self.registry)
        self.webhook_lag = Gauge("fairshelf_webhook_lag_seconds", "Age of the oldest payment event not processed",
                                 registry=self.registry)
        self.payouts = Gauge("fairshelf_payouts", "Open payouts by state, and those failed in the last day",
                             ["state"], registry=self.registry)
        self.payout_wait = Gauge("fairshelf_payouts_oldest_due_seconds", "How long the oldest due payout has waited",
                                 registry=self.registry)
        self.uncredited = Gauge("fairshelf_sales_not_credited", "Paid sales (last 5 weeks) older than an hour "
                                "without their ledger entry", registry=self.registry)


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            metrics: Metrics = scope["app"].state.metrics
            route = scope.get("path_template", "unmatched")
            metrics.requests.labels(scope["method"], route, str(status)).inc()
            metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)

    return middleware


async def count_unrouted(message: Message, scope: Scope) -> None:
    """before_send hook: count responses to paths no route matched (route middleware never sees them)."""
    if message["type"] == "http.response.start" and "path_template" not in scope:
        scope["app"].state.metrics.requests.labels(scope.get("method", "?"), "unmatched", str(message["status"])).inc()


@get("/health", cache=False, include_in_schema=False)
async def health(request: Request[Any, Any, Any], db: Db) -> Response[dict[str, Any]]:
    """Liveness and readiness: 200 when the database answers, 503 when it does not; degraded parts listed."""
    checks: dict[str, str] = {}
    try:
        await db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    breaker = request.app.state.storage_breaker
    checks["storage"] = "ok" if await breaker.probe() else f"degraded: {breaker.last_error}"[:200]
    # Without the database nothing works; without object storage browsing and buying still do.
    healthy = checks["database"] == "ok"
    status = "down" if not healthy else "ok" if checks["storage"] == "ok" else "degraded"
    body = {"status": status, "checks": checks}
    return Response(body, status_code=200 if healthy else 503, headers={"cache-control": "no-store"})


@get("/metrics", cache=False, include_in_schema=False)
async def metrics_endpoint(request: Request[Any, Any, Any], db: Db) -> Response[bytes]:
    metrics: Metrics = request.app.state.metrics
    pool = request.app.state.engine.pool
    metrics.pool.labels("size").set(pool.size())
    metrics.pool.labels("checked_out").set(pool.checkedout())
    metrics.pool.labels("overflow").set(max(pool.overflow(), 0))
    metrics.jobs.clear()
    metrics.job_age.clear()
    for kind, state, count, age in await queue_stats(db):
        metrics.jobs.labels(kind, state).set(count)
        if state == "queued":
            metrics.job_age.labels(kind).set(age)
    backlog = await checkout_events.backlog(db)
    for state, (count, _) in backlog.items():
        metrics.webhooks.labels(state).set(count)
    metrics.webhook_lag.set(max(age for _, age in backlog.values()))
    health = await payout_admin.queue_health(db)
    for state in ("scheduled", "processing"):
        metrics.payouts.labels(state).set(health[state])
    metrics.payouts.labels("failed_last_day").set(health["failed_last_day"])
    metrics.payout_wait.set(health["oldest_due_seconds"])
    metrics.uncredited.set(health["sales_not_credited"])
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST,
                    headers={"cache-control": "no-store"})
