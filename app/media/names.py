"""Object keys, file names and the headers built from them: the rules every storage implementation shares."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal
from urllib.parse import quote

Disposition = Literal["attachment", "inline"]
MAX_TTL_SECONDS = 7 * 24 * 3600  # S3's limit for SigV4 presigned URLs; kept the same for local links
MAX_KEY_BYTES = 1024
MAX_FILENAME_BYTES = 200  # under the 255-byte name limit of common filesystems, leaving room for " (1)" etc.


class InvalidKey(ValueError):
    """A key that could escape the storage root or mean different things to different stores (a bug of ours)."""


def validate_key(key: str) -> str:
    """Return `key` when it is a safe relative object key; raise InvalidKey otherwise.

    Segments must be non-empty and must not start with "." (no "..", no hidden files, and LocalStorage keeps its
    temporary files in ".incoming"); no backslashes, control characters or leading "/". The same rules apply to
    every implementation so a key that works in development works in production.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("empty storage key")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey("storage key too long")
    if "\\" in key or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in key):
        raise InvalidKey(f"storage key with a backslash or control character: {key!r}")
    for segment in key.split("/"):
        if not segment or segment.startswith(".") or segment != segment.strip():
            raise InvalidKey(f"storage key with an empty, dot or padded segment: {key!r}")
    return key


_WINDOWS_FORBIDDEN = str.maketrans({c: "_" for c in '/\\<>:|?*'})
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_filename(name: str, fallback: str = "download") -> str:
    """A file name fit to show and to offer for saving: no path separators, control or formatting characters
    (bidi overrides can disguise "gpj.exe"), double quotes or leading dots; whitespace collapsed; at most
    MAX_FILENAME_BYTES of UTF-8, cutting the stem rather than the extension. Idempotent, and always a valid key
    segment. Apostrophes are kept ("Don't Stop.mp3"): they are harmless in quoted strings and are percent-encoded
    in filename*."""
    text = unicodedata.normalize("NFC", name or "")
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    text = text.translate(_WINDOWS_FORBIDDEN).replace('"', "")
    text = " ".join(text.split()).strip(" .")
    if not text:
        return fallback
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > 16 or " " in ext:
        stem, ext = text, ""
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    suffix = f".{ext}" if ext else ""
    budget = MAX_FILENAME_BYTES - len(suffix.encode())
    if len(stem.encode()) > budget:
        while len(stem.encode()) > budget:
            stem = stem[:-1]
        stem = stem.rstrip(" .")
    return (stem + suffix) if stem else fallback + suffix


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    text = "".join(ch if 32 <= ord(ch) < 127 else ("" if unicodedata.combining(ch) else "_") for ch in decomposed)
    # RFC 6266 §5: avoid "%" and "\" in the plain filename parameter; some user agents decode or escape them.
    text = text.replace("%", "_").replace("\\", "_").replace('"', "")
    stem, dot, ext = text.rpartition(".")
    if dot and stem.strip("_ ") == "":
        return f"download.{ext}"
    return text if text.strip("_ .") else "download"


def content_disposition(disposition: Disposition, filename: str) -> str:
    """An RFC 6266 Content-Disposition header: an ASCII `filename` for old clients and a UTF-8 `filename*`."""
    if disposition not in ("attachment", "inline"):
        raise ValueError(f"disposition must be 'attachment' or 'inline', not {disposition!r}")
    name = safe_filename(filename)
    return f"{disposition}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe='')}"


_TOKEN = r"[A-Za-z0-9!#$&^_.+\-]+"
_CONTENT_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\"))*")


def check_link_args(content_type: str, ttl_seconds: int, disposition: str) -> None:
    if len(content_type) > 200 or not _CONTENT_TYPE.fullmatch(content_type):
        raise ValueError(f"not a valid content type: {content_type!r}")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
    if disposition not in ("attachment", "inline"):
        raise ValueError(f"disposition must be 'attachment' or 'inline', not {disposition!r}")
