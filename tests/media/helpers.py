"""Helpers for the file-check tests: the item types, and asserting that a file is rejected."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from app.media.inspect import Rejected, inspect_file

ITEM_TYPES = ("audio", "video", "image", "text", "file")
Writer = Callable[[Path], Path]


def rejected(path: Path, item_type: str, purpose: str = "file") -> Rejected:
    with pytest.raises(Rejected) as caught:
        inspect_file(path, item_type, purpose=purpose)
    return caught.value


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
