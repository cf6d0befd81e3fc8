"""What every check shares: size units, the rejection raised to the creator, the result returned."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MB = 1024 * 1024
HASH_CHUNK = MB


class Rejected(Exception):
    """The file is not acceptable. `reason` is a complete sentence for the creator; `code` is for programs."""

    def __init__(self, reason: str, code: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass
class Inspection:
    mime: str
    extension: str
    size: int
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
