"""What the creator's earnings page shows: earnings, balance, the next payout (or exactly why there is none),
payout history, and daily charts of sales and views. Every figure is read from the ledger or the counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Creator
from app.payouts import accounts, ledger, queue, stats
from app.payouts.models import OPEN_STATES, Payout
from app.settings import Settings
from app.web.text import format_money

CHART_DAYS = (30, 90)
CHART_WIDTH, CHART_HEIGHT = 600, 120


@dataclass(frozen=True, slots=True)
class NextPayout:
    date: datetime
    amount: int  # 0 when none will be made, and `blocked` says why
    blocked: str
    open: Payout | None  # a payout already on its way
    problem: bool  # the creator (or Fairshelf) must act, rather than wait for more sales


def next_payout(creator: Creator, account: accounts.AccountView, balance: ledger.Balance, open_payout: Payout | None,
                now: datetime, settings: Settings) -> NextPayout:
    when = queue.next_payout_date(now, settings)
    minimum = settings.payout_minimum_cents
    problem = True
    if creator.payouts_paused_reason:
        blocked = f"Payouts are paused: {creator.payouts_paused_reason}"
    elif not account.connected:
        blocked = "Connect a payout account to get paid."
    elif not account.ready:
        needed = ", ".join(account.still_needed) or "a few details"
        blocked = f"Your payout account is not ready yet. Stripe still needs: {needed}."
    else:
        problem = False
        blocked = "" if balance.available >= minimum else (
            f"Payouts start once your available balance reaches {format_money(minimum, balance.currency)}.")
    return NextPayout(when, 0 if blocked else balance.available, blocked, open_payout, problem)


async def open_payout(db: AsyncSession, creator_id: int) -> Payout | None:
    return (await db.scalars(select(Payout).where(Payout.creator_id == creator_id,
                                                  Payout.state.in_(OPEN_STATES)))).one_or_none()


async def history(db: AsyncSession, creator_id: int, limit: int = 20) -> list[Payout]:
    return list(await db.scalars(select(Payout).where(Payout.creator_id == creator_id)
                                 .order_by(Payout.id.desc()).limit(limit)))


@dataclass(frozen=True, slots=True)
class Bar:
    day: date
    value: int
    x: float
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Chart:
    """One daily series laid out for an SVG of width × height (drawn by templates/payouts/_chart.html)."""

    title: str
    bars: list[Bar]
    peak: int
    total: int
    money: bool
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT

    @property
    def bar_width(self) -> float:
        return max(self.width / max(len(self.bars), 1) - 1, 1)


def chart(title: str, series: dict[date, int], first: date, days: int, money: bool = False) -> Chart:
    width, height = CHART_WIDTH, CHART_HEIGHT
    values = [(first + timedelta(days=i), series.get(first + timedelta(days=i), 0)) for i in range(days)]
    peak = max((v for _, v in values), default=0)
    step = width / days
    bars = []
    for i, (day, value) in enumerate(values):
        h = 0.0 if peak <= 0 or value <= 0 else max(height * value / peak, 1.0)
        bars.append(Bar(day, value, round(i * step, 2), round(height - h, 2), round(h, 2)))
    return Chart(title, bars, peak, sum(v for _, v in values), money)


async def charts(db: AsyncSession, creator_id: int, currency: str, today: date, days: int) -> list[Chart]:
    first = today - timedelta(days=days - 1)
    rows = await db.execute(text(
        # Days are UTC days, like the counters' and the page's, whatever the database session's time zone.
        "SELECT (created_at AT TIME ZONE 'UTC')::date, count(*), sum(amount_cents) FROM ledger_entries "
        "WHERE creator_id = :creator AND currency = :currency AND kind = 'sale' AND created_at >= :since "
        "GROUP BY 1"), {"creator": creator_id, "currency": currency,
                        "since": datetime.combine(first, time.min, tzinfo=UTC)})
    sales: dict[date, int] = {}
    net: dict[date, int] = {}
    for day, count, amount in rows:
        sales[day], net[day] = int(count), int(amount)
    counted = await stats.daily(db, creator_id, first)
    return [
        chart("Sales", sales, first, days),
        chart("Earned from sales", net, first, days, money=True),
        chart("Views", {d: v["views"] for d, v in counted.items()}, first, days),
        chart("Plays and downloads", {d: v["plays"] + v["downloads"] for d, v in counted.items()}, first, days),
    ]


async def overview(db: AsyncSession, creator: Creator, settings: Settings, now: datetime,
                   days: int) -> dict[str, Any]:
    account = accounts.view(await accounts.account_of(db, creator.user_id))
    balance = await ledger.balance(db, creator.user_id, creator.currency, now)
    pending = await open_payout(db, creator.user_id)
    return {
        "account": account,
        "balance": balance,
        "earnings": await ledger.earnings(db, creator.user_id, creator.currency, now),
        "next": next_payout(creator, account, balance, pending, now, settings),
        "payouts": await history(db, creator.user_id),
        "entries": await ledger.recent_entries(db, creator.user_id),
        "charts": await charts(db, creator.user_id, creator.currency, now.date(), days),
        "days": days,
        "hold_days": settings.payout_hold_days,
        "currency": creator.currency,
    }
