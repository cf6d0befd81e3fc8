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
    monthly_cents: int  # the flat fee, in US cents: the platform's only revenue


TIERS: dict[str, Tier] = {
    t.key: t
    for t in (
        Tier("basic", "Basic", 10 * MB, 50 * GB, 500),
        Tier("small_files", "Small Files", 500 * MB, 250 * GB, 1000),
        Tier("big_files", "Big Files", 20 * GB, 500 * GB, 2000),
        Tier("everything", "Everything", 20 * GB, 500 * GB, 3000),
    )
}
