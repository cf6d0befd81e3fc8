from __future__ import annotations

from litestar import get
from litestar.testing import TestClient

from app.main import create_app
from tests.conftest import ROOT, make_settings, sign_up


def test_home_page_renders_with_security_headers(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "0%" in response.text and "<main" in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_no_inline_script_or_style_in_pages(client):
    for path in ("/", "/search?q=x", "/signup", "/login", "/forgot-password"):
        html = client.get(path).text
        assert "<script>" not in html and "<style" not in html and " style=" not in html, path


def test_forms_carry_a_csrf_token_but_public_pages_for_visitors_do_not(client):
    for path in ("/signup", "/login", "/forgot-password"):
        assert 'hx-headers=\'{"X-CSRF-Token": "' in client.get(path).text, path
    public = client.get("/")
    assert "X-CSRF-Token" not in public.text and "set-cookie" not in public.headers
    sign_up(client)
    assert 'hx-headers=\'{"X-CSRF-Token": "' in client.get("/").text


def test_unknown_page_is_a_full_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "There is nothing at this address." in response.text and "<nav" in response.text


def test_htmx_errors_become_toasts(client):
    response = client.get("/no/such/page", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert response.headers["hx-reswap"] == "none"
    assert '"toast"' in response.headers["hx-trigger"] and "nothing at this address" in response.headers["hx-trigger"]
    assert response.content == b""


def test_wrong_method_is_a_405_page(client):
    response = client.put("/login", headers={"x-csrf-token": "x"})
    assert response.status_code in (403, 405)
    assert client.get("/logout").status_code == 405


def test_unexpected_errors_are_a_500_page_without_details(settings):
    @get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internals")

    app = create_app(settings)
    app.register(boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
        assert response.status_code == 500
        assert "something broke on our side" in response.text and "secret internals" not in response.text
        toast = client.get("/boom", headers={"HX-Request": "true"})
        assert toast.status_code == 500 and "something broke on our side" in toast.headers["hx-trigger"]


def test_health_reports_the_database(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}


def test_health_reports_unreachable_storage_as_degraded_not_down(database_url, tmp_path):
    from socket import socket

    with socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    broken = make_settings(database_url, var_dir=tmp_path, storage="s3", s3_bucket="media",
                           s3_endpoint_url=f"http://127.0.0.1:{closed}", s3_access_key="x", s3_secret_key="y")
    with TestClient(create_app(broken)) as client:
        response = client.get("/health")
        assert response.status_code == 200, "object storage being down must not take the site out of rotation"
        body = response.json()
        assert body["status"] == "degraded" and body["checks"]["database"] == "ok"
        assert body["checks"]["storage"].startswith("degraded")


def test_health_reports_a_dead_database(database_url):
    broken = make_settings(database_url.replace("/fairshelf_test", "/no_such_database"))
    with TestClient(create_app(broken)) as client:
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "down"


def test_metrics_count_requests_by_route_and_show_the_queue(client):
    sign_up(client, "metric_one")  # queues a verification email job
    client.get("/")
    client.get("/no/such/page")
    text = client.get("/metrics").text
    assert 'fairshelf_http_requests_total{method="GET",route="/",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert 'fairshelf_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/"}' in text
    assert 'fairshelf_jobs{kind="mail.send",state="queued"} 1.0' in text
    assert 'fairshelf_db_pool_connections{state="size"}' in text
    # What an operator watches of payments: the webhook backlog and the payout queue (all quiet here).
    for line in ('fairshelf_webhook_events_unprocessed{state="received"} 0.0', "fairshelf_webhook_lag_seconds 0.0",
                 'fairshelf_payouts{state="scheduled"} 0.0', 'fairshelf_payouts{state="failed_last_day"} 0.0',
                 "fairshelf_payouts_oldest_due_seconds 0.0", "fairshelf_sales_not_credited 0.0"):
        assert line in text


def test_static_files_and_vendored_htmx(client):
    page = client.get("/").text
    assert "/static/vendor/htmx/htmx-2.0.11.min.js?v=" in page
    js = client.get("/static/vendor/htmx/htmx-2.0.11.min.js")
    assert js.status_code == 200 and 'version:"2.0.11"' in js.text
    assert (ROOT / "static/vendor/htmx/LICENSE").read_text().startswith("Zero-Clause BSD")
    assert client.get("/static/css/app.css").status_code == 200


def test_dev_mailbox_exists_in_development_only(client, database_url):
    assert client.get("/dev/mail").status_code == 200
    production = make_settings(
        database_url, mode="production", secret_key="k" * 48, base_url="https://fairshelf.example",
        dev_mailbox=False, smtp_host="smtp.example", stripe_secret_key="sk_live_x", stripe_webhook_secret="whsec_x",
    )
    with TestClient(create_app(production), base_url="https://fairshelf.example") as prod:
        assert prod.get("/dev/mail").status_code == 404
        assert "Development mailbox" not in prod.get("/").text


def test_flash_message_shows_once(client):
    sign_up(client, "flash_one", display_name="Flash One")
    assert "Welcome to Fairshelf, Flash One!" in client.get("/account").text
    assert "Welcome to Fairshelf" not in client.get("/account").text


def test_forged_flash_cookie_is_ignored(client):
    client.cookies.set("fairshelf_flash", "W1siZXJyb3IiLCJoYWNrZWQiXV0.forged", domain="testserver.local")
    assert "hacked" not in client.get("/").text
