"""What a buyer may type at checkout: an amount (pay what you want) and, without an account, an email."""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts.forms import email_field
from app.catalog.forms import MAX_PRICE_CENTS, MIN_CHARGE_CENTS
from app.catalog.models import Item
from app.web.errors import FormInvalid
from app.web.forms import Errors
from app.web.text import format_money, parse_money


@dataclass(frozen=True, slots=True)
class BuyForm:
    amount_cents: int
    email: str

    @classmethod
    def parse(cls, data: dict[str, str], item: Item, account_email: str | None) -> BuyForm:
        errors = Errors()
        email = account_email or email_field(errors, data.get("email", ""))
        amount = item.price_cents
        if item.price_mode == "pwyw":
            least = max(item.min_price_cents, MIN_CHARGE_CENTS)
            raw = data.get("amount", "").strip()
            typed = parse_money(raw) if raw else item.suggested_price_cents
            if typed is None:
                errors.add("amount", "Enter an amount like 5 or 4.99.")
            elif typed < least:
                errors.add("amount", f"The least you can pay is {format_money(least, item.currency)}.")
            elif typed > MAX_PRICE_CENTS:
                errors.add("amount", f"The most you can pay is {format_money(MAX_PRICE_CENTS, item.currency)}.")
            else:
                amount = typed
        errors.raise_if_any(data)
        if amount <= 0:
            raise FormInvalid({"amount": "This item is free: add it to your library instead."}, data)
        return cls(amount_cents=amount, email=email.lower())
