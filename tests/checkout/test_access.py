"""Who gets a file, and the library: access after buying, refunds and creator changes; free claims; purchases
made without an account and claimed later; text excerpts; new-version badges; library search."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from app.db.engine import make_engine, make_sessionmaker
from app.discovery.pages import refresh_lists
from tests.catalog.conftest import new_item, other_browser, ready_file, run_jobs
from tests.catalog.item_helpers import publish
from tests.checkout import stripe_events
from tests.checkout.conftest import location_path, order_row
from tests.conftest import last_email, post_form, sign_up, token_from


def paid(shop, client, db, **form):  # type: ignore[no-untyped-def]
    order_id = shop.start(client, **form)
    shop.pay(order_id, db, client)
    return order_id


def file_status(client, item: str, kind: str = "stream") -> int:  # type: ignore[no-untyped-def]
    return client.get(f"/i/{item}/{kind}", follow_redirects=False).status_code


def test_only_owners_get_a_signed_link(shop, fan, visitor, settings, db):
    paid(shop, fan, db)
    with other_browser(settings) as other:
        sign_up(other, "other_fan", email="other@example.com")
        for kind in ("stream", "download"):
            assert file_status(visitor, shop.item_id, kind) == 403
            assert file_status(other, shop.item_id, kind) == 403
            assert file_status(fan, shop.item_id, kind) == 302
            assert file_status(shop.creator.client, shop.item_id, kind) == 302
        refused = other.get(f"/i/{shop.item_id}/download")
        assert "buy it to play or download it" in refused.text
    assert file_status(fan, "nosuchitem12") == 404
    # The link is short-lived: minutes for a small file.
    link = fan.get(f"/i/{shop.item_id}/download", follow_redirects=False).headers["location"]
    expires = int(parse_qs(urlsplit(link).query)["e"][0])
    assert 9 * 60 <= expires - time.time() <= 11 * 60
    # Another item's file cannot be fetched through this item's address.
    other_file = db.execute("SELECT public_id FROM uploads WHERE purpose = 'file' LIMIT 1").fetchone()[0]
    assert fan.get(f"/i/{shop.item_id}/download?file=nosuchfile", follow_redirects=False).status_code == 404
    assert file_status(fan, shop.item_id, f"download?file={other_file}") == 302


def test_buyers_keep_access_when_the_creator_archives_or_deletes(shop, fan, db):
    paid(shop, fan, db)
    creator = shop.creator.client
    assert post_form(creator, f"/creator/items/{shop.item_id}/status", {"status": "archived"}).status_code == 303
    assert file_status(fan, shop.item_id, "download") == 302
    assert "Night Drive" in fan.get("/library").text
    assert post_form(creator, f"/creator/items/{shop.item_id}/delete", {}).status_code == 303
    assert file_status(fan, shop.item_id, "download") == 302
    assert "Night Drive" in fan.get("/library").text
    # …but nobody can start buying it any more.
    assert fan.get(f"/i/{shop.item_id}/buy").status_code == 404


def test_buying_what_you_own_or_your_own_item_is_refused_kindly(shop, fan, db):
    paid(shop, fan, db)
    again = post_form(fan, f"/i/{shop.item_id}/buy", {})
    assert again.status_code == 303 and again.headers["location"] == "/library"
    assert "You already own this item" in fan.get("/library").text
    own = post_form(shop.creator.client, f"/i/{shop.item_id}/buy", {})
    assert own.status_code == 303 and own.headers["location"] == "/library"
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    assert "You already have this" in fan.get(f"/i/{shop.item_id}/buy").text


def test_free_items_are_claimed_without_checkout(shop, fan, visitor, db):
    creator = shop.creator.client
    assert post_form(creator, f"/creator/items/{shop.item_id}/pricing", {"price_mode": "free"}).status_code == 303
    assert "Get it free" in visitor.get(f"/i/{shop.item_id}").text
    anonymous = post_form(visitor, f"/i/{shop.item_id}/buy", {})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    claimed = post_form(fan, f"/i/{shop.item_id}/buy", {})
    assert claimed.status_code == 303 and claimed.headers["location"] == "/library"
    assert post_form(fan, f"/i/{shop.item_id}/buy", {}).status_code == 303  # twice is harmless
    library = fan.get("/library").text
    assert "Night Drive" in library and "free" in library
    assert db.execute("SELECT count(*) FROM entitlements").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0


def test_a_purchase_without_an_account_is_claimed_through_the_receipt(shop, visitor, settings, db):
    order_id = shop.start(visitor, email="Guest@Example.com")
    order = order_row(db, order_id)
    assert order["buyer_id"] is None and order["buyer_email"] == "guest@example.com"
    completed = stripe_events.event("checkout.session.completed", stripe_events.session(
        order_id, 499, session_id=order["checkout_session_id"], payment_intent="pi_" + order_id,
        email="guest@example.com"))
    stripe_events.deliver(visitor, completed, settings.webhook_secret)
    run_jobs(settings)
    assert "We emailed a receipt to" in visitor.get(f"/orders/{order_id}").text
    receipt = last_email(db, "guest@example.com", "receipt")
    claim_path = urlsplit(next(w for w in receipt.split() if "/claim/" in w)).path
    page = visitor.get(claim_path).text
    assert "1 purchase made with" in page and f'href="/signup?next={claim_path}"' in page
    # Signing up from the link comes back to it, and the purchase joins the new library.
    signup = visitor.get(f"/signup?next={claim_path}")
    assert claim_path in signup.text
    response = post_form(visitor, "/signup", {"email": "someone.else@example.com", "username": "late_guest",
                                              "display_name": "Late Guest", "password": "correct horse battery",
                                              "next": claim_path})
    assert response.status_code == 303 and response.headers["location"] == claim_path
    assert post_form(visitor, claim_path, {}).status_code == 303
    assert "Night Drive" in visitor.get("/library").text
    assert file_status(visitor, shop.item_id) == 302
    assert post_form(visitor, "/claim/not-a-real-token", {}).status_code == 400


def test_verifying_an_email_claims_earlier_purchases(shop, visitor, settings, db):
    order_id = shop.start(visitor, email="early@example.com")
    shop.pay(order_id, db, visitor)
    with other_browser(settings) as later:
        sign_up(later, "early_bird", email="early@example.com")
        assert "Night Drive" not in later.get("/library").text  # not before the address is proven theirs
        token = token_from(last_email(db, "early@example.com", "verify_email"))
        later.get(f"/verify-email?token={token}")
        assert "Night Drive" in later.get("/library").text


def test_text_items_show_an_excerpt_until_bought(creator, fan, visitor, db):
    body = "\n\n".join(f"Paragraph {n}: " + "words " * 60 for n in range(1, 8))
    public_id = new_item(creator.client, "text", title="Long Essay", ai_label="handmade", body=body)
    post_form(creator.client, f"/creator/items/{public_id}/pricing", {"price_mode": "fixed", "price": "3"})
    assert publish(creator.client, public_id).status_code == 303
    page = visitor.get(f"/i/{public_id}").text
    assert "Paragraph 1:" in page and "Paragraph 7:" not in page and "to read the rest" in page
    from tests.checkout.conftest import Shop

    shop = Shop(creator, public_id, creator.settings)
    paid(shop, fan, db)
    owned = fan.get(f"/i/{public_id}").text
    assert "Paragraph 7:" in owned and "to read the rest" not in owned


def test_library_search_pages_and_new_version_badge(shop, fan, db, tmp_path):
    paid(shop, fan, db)
    library = fan.get("/library").text
    assert "New version" not in library and "song.mp3" in library
    assert "Night Drive" in fan.get("/library?q=night").text
    assert "Nothing in your library matches" in fan.get("/library?q=zebra").text
    assert fan.get("/library?after=garbage").status_code == 400

    creator = shop.creator.client
    url = f"/creator/items/{shop.item_id}"
    assert post_form(creator, f"{url}/versions", {"label": "2.0", "changelog": "Remastered."}).status_code == 303
    ready_file(creator, shop.settings, shop.item_id, tmp_path, name="song-v2.mp3")
    assert post_form(creator, f"{url}/versions/publish", {}).status_code == 303
    library = fan.get("/library").text
    assert "New version" in library and "Version 2.0" in library and "Version 1.0" in library
    assert "song-v2.mp3" in library and "Remastered." in library
    download = fan.get(f"/i/{shop.item_id}/download", follow_redirects=False)
    assert "song-v2.mp3" in fan.get(location_path(download)).headers["content-disposition"]
    assert "New version" not in fan.get("/library").text


def test_popular_counts_only_recent_sales(shop, fan, db, settings):
    paid(shop, fan, db)
    assert db.execute("SELECT sales_count, recent_sales FROM items").fetchone() == (1, 1)
    db.execute("UPDATE orders SET paid_at = now() - interval '8 days'")

    async def refresh() -> None:
        engine = make_engine(settings)
        async with make_sessionmaker(engine)() as session:
            await refresh_lists(session)
            await session.commit()
        await engine.dispose()

    asyncio.run(refresh())
    assert db.execute("SELECT sales_count, recent_sales FROM items").fetchone() == (1, 0)


@pytest.mark.parametrize("path", ["/library", "/creator/sales", "/creator/billing"])
def test_personal_pages_need_a_login(visitor, path):
    response = visitor.get(path, follow_redirects=False)
    assert response.status_code in (303, 401) and "/login" in response.headers.get("location", "/login")
