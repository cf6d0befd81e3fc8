"""Orders and access: starting a purchase, claiming free items and unclaimed purchases, who may have a file, and
settling an order's state from the facts the processor reported."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

import psycopg
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from psycopg.rows import dict_row
from sqlalchemy import BigInteger, bindparam, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.accounts.sessions import CurrentUser
from app.catalog.models import Item
from app.checkout.forms import BuyForm
from app.checkout.models import Entitlement, Order
from app.db.base import new_public_id
from app.db.engine import Compiled
from app.mail.service import Mailer
from app.media.models import Upload
from app.settings import Settings
from app.web.errors import AppError, Conflict, NotFound
from app.worker.queue import enqueue

BUYABLE = ("published", "unlisted")
CLAIM_DAYS = 90


def derived_state(order: Order | OrderFacts) -> str:
    """The order's state from its facts. Every fact only ever moves forward (a time is set once, the refunded
    amount only grows, a closed dispute stays closed), so events applied in any order end in the same state."""
    if order.paid_at is None:
        return "failed" if order.failed_at else "expired" if order.expired_at else "pending"
    if order.amount_refunded_cents >= order.amount_cents:
        return "refunded"
    if order.dispute_status == "open":
        return "disputed"
    if order.dispute_status == "lost":
        return "dispute_lost"
    return "paid"  # partly refunded and disputes won keep access


class NoAccess(AppError):
    status_code = 403
    title = "Not yours yet"


async def email_of(db: AsyncSession, user_id: int) -> str:
    return await db.scalar(select(User.email).where(User.id == user_id)) or ""


async def buy_page_facts(db: AsyncSession, item: Item,
                         viewer: CurrentUser | None) -> tuple[User | None, Upload | None, bool]:
    """What the buy page shows besides the item: its creator, its cover upload, and whether the viewer has it."""
    creator = await db.get(User, item.creator_id)
    cover = await db.get(Upload, item.cover_upload_id) if item.cover_upload_id else None
    owned = viewer is not None and (item.creator_id == viewer.id or await entitled(db, viewer.id, item.id))
    return creator, cover, owned


async def buyable_item(db: AsyncSession, public_id: str) -> Item:
    item = await db.scalar(select(Item).where(Item.public_id == public_id, Item.status.in_(BUYABLE),
                                              Item.deleted_at.is_(None)))
    if item is None:
        raise NotFound("This item is not for sale.")
    return item


ENTITLED = Compiled(select(exists().where(
    Entitlement.user_id == bindparam("user_id", type_=BigInteger),
    Entitlement.item_id == bindparam("item_id", type_=BigInteger), Entitlement.revoked_at.is_(None))))


async def entitled(db: AsyncSession | psycopg.AsyncConnection[Any], user_id: int, item_id: int) -> bool:
    """Whether this person owns the item (bought and not refunded, or claimed free)."""
    row = await ENTITLED.first(db, user_id=user_id, item_id=item_id)
    return bool(row[0])


async def accessible_item(db: AsyncSession, public_id: str, viewer: CurrentUser | None) -> Item:
    """The item, if this person may play or download it: its creator, someone who owns it (whatever the creator
    did to it since), or anyone when it is free and public. Everyone else is refused."""
    item = await db.scalar(select(Item).where(Item.public_id == public_id))
    if item is None:
        raise NotFound("There is no such item.")
    if viewer is not None and (item.creator_id == viewer.id or await entitled(db, viewer.id, item.id)):
        return item
    if item.deleted_at is None and item.status in BUYABLE:
        if item.price_mode == "free":
            return item
        raise NoAccess("This item is for sale: buy it to play or download it.")
    raise NotFound("There is no such item.")


async def start_order(db: AsyncSession, item: Item, buyer: CurrentUser | None, form: BuyForm,
                      livemode: bool) -> Order:
    if buyer is not None:
        if item.creator_id == buyer.id:
            raise Conflict("This is your own item: it is already in your library.")
        if await entitled(db, buyer.id, item.id):
            raise Conflict("You already own this item: it is in your library.")
    order = Order(public_id=new_public_id(), item_id=item.id, creator_id=item.creator_id,
                  buyer_id=buyer.id if buyer else None, buyer_email=form.email, amount_cents=form.amount_cents,
                  currency=item.currency, livemode=livemode, state="pending")
    db.add(order)
    await db.flush()
    return order


async def record_session(db: AsyncSession, order_id: int, session_id: str) -> None:
    """Remember the processor's session; a webhook that got there first may already have stored the same id."""
    await db.execute(update(Order).where(Order.id == order_id, Order.checkout_session_id.is_(None))
                     .values(checkout_session_id=session_id))


async def claim_free(db: AsyncSession, item: Item, user: CurrentUser) -> bool:
    """Add a free item to the library; False when it was already there."""
    if item.price_mode != "free":
        raise Conflict("This item is not free: buy it to add it to your library.")
    email = await email_of(db, user.id)
    row = await db.execute(
        insert(Entitlement).values(item_id=item.id, user_id=user.id, email=email)
        .on_conflict_do_nothing(index_elements=["user_id", "item_id"], index_where=text("order_id IS NULL"))
        .returning(Entitlement.id)
    )
    return row.scalar_one_or_none() is not None


def claim_tokens(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="claim-purchases")


