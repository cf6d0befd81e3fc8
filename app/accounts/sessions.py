"""Server-side sessions in PostgreSQL: the cookie holds a random id, the table only its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import User, UserSession
from app.settings import Settings

TOUCH_EVERY = timedelta(minutes=1)


def cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and for path /.
    return "__Host-fairshelf_session" if settings.secure_cookies else "fairshelf_session"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """Who is signed in on this request, and through which session."""

    id: int
    username: str
    display_name: str
    email: str
    email_verified: bool
    is_admin: bool
    session_id: int


async def create(session: AsyncSession, user_id: int, settings: Settings, user_agent: str, ip: str) -> str:
    """Open a new session (in the caller's transaction) and return the cookie value."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=hash_token(token),
            user_id=user_id,
            expires_at=datetime.now(UTC) + timedelta(days=settings.session_absolute_days),
            user_agent=user_agent[:300],
            ip=ip[:64],
        )
    )
    await session.flush()
    return token


async def load(sessionmaker: async_sessionmaker[AsyncSession], token: str, settings: Settings) -> CurrentUser | None:
    """The signed-in user for a cookie value, or None when the session is unknown or expired."""
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(UserSession.id, UserSession.last_seen_at, User)
                .join(User, User.id == UserSession.user_id)
                .where(
                    UserSession.token_hash == hash_token(token),
                    UserSession.expires_at > text("now()"),
                    UserSession.last_seen_at > text("now() - make_interval(days => :idle)"),
                )
                .params(idle=settings.session_idle_days)
            )
        ).one_or_none()
        if row is None:
            return None
        session_id, last_seen, user = row
        if datetime.now(UTC) - last_seen > TOUCH_EVERY:
            # Writing on every request would make each page view a write; once a minute is enough for idle expiry.
            await session.execute(update(UserSession).where(UserSession.id == session_id).values(last_seen_at=text("now()")))
            await session.commit()
        return CurrentUser(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            email=user.email,
            email_verified=user.email_verified_at is not None,
            is_admin=user.is_admin,
            session_id=session_id,
        )


async def end(session: AsyncSession, token: str) -> None:
    await session.execute(delete(UserSession).where(UserSession.token_hash == hash_token(token)))


async def list_for(session: AsyncSession, user_id: int) -> list[UserSession]:
    result = await session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.expires_at > text("now()"))
        .order_by(UserSession.last_seen_at.desc())
    )
    return list(result)


async def end_others(session: AsyncSession, user_id: int, keep_session_id: int | None) -> int:
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep_session_id is not None:
        query = query.where(UserSession.id != keep_session_id)
    return (await session.execute(query)).rowcount


async def end_one(session: AsyncSession, user_id: int, session_id: int) -> bool:
    """End one of this user's sessions; False if it is not theirs (or gone)."""
    query = delete(UserSession).where(UserSession.user_id == user_id, UserSession.id == session_id)
    return (await session.execute(query)).rowcount == 1


async def purge_expired(session: AsyncSession, settings: Settings) -> int:
    result = await session.execute(
        text("DELETE FROM user_sessions WHERE expires_at < now() OR last_seen_at < now() - make_interval(days => :d)"),
        {"d": settings.session_idle_days},
    )
    return result.rowcount
