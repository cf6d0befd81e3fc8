"""Creator tiers: a file-size envelope, not a feature ladder."""

from __future__ import annotations

from dataclasses import dataclass

from app.web.text import human_size

__all__ = ["GB", "MB", "TIERS", "Tier", "human_size"]

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True, slots=True)
class Tier:
    key: str
    name: str
    per_file_bytes: int
    storage_bytes: int


TIERS: dict[str, Tier] = {
    t.key: t
    for t in (
        Tier("basic", "Basic", 10 * MB, 50 * GB),
        Tier("small_files", "Small Files", 500 * MB, 250 * GB),
        Tier("big_files", "Big Files", 20 * GB, 500 * GB),
        Tier("everything", "Everything", 20 * GB, 500 * GB),
    )
}