def claim_email(settings: Settings, token: str) -> str:
    """The email a claim link was sent to (following the link proves the person reads that inbox)."""
    try:
        data = claim_tokens(settings).loads(token, max_age=CLAIM_DAYS * 86400)
    except SignatureExpired:
        raise AppError("This link has expired. Verify your email on your account page to claim purchases.") from None
    except BadSignature:
        raise AppError("This link is not valid.") from None
    return str(data["e"])


async def claim_by_email(db: AsyncSession, user_id: int, email: str) -> int:
    """Give this person the purchases made with `email` without an account; returns how many."""
    claimed = await db.execute(
        update(Order).where(Order.buyer_id.is_(None), Order.buyer_email == email).values(buyer_id=user_id)
        .returning(Order.id)
    )
    order_ids = list(claimed.scalars())
    if order_ids:
        await db.execute(update(Entitlement).where(Entitlement.order_id.in_(order_ids), Entitlement.user_id.is_(None))
                         .values(user_id=user_id))
    return len(order_ids)


async def order_page(db: AsyncSession, public_id: str) -> tuple[Order, Item, str]:
    """An order with its item and the creator's name, for its status page (the link is the secret)."""
    row = (await db.execute(
        select(Order, Item, User.display_name).join(Item, Item.id == Order.item_id)
        .join(User, User.id == Order.creator_id).where(Order.public_id == public_id)
    )).first()
    if row is None:
        raise NotFound("There is no such order.")
    return row[0], row[1], row[2]


@dataclass(slots=True)
class OrderFacts:
    """An order as the event handlers change it: read under its row lock, written back whole by `settle`."""

    id: int
    public_id: str
    item_id: int
    buyer_id: int | None
    buyer_email: str
    amount_cents: int
    currency: str
    state: str
    checkout_session_id: str | None
    payment_intent_id: str | None
    charge_id: str | None
    paid_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    amount_refunded_cents: int
    dispute_id: str | None
    dispute_status: str | None


_FACT_COLUMNS = ", ".join(f.name for f in fields(OrderFacts))
_CHANGING = ("state", "checkout_session_id", "payment_intent_id", "charge_id", "paid_at", "failed_at", "expired_at",
             "amount_refunded_cents", "dispute_id", "dispute_status")
_LOCK = {column: f"SELECT {_FACT_COLUMNS} FROM orders WHERE {column} = %s FOR UPDATE"
         for column in ("public_id", "payment_intent_id")}
_SAVE = f"UPDATE orders SET {', '.join(f'{c} = %({c})s' for c in _CHANGING)}, updated_at = now() WHERE id = %(id)s"


async def lock_order(conn: psycopg.AsyncConnection[Any], column: str, value: str | None) -> OrderFacts | None:
    """The order whose `column` (public_id or payment_intent_id) is `value`, locked until the transaction ends."""
    if not value:
        return None
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_LOCK[column], (value,))
        row = await cursor.fetchone()
    return OrderFacts(**row) if row else None


async def settle(db: AsyncSession, conn: psycopg.AsyncConnection[Any], order: OrderFacts) -> None:
    """Write the (locked) order's facts back with the state they give, and make access and counters follow."""
    before, after = order.state, derived_state(order)
    order.state = after
    await conn.execute(_SAVE, asdict(order))
    if before == after:
        return
    if after == "paid":
        await conn.execute(
            "INSERT INTO entitlements (item_id, user_id, email, order_id) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (order_id) WHERE order_id IS NOT NULL DO UPDATE SET revoked_at = NULL",
            (order.item_id, order.buyer_id, order.buyer_email, order.id))
    else:
        await conn.execute("UPDATE entitlements SET revoked_at = now() WHERE order_id = %s AND revoked_at IS NULL",
                           (order.id,))
    if "paid" in (before, after):
        # A delta under the item's row lock: recounting here would miss sales committing at the same moment.
        # (The popular list's window is recounted by discovery.refresh_lists.)
        delta = 1 if after == "paid" else -1
        await conn.execute("UPDATE items SET sales_count = greatest(sales_count + %(d)s, 0), "
                           "recent_sales = greatest(recent_sales + %(d)s, 0) WHERE id = %(item)s",
                           {"d": delta, "item": order.item_id})
    if before == "pending" and after == "paid":
        # The receipt and the creator's notice are written by their own job (once per order, after this commits),
        # so confirming a payment stays a handful of statements.
        await enqueue(db, "checkout.announce_sale", {"order_id": order.id}, dedupe_key=f"sale:{order.id}")


async def announce_sale(db: AsyncSession, order_id: int, mailer: Mailer, settings: Settings) -> None:
    """Queue the buyer's receipt and the creator's sale notice for a paid order."""
    order = await db.get(Order, order_id)
    if order is None:
        return
    row = (await db.execute(
        select(Item.title, Item.public_id, User.display_name, User.email).join(User, User.id == Item.creator_id)
        .where(Item.id == order.item_id)
    )).one()
    claim = claim_tokens(settings).dumps({"e": order.buyer_email}) if order.buyer_id is None else None
    await mailer.queue(db, order.buyer_email, "receipt", order=order, title=row.title or "Untitled",
                       item_id=row.public_id, creator=row.display_name, claim_token=claim)
    await mailer.queue(db, row.email, "sale", order=order, title=row.title or "Untitled", item_id=row.public_id,
                       creator=row.display_name)


async def count_unclaimed(db: AsyncSession, email: str) -> int:
    return await db.scalar(select(func.count()).select_from(Order).where(
        Order.buyer_id.is_(None), Order.buyer_email == email, Order.state == "paid")) or 0
