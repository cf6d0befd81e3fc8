"""Catalog forms and their validation rules: one place for what a creator may type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from app.catalog.models import AI_LABELS, ITEM_TYPES, PRICE_MODES
from app.catalog.tiers import TIERS
from app.web.forms import Errors, clean_text
from app.web.text import SLUG, parse_money, slugify

CURRENCIES = ("USD", "EUR", "GBP")
SUBTYPES = ("software", "plugin", "preset", "sample pack", "template", "font", "3d model", "other")
MAX_PRICE_CENTS = 1_000_000_00
MIN_CHARGE_CENTS = 50  # the smallest card payment the processor accepts
TAG_SEGMENT = re.compile(r"[a-z0-9_]{1,40}")
MAX_TAGS, MAX_TAG_DEPTH = 10, 5
CHAPTER = re.compile(r"(?:(\d{1,2}):)?(\d{1,3}):(\d{2})\s+(.+)")


def _slug(errors: Errors, raw: str, fallback: str) -> str:
    typed = clean_text(raw).lower()
    slug = typed or slugify(fallback)
    if typed and not SLUG.fullmatch(typed):
        errors.add("slug", "The URL name may use lowercase letters, digits and single hyphens, like my-first-album.")
    elif len(slug) > 80:
        errors.add("slug", "The URL name must be at most 80 characters.")
    return slug


@dataclass(frozen=True, slots=True)
class StartSellingForm:
    tier: str
    currency: str
    bio: str
    links: list[dict[str, str]]

    @classmethod
    def parse(cls, data: dict[str, str]) -> StartSellingForm:
        errors = Errors()
        tier = data.get("tier", "")
        if tier not in TIERS:
            errors.add("tier", "Pick one of the tiers.")
        currency = data.get("currency", "USD")
        if currency not in CURRENCIES:
            errors.add("currency", "Pick one of the currencies.")
        bio, links = _profile(errors, data)
        errors.raise_if_any({"tier": tier, "currency": currency, "bio": bio, "links": data.get("links", "")})
        return cls(tier=tier, currency=currency, bio=bio, links=links)


@dataclass(frozen=True, slots=True)
class ProfileForm:
    bio: str
    links: list[dict[str, str]]

    @classmethod
    def parse(cls, data: dict[str, str]) -> ProfileForm:
        errors = Errors()
        bio, links = _profile(errors, data)
        errors.raise_if_any({"bio": bio, "links": data.get("links", "")})
        return cls(bio=bio, links=links)


def _profile(errors: Errors, data: dict[str, str]) -> tuple[str, list[dict[str, str]]]:
    bio = clean_text(data.get("bio", ""))
    errors.length("bio", bio, "Bio", 0, 2000)
    links = []
    for line in clean_text(data.get("links", "")).splitlines():
        url = line.strip()
        if not url:
            continue
        if not re.fullmatch(r"https?://[^\s<>\"']{3,300}", url):
            errors.add("links", f"“{url[:60]}” is not a web address; each line should start with https://.")
        links.append({"url": url})
    if len(links) > 10:
        errors.add("links", "Add at most 10 links.")
    return bio, links


@dataclass(frozen=True, slots=True)
class ProjectForm:
    name: str
    slug: str
    description: str

    @classmethod
    def parse(cls, data: dict[str, str]) -> ProjectForm:
        errors = Errors()
        name = clean_text(data.get("name", ""))
        errors.length("name", name, "Name", 1, 120)
        slug = _slug(errors, data.get("slug", ""), name)
        if name and not slug:
            errors.add("slug", "Give the project a URL name made of letters or digits.")
        description = clean_text(data.get("description", ""))
        errors.length("description", description, "Description", 0, 20_000)
        errors.raise_if_any({"name": name, "slug": data.get("slug", ""), "description": description})
        return cls(name=name, slug=slug, description=description)


@dataclass(frozen=True, slots=True)
class NewItemForm:
    type: str
    project: str

    @classmethod
    def parse(cls, data: dict[str, str]) -> NewItemForm:
        errors = Errors()
        kind = data.get("type", "")
        if kind not in ITEM_TYPES:
            errors.add("type", "Pick what kind of work this is.")
        errors.raise_if_any({"type": kind, "project": data.get("project", "")})
        return cls(type=kind, project=data.get("project", ""))


def parse_tags(errors: Errors, raw: str) -> list[str]:
    """'Music/Electronic/Ambient, field recordings' -> ['music.electronic.ambient', 'field_recordings']."""
    tags: list[str] = []
    for part in raw.split(","):
        text = part.strip().lower()
        if not text:
            continue
        segments = [re.sub(r"[\s\-]+", "_", s.strip()) for s in text.strip("/").split("/")]
        if len(segments) > MAX_TAG_DEPTH or not all(TAG_SEGMENT.fullmatch(s) for s in segments):
            errors.add("tags", f"“{part.strip()[:60]}” is not a tag: use words of letters, digits and spaces, with / "
                               f"between levels (at most {MAX_TAG_DEPTH}), like music/electronic/ambient.")
            continue
        path = ".".join(segments)
        if path not in tags:
            tags.append(path)
    if len(tags) > MAX_TAGS:
        errors.add("tags", f"Use at most {MAX_TAGS} tags.")
    return tags


def tag_path(raw: str) -> str | None:
    """A tag as links and filters write it ('music/electronic' or 'music.electronic') -> 'music.electronic'."""
    segments = re.split(r"[/.]", raw.strip().strip("/").lower())
    if len(segments) > MAX_TAG_DEPTH or not all(TAG_SEGMENT.fullmatch(s) for s in segments):
        return None
    return ".".join(segments)


def tags_for_display(tags: list[str]) -> str:
    return ", ".join(t.replace(".", "/").replace("_", " ") for t in tags)


def parse_chapters(errors: Errors, raw: str) -> list[dict[str, object]]:
    """Lines like '0:00 Intro' or '1:02:03 Finale' -> [{'start': 0, 'title': 'Intro'}, …], in order."""
    chapters: list[dict[str, object]] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        match = CHAPTER.fullmatch(line.strip())
        if not match:
            errors.add("chapters", f"“{line.strip()[:60]}” is not a chapter: write the start time, then the title, "
                                   "like 12:30 Second movement.")
            continue
        hours, minutes, seconds, title = match.groups()
        start = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
        if int(seconds) >= 60 or (hours and int(minutes) >= 60):
            errors.add("chapters", f"“{line.strip()[:60]}” has an impossible time.")
        elif chapters and start <= int(chapters[-1]["start"]):  # type: ignore[call-overload]
            errors.add("chapters", "Chapters must be in order, each starting after the one before.")
        chapters.append({"start": start, "title": clean_text(title)[:200]})
    if len(chapters) > 200:
        errors.add("chapters", "Use at most 200 chapters.")
    return chapters


@dataclass(frozen=True, slots=True)
class DetailsForm:
    title: str
    slug: str
    description: str
    subtype: str
    project: str
    tags: list[str]
    release_date: date | None
    credits: str
    ai_label: str | None
    body: str
    chapters: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: dict[str, str], item_type: str) -> DetailsForm:
        errors = Errors()
        title = clean_text(data.get("title", ""))
        errors.length("title", title, "Title", 1, 200)
        slug = _slug(errors, data.get("slug", ""), title)
        description = clean_text(data.get("description", ""))
        errors.length("description", description, "Description", 0, 20_000)
        subtype = clean_text(data.get("subtype", "")).lower()
        if item_type == "file" and subtype and subtype not in SUBTYPES:
            errors.add("subtype", "Pick one of the kinds of file.")
        tags = parse_tags(errors, data.get("tags", ""))
        release = None
        if raw_date := data.get("release_date", "").strip():
            try:
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw_date):
                    raise ValueError(raw_date)
                release = date.fromisoformat(raw_date)
                if not date(1900, 1, 1) <= release <= date(2100, 12, 31):
                    errors.add("release_date", "The release date must be between 1900 and 2100.")
            except ValueError:
                errors.add("release_date", "Enter the release date as YYYY-MM-DD, like 2026-03-14.")
        credits = clean_text(data.get("credits", ""))
        errors.length("credits", credits, "Credits", 0, 5000)
        ai_label = data.get("ai_label") or None
        if ai_label is not None and ai_label not in AI_LABELS:
            errors.add("ai_label", "Pick how AI was used, if at all.")
        body = clean_text(data.get("body", "")) if item_type == "text" else ""
        errors.length("body", body, "Text", 0, 500_000)
        chapters = parse_chapters(errors, data.get("chapters", "")) if item_type == "audio" else []
        errors.raise_if_any({k: v for k, v in data.items() if k != "_csrf_token"})
        return cls(title=title, slug=slug, description=description, subtype=subtype if item_type == "file" else "",
                   project=data.get("project", ""), tags=tags, release_date=release, credits=credits,
                   ai_label=ai_label, body=body, chapters=chapters)


@dataclass(frozen=True, slots=True)
class PricingForm:
    mode: str
    price_cents: int
    min_price_cents: int
    suggested_price_cents: int

    @classmethod
    def parse(cls, data: dict[str, str]) -> PricingForm:
        errors = Errors()
        mode = data.get("price_mode", "")
        if mode not in PRICE_MODES:
            errors.add("price_mode", "Pick free, a fixed price, or pay what you want.")

        def amount(name: str, label: str, low: int, empty: int | None = None) -> int:
            raw = data.get(name, "").strip()
            if not raw and empty is not None:
                return empty
            cents = parse_money(raw)
            if cents is None:
                errors.add(name, f"{label}: enter an amount like 4.99." if raw else f"{label} is required.")
                return 0
            if cents < low:
                errors.add(name, f"{label} must be at least {low // 100}.{low % 100:02d}.")
            elif cents > MAX_PRICE_CENTS:
                errors.add(name, f"{label} must be at most {MAX_PRICE_CENTS // 100:,}.")
            return cents

        price = minimum = suggested = 0
        if mode == "fixed":
            price = amount("price", "Price", MIN_CHARGE_CENTS)
        elif mode == "pwyw":
            minimum = amount("min_price", "Minimum price", 0, empty=0)  # no minimum: free to take
            suggested = amount("suggested_price", "Suggested price", max(minimum, MIN_CHARGE_CENTS))
            if 0 < minimum < MIN_CHARGE_CENTS:
                errors.add("min_price", "The minimum must be 0 (free allowed) or at least 0.50.")
        errors.raise_if_any({k: v for k, v in data.items() if k != "_csrf_token"})
        # price_cents is always the least a buyer pays (a pay-what-you-want minimum too): lists sort and filter by it.
        price = minimum if mode == "pwyw" else price
        return cls(mode=mode, price_cents=price, min_price_cents=minimum, suggested_price_cents=suggested)


@dataclass(frozen=True, slots=True)
class VersionForm:
    label: str
    changelog: str

    @classmethod
    def parse(cls, data: dict[str, str]) -> VersionForm:
        errors = Errors()
        label = clean_text(data.get("label", ""))
        errors.length("label", label, "Version", 1, 40)
        changelog = clean_text(data.get("changelog", ""))
        errors.length("changelog", changelog, "Changelog", 0, 20_000)
        errors.raise_if_any({"label": label, "changelog": changelog})
        return cls(label=label, changelog=changelog)
