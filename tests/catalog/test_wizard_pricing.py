"""The item wizard's pricing step over HTTP: free, fixed and pay-what-you-want prices as people type them, in
the creator's currency, and their inline (HTMX) validation."""

from __future__ import annotations

import re

import psycopg
import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, field_of, new_item
from tests.catalog.item_helpers import base_details, field_errors, item_row
from tests.conftest import csrf_token, post_form, sign_up

# -------------------------------------------------------------------------------- pricing


@pytest.fixture
def priced_item(creator: CreatorSetup) -> str:
    return new_item(creator.client, "text", **base_details("text"))


def prices(db: psycopg.Connection, public_id: str) -> tuple:
    return item_row(db, public_id, "price_mode", "price_cents", "min_price_cents", "suggested_price_cents")


def test_free_is_the_default_and_can_be_chosen(creator: CreatorSetup, priced_item: str,
                                               db: psycopg.Connection) -> None:
    assert prices(db, priced_item) == ("free", 0, 0, 0)
    post_form(creator.client, f"/creator/items/{priced_item}/pricing", {"price_mode": "fixed", "price": "9"})
    response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                         {"price_mode": "free", "price": "9", "min_price": "junk"})
    assert response.status_code == 303
    assert prices(db, priced_item) == ("free", 0, 0, 0)


FIXED_OK = [("4.99", 499), ("$4.99", 499), ("4,99", 499), ("€4,9", 490), ("£5", 500), (" 12.30 ", 1230),
            ("0.50", 50), ("1000000", 100_000_000), ("1000000.00", 100_000_000)]
FIXED_BAD = [
    ("abc", "Price: enter an amount like 4.99."), ("-1", "Price: enter an amount like 4.99."),
    ("4.999", "Price: enter an amount like 4.99."), ("1e3", "Price: enter an amount like 4.99."),
    ("4.99.1", "Price: enter an amount like 4.99."), ("", "Price is required."),
    ("0.49", "Price must be at least 0.50."), ("0", "Price must be at least 0.50."),
    ("1000000.01", "Price must be at most 1,000,000."),
]
PWYW_OK = [("0", "5", (0, 500)), ("0.50", "0.50", (50, 50)), ("2", "7.50", (200, 750)),
           ("$1,5", "3", (150, 300)), ("", "5", (0, 500))]  # no minimum typed: free to take
PWYW_BAD = [
    ({"min_price": "0.30", "suggested_price": "5"}, "min_price",
     "The minimum must be 0 (free allowed) or at least 0.50."),
    ({"min_price": "5", "suggested_price": "4"}, "suggested_price", "Suggested price must be at least 5.00."),
    ({"min_price": "0", "suggested_price": "0.20"}, "suggested_price",
     "Suggested price must be at least 0.50."),
    ({"min_price": "0", "suggested_price": "0"}, "suggested_price", "Suggested price must be at least 0.50."),
    ({"min_price": "abc", "suggested_price": "5"}, "min_price", "Minimum price: enter an amount like 4.99."),
    ({"min_price": "-1", "suggested_price": "5"}, "min_price", "Minimum price: enter an amount like 4.99."),
    ({"min_price": "1", "suggested_price": ""}, "suggested_price", "Suggested price is required."),
    ({"min_price": "1", "suggested_price": "1000000.01"}, "suggested_price",
     "Suggested price must be at most 1,000,000."),
]


def test_fixed_price_amounts_people_type(creator: CreatorSetup, priced_item: str,
                                         db: psycopg.Connection) -> None:
    for typed, cents in FIXED_OK:
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": "fixed", "price": typed})
        assert response.status_code == 303, typed
        assert prices(db, priced_item) == ("fixed", cents, 0, 0), typed


def test_bad_fixed_prices_are_refused(creator: CreatorSetup, priced_item: str,
                                      db: psycopg.Connection) -> None:
    post_form(creator.client, f"/creator/items/{priced_item}/pricing", {"price_mode": "fixed", "price": "3"})
    for typed, message in FIXED_BAD:
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": "fixed", "price": typed})
        assert response.status_code == 422, typed
        fragment = field_of(response.text, "price")
        assert message in fragment, typed
        assert f'value="{typed}"' in fragment, typed
        assert prices(db, priced_item) == ("fixed", 300, 0, 0), typed


