"""Demo data for a first look, and creating administrators."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from app.accounts.forms import PASSWORD_MAX, PASSWORD_MIN, SignupForm
from app.accounts.models import User
from app.accounts.passwords import Passwords
from app.db.engine import make_engine, make_sessionmaker
from app.settings import Settings
from app.web.errors import FormInvalid

DEMO_PASSWORD = "demo-password-1"
DEMO_CREATORS = [
    ("nadia", "Nadia Okafor", "nadia@demo.fairshelf.localhost"),
    ("tidewater_tapes", "Tidewater Tapes", "tapes@demo.fairshelf.localhost"),
    ("lumen_presets", "Lumen Presets", "lumen@demo.fairshelf.localhost"),
    ("quillandink", "Quill & Ink Press", "quill@demo.fairshelf.localhost"),
]


async def seed_demo(settings: Settings) -> bool:
    """Create the demo accounts unless the first one exists; True when something was created."""
    engine = make_engine(settings, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as db:
            if await db.scalar(select(User.id).where(User.username == DEMO_CREATORS[0][0])):
                return False
            password_hash = await Passwords(settings).hash(DEMO_PASSWORD)
            for username, name, email in DEMO_CREATORS:
                db.add(User(email=email, username=username, display_name=name, password_hash=password_hash,
                            email_verified_at=datetime.now(UTC)))
            await db.commit()
            return True
    finally:
        await engine.dispose()


async def make_admin(settings: Settings, email: str, username: str, display_name: str, password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValueError(f"The password must be {PASSWORD_MIN}–{PASSWORD_MAX} characters.")
    engine = make_engine(settings, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as db:
            existing = await db.scalar(select(User).where(User.email == email))
            if existing is not None:
                existing.is_admin = True
                await db.commit()
                return f"{existing.username} is now an administrator"
            try:
                form = SignupForm.parse(
                    {"email": email, "username": username, "display_name": display_name, "password": password}
                )
            except FormInvalid as exc:
                raise ValueError(" ".join(exc.errors.values())) from None
            db.add(User(email=form.email, username=form.username, display_name=form.display_name, is_admin=True,
                        password_hash=await Passwords(settings).hash(password), email_verified_at=datetime.now(UTC)))
            await db.commit()
            return f"administrator {form.username} created"
    finally:
        await engine.dispose()
