"""The worker's rules for every file: empty files, what a cover or a preview may be, and the table of allowed
types per item type. On real (small) files made by tests/media/samples/; no database, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.media.inspect import ALLOWED, inspect_file
from tests.media import samples
from tests.media.helpers import ITEM_TYPES, rejected

# ------------------------------------------------------------------------------------------------ empty


@pytest.mark.parametrize("item_type", ITEM_TYPES)
@pytest.mark.parametrize("purpose", ["file", "cover", "preview"])
def test_an_empty_file_is_rejected(tmp_path: Path, item_type: str, purpose: str) -> None:
    error = rejected(samples.write_empty(tmp_path), item_type, purpose)
    assert error.code == "empty"
    assert "empty" in error.reason

# ------------------------------------------------------------------------------------------------ purposes


def test_covers_must_be_images(tmp_path: Path) -> None:
    for path in (samples.write_pdf(tmp_path), samples.write_wav(tmp_path), samples.write_zip(tmp_path)):
        error = rejected(path, "image", "cover")
        assert error.reason.endswith("Covers must be PNG, JPEG, WebP or GIF images.")


def test_previews_must_be_of_the_items_kind(tmp_path: Path) -> None:
    wav, pdf, zip_ = samples.write_wav(tmp_path), samples.write_pdf(tmp_path), samples.write_zip(tmp_path)
    assert inspect_file(wav, "audio", purpose="preview").mime == "audio/wav"
    assert "cannot be a preview" in rejected(pdf, "audio", "preview").reason
    assert inspect_file(pdf, "file", purpose="preview").mime == "application/pdf"
    assert inspect_file(wav, "file", purpose="preview").mime == "audio/wav"
    assert "cannot be a preview" in rejected(zip_, "file", "preview").reason
    # A preview is checked strictly even for a "file" item.
    assert rejected(samples.write_fake_mp3(tmp_path), "file", "preview").code == "unreadable_audio"


def test_unknown_item_types_and_purposes_are_programming_errors(tmp_path: Path) -> None:
    path = samples.write_text(tmp_path)
    with pytest.raises(ValueError):
        inspect_file(path, "podcast")
    with pytest.raises(ValueError):
        inspect_file(path, "text", purpose="avatar")


def test_the_allowed_table_covers_every_item_type() -> None:
    assert set(ALLOWED) == set(ITEM_TYPES)
    assert ALLOWED["audio"] == {"mp3", "wav", "flac", "ogg", "opus", "m4a", "aac"}
    assert ALLOWED["video"] == {"mp4", "webm", "mov", "mkv"}
    assert ALLOWED["image"] == {"png", "jpeg", "gif", "webp"}
    assert ALLOWED["text"] == {"pdf", "epub", "txt"}
    assert ALLOWED["file"] == {"*"}