def test_pay_what_you_want_is_stored_in_cents(creator: CreatorSetup, priced_item: str,
                                              db: psycopg.Connection) -> None:
    for minimum, suggested, cents in PWYW_OK:
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": "pwyw", "price": "99", "min_price": minimum,
                              "suggested_price": suggested})
        assert response.status_code == 303, (minimum, suggested)
        # price_cents holds the least a buyer pays: the minimum
        assert prices(db, priced_item) == ("pwyw", cents[0], *cents), (minimum, suggested)


def test_bad_pay_what_you_want_is_refused(creator: CreatorSetup, priced_item: str,
                                          db: psycopg.Connection) -> None:
    for data, name, message in PWYW_BAD:
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": "pwyw", **data})
        assert response.status_code == 422, data
        assert message in field_of(response.text, name), data
        assert prices(db, priced_item) == ("free", 0, 0, 0), data


def test_unknown_price_mode_is_refused(creator: CreatorSetup, priced_item: str,
                                       db: psycopg.Connection) -> None:
    for mode in ("", "auction", "FIXED"):
        response = post_form(creator.client, f"/creator/items/{priced_item}/pricing",
                             {"price_mode": mode, "price": "5"})
        assert response.status_code == 422, mode
        assert "Pick free, a fixed price, or pay what you want." in field_of(response.text,
                                                                              "price_mode"), mode
        assert prices(db, priced_item) == ("free", 0, 0, 0), mode


def test_prices_are_shown_back_in_the_creators_currency(client: TestClient, db: psycopg.Connection) -> None:
    sign_up(client, "eurmaker")
    assert post_form(client, "/sell", {"tier": "basic", "currency": "EUR"}).status_code == 303
    public_id = new_item(client, "text", **base_details("text"))
    assert item_row(db, public_id, "currency") == ("EUR",)
    assert "Prices are in EUR." in client.get(f"/creator/items/{public_id}/pricing").text
    post_form(client, f"/creator/items/{public_id}/pricing", {"price_mode": "fixed", "price": "4,99"})
    assert 'value="4.99"' in field_of(client.get(f"/creator/items/{public_id}/pricing").text, "price")
    assert "<dt>Price</dt><dd>€4.99</dd>" in client.get(f"/creator/items/{public_id}/publish").text
    post_form(client, f"/creator/items/{public_id}/pricing",
              {"price_mode": "pwyw", "min_price": "2", "suggested_price": "7.5"})
    assert "Pay what you want · from €2.00 <span class=\"muted\">(suggested €7.50)</span>" in \
        client.get(f"/i/{public_id}").text


def test_saved_pay_what_you_want_with_zero_minimum_can_be_saved_again(creator: CreatorSetup, priced_item: str,
                                                                       db: psycopg.Connection) -> None:
    url = f"/creator/items/{priced_item}/pricing"
    post_form(creator.client, url, {"price_mode": "pwyw", "min_price": "0", "suggested_price": "5"})
    page = creator.client.get(url).text
    shown = {name: re.search(r'value="([^"]*)"', field_of(page, name)).group(1)  # type: ignore[union-attr]
             for name in ("price", "min_price", "suggested_price")}
    # "Save and continue", untouched:
    response = post_form(creator.client, url, {"price_mode": "pwyw", **shown})
    assert response.status_code == 303, field_errors(response.text)
    assert prices(db, priced_item) == ("pwyw", 0, 0, 500)


def test_inline_validation_of_pricing(creator: CreatorSetup, priced_item: str,
                                      db: psycopg.Connection) -> None:
    response = creator.client.post(
        f"/creator/items/{priced_item}/validate/pricing",
        data={"price_mode": "fixed", "price": "4.999", "min_price": "x",
              "_csrf_token": csrf_token(creator.client)},
        headers={"HX-Request": "true", "HX-Trigger-Name": "price"},
    )
    assert response.status_code == 200
    assert "Price: enter an amount like 4.99." in field_of(response.text, "price")
    assert field_errors(response.text) == ["Price: enter an amount like 4.99."]
    ok = creator.client.post(
        f"/creator/items/{priced_item}/validate/pricing",
        data={"price_mode": "fixed", "price": "4.99", "_csrf_token": csrf_token(creator.client)},
        headers={"HX-Request": "true", "HX-Trigger-Name": "price"},
    )
    assert field_errors(ok.text) == []
    assert prices(db, priced_item) == ("free", 0, 0, 0)
