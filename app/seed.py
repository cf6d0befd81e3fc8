"""Demo data for a first look, and creating administrators.

The demo creators' files are generated here and then go through the real upload pipeline (the worker checks,
stores and thumbnails them), exactly as a creator's upload would.
"""

from __future__ import annotations

import io
import math
import secrets
import struct
import wave
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.forms import PASSWORD_MAX, PASSWORD_MIN, SignupForm
from app.accounts.models import User
from app.accounts.passwords import Passwords
from app.catalog.models import Creator, Item, ItemVersion
from app.db.base import new_public_id
from app.db.engine import make_engine, make_sessionmaker
from app.media import uploads
from app.settings import Settings
from app.web.errors import FormInvalid
from app.web.text import render_markdown

DEMO_PASSWORD = "demo-password-1"


@dataclass(frozen=True)
class DemoItem:
    type: str
    title: str
    description: str
    tags: list[str]
    price_mode: str
    price_cents: int = 0
    colours: tuple[str, str] = ("#4b3bcf", "#f2a65a")
    body: str = ""


DEMO_CREATORS = [
    ("nadia", "Nadia Okafor", "nadia@demo.fairshelf.localhost", "Ambient music made on night buses.",
     [DemoItem("audio", "Night Bus Loops", "Six slow loops recorded between midnight and 4 am. **Headphones on.**",
               ["music.electronic.ambient"], "pwyw", 0, ("#1d2b64", "#f8cdda"))]),
    ("tidewater_tapes", "Tidewater Tapes", "tapes@demo.fairshelf.localhost", "Field recordings from the coast.",
     [DemoItem("audio", "Low Tide, Early Morning", "Forty minutes of shoreline: gulls, wind and water.",
               ["field_recordings.coast"], "fixed", 500, ("#0f3443", "#34e89e"))]),
    ("lumen_presets", "Lumen Presets", "lumen@demo.fairshelf.localhost", "Colour presets for photographers.",
     [DemoItem("file", "Film Stock Presets Vol. 1", "Twelve presets modelled on classic film stocks.",
               ["photography.presets"], "fixed", 1200, ("#ff512f", "#dd2476"))]),
    ("quillandink", "Quill & Ink Press", "quill@demo.fairshelf.localhost", "A tiny press for zines and essays.",
     [DemoItem("text", "A Short Guide to Zine Binding", "Fold, stitch and staple: three bindings for beginners.",
               ["books.zines", "crafts.bookbinding"], "free", colours=("#c79081", "#dfa579"),
               body="## Saddle stitch\n\nFold your sheets, mark three holes on the spine, and sew.\n\n"
                    "## Staples\n\nTwo staples, 2 cm from each end.\n\n## Japanese stab binding\n\n"
                    "Four holes, one thread, a lot of patience.")]),
]


def _cover(colours: tuple[str, str]) -> bytes:
    """A square gradient, as a PNG."""
    size = 800
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    top, bottom = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in colours)
    for y in range(size):
        t = y / (size - 1)
        draw.line([(0, y), (size, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _tone(seconds: float = 3.0, rate: int = 22050) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        frames = (int(8000 * math.sin(2 * math.pi * 220 * n / rate) * math.exp(-n / rate)) for n in
                  range(int(seconds * rate)))
        wav.writeframes(b"".join(struct.pack("<h", f) for f in frames))
    return out.getvalue()


def _presets() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("Portra", "Ektar", "Tri-X"):
            archive.writestr(f"{name}.xmp", f"<x:xmpmeta><preset name='{name}'/></x:xmpmeta>\n")
    return out.getvalue()


async def _queue_upload(db: AsyncSession, settings: Settings, creator: Creator, item: Item, purpose: str,
                        version: ItemVersion | None, filename: str, data: bytes) -> None:
    temp_dir = settings.var_dir / "tmp" / "uploads"
    temp_dir.mkdir(parents=True, exist_ok=True)
    path = temp_dir / f"{secrets.token_hex(16)}.part"
    path.write_bytes(data)
    await uploads.register(db, settings, creator, item, purpose, version, filename, len(data), Path(path))


async def seed_demo(settings: Settings) -> bool:
    """Create the demo creators and their items unless the first one exists; True when something was created.

    The items are published at once; their files and covers are processed by the worker right after.
    """
    engine = make_engine(settings, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as db:
            if await db.scalar(select(User.id).where(User.username == DEMO_CREATORS[0][0])):
                return False
            password_hash = await Passwords(settings).hash(DEMO_PASSWORD)
            now = datetime.now(UTC)
            for username, name, email, bio, demo_items in DEMO_CREATORS:
                user = User(email=email, username=username, display_name=name, password_hash=password_hash,
                            email_verified_at=now)
                db.add(user)
                await db.flush()
                creator = Creator(user_id=user.id, tier="basic", bio=bio)
                db.add(creator)
                await db.flush()
                for demo in demo_items:
                    item = Item(public_id=new_public_id(), creator_id=user.id, type=demo.type, title=demo.title,
                                slug=demo.title.lower().replace(" ", "-").replace(",", "").replace(".", ""),
                                description_md=demo.description, description_html=render_markdown(demo.description),
                                body_md=demo.body, body_html=render_markdown(demo.body), tags=demo.tags,
                                price_mode=demo.price_mode, price_cents=demo.price_cents,
                                suggested_price_cents=500 if demo.price_mode == "pwyw" else 0,
                                ai_label="handmade", status="published", wizard_step="publish",
                                published_at=now, release_date=date.today())
                    db.add(item)
                    await db.flush()
                    await _queue_upload(db, settings, creator, item, "cover", None, "cover.png", _cover(demo.colours))
                    if demo.type in ("audio", "file"):
                        version = ItemVersion(item_id=item.id, label="1.0", published_at=now)
                        db.add(version)
                        await db.flush()
                        filename, data = (("loops.wav", _tone()) if demo.type == "audio"
                                          else ("presets.zip", _presets()))
                        await _queue_upload(db, settings, creator, item, "file", version, filename, data)
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
