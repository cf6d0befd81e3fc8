"""Object storage down: browsing, search, checkout and webhooks keep working; media says it is temporarily
unavailable (503 at once, not a dead link); /health says degraded, not down."""

from __future__ import annotations

import socket
import time

import pytest
from litestar.testing import TestClient

from app.main import create_app
from tests.catalog.conftest import run_jobs
from tests.checkout import stripe_events
from tests.checkout.conftest import order_row
from tests.conftest import csrf_token, make_settings, post_form, sign_up


@pytest.fixture
def storage_down(shop, database_url, tmp_path):
    """The same database (a published item for sale), served by an app whose S3 endpoint refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings = make_settings(database_url, var_dir=tmp_path / "down", storage="s3", s3_bucket="media",
                             s3_endpoint_url=f"http://127.0.0.1:{closed}", s3_access_key="x", s3_secret_key="y")
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        yield client, settings


def test_browsing_search_and_checkout_work_while_media_is_unavailable(storage_down, shop, db):
    client, settings = storage_down
    started = time.monotonic()
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert time.monotonic() - started < 5, "the health probe must not wait out every retry"

    for path in ("/", "/@maker", f"/i/{shop.item_id}", "/search?q=night", "/search/suggest?q=nig"):
        assert client.get(path).status_code == 200, path
    assert "Night Drive" in client.get("/search?q=night").text

    sign_up(client, "offline_fan", email="offline@example.com")
    csrf_token(client)
    bought = post_form(client, f"/i/{shop.item_id}/buy", {})
    assert bought.status_code == 303 and "/dev/checkout/" in bought.headers["location"]
    order_id = db.execute("SELECT public_id FROM orders ORDER BY id DESC LIMIT 1").fetchone()[0]
    order = order_row(db, order_id)
    completed = stripe_events.event("checkout.session.completed", stripe_events.session(
        order_id, 499, session_id=order["checkout_session_id"], payment_intent="pi_" + order_id,
        email="offline@example.com"))
    assert stripe_events.deliver(client, completed, settings.webhook_secret).status_code == 200
    run_jobs(settings)
    assert order_row(db, order_id)["state"] == "paid"

    library = client.get("/library").text
    assert "Night Drive" in library and "Media temporarily unavailable" in library
    assert "/download?file=" not in library
    page = client.get(f"/i/{shop.item_id}").text
    assert "Media temporarily unavailable" in page and "<audio" not in page
    for path in (f"/i/{shop.item_id}/stream", f"/i/{shop.item_id}/download"):
        refused = client.get(path, follow_redirects=False)
        assert refused.status_code == 503, path
        assert "temporarily unavailable" in refused.text and refused.headers["retry-after"] == "30"


def test_media_links_come_back_when_storage_answers_again(shop, fan, db):
    """The breaker closes after a successful probe: the same app hands out links again."""
    order_id = shop.start(fan)
    shop.pay(order_id, db, fan)
    breaker = fan.app.state.storage_breaker
    breaker.failed("simulated outage")
    assert fan.get(f"/i/{shop.item_id}/stream", follow_redirects=False).status_code == 503
    assert fan.get("/health").json()["checks"]["storage"] == "ok"  # the probe succeeds and closes it
    assert fan.get(f"/i/{shop.item_id}/stream", follow_redirects=False).status_code == 302
