"""Text helpers shared by every area: Markdown rendered to sanitised HTML, slugs, prices typed by people."""

from __future__ import annotations

import re
import unicodedata

import nh3
from markdown_it import MarkdownIt

# CommonMark with raw HTML switched off; the sanitiser below is a second, independent line of defence.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": True}).enable(
    ["table", "strikethrough"]
)
_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "img",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}}


def render_markdown(source: str) -> str:
    """Markdown to HTML that is safe to show as-is: no raw HTML, no scripts, only http(s)/mailto links."""
    html = _markdown.render(source)
    # A creator's h1 would compete with the page's own title, so headings start at h2.
    html = re.sub(r"<(/?)h1>", r"<\1h2>", html)
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener ugc",
    )


def excerpt_markdown(source: str, length: int = 700) -> str:
    """The opening paragraphs of a Markdown text, whole, up to about `length` characters (at least one)."""
    kept: list[str] = []
    for block in re.split(r"\n\s*\n", source.strip()):
        if kept and sum(map(len, kept)) + len(block) > length:
            break
        kept.append(block if len(block) <= length * 2 else block[: length * 2].rsplit(" ", 1)[0] + " …")
    return "\n\n".join(kept)


def slugify(text: str, max_length: int = 80) -> str:
    """'Hello, Wörld!' -> 'hello-world'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


_MONEY = re.compile(r"(\d{1,7})(?:[.,](\d{1,2}))?")


def parse_money(value: str) -> int | None:
    """'4.99', '$4.99', '4,99' or '5' -> cents; None when it is not a plain, non-negative amount."""
    match = _MONEY.fullmatch(value.strip().lstrip("$€£").strip())
    if match is None:
        return None
    whole, fraction = match.groups()
    return int(whole) * 100 + int((fraction or "0").ljust(2, "0"))


def format_money(cents: int, currency: str = "USD") -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, "")
    sign = "−" if cents < 0 else ""  # a minus sign, not a hyphen: −$5.00
    amount = f"{abs(cents) // 100}.{abs(cents) % 100:02d}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def human_size(size: int) -> str:
    """1536 -> '1.5 KB'; sizes in binary units, written the way people read them."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            if unit == "bytes":
                return f"{int(value)} byte{'s' if int(value) != 1 else ''}"
            return f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    return f"{size} bytes"


def duration(seconds: float) -> str:
    """75 -> '1:15'; 3723 -> '1:02:03'."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
