"""The worker's checks of text items' files (plain UTF-8 text, PDF, EPUB), on real (small) files made by
tests/media/samples/. No database, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.media.inspect import inspect_file
from tests.media import samples
from tests.media.helpers import rejected, sha256_of

# ------------------------------------------------------------------------------------------------ text


def test_plain_utf8_text_is_text(tmp_path: Path) -> None:
    path = samples.write_text(tmp_path)
    for item_type in ("text", "file"):
        result = inspect_file(path, item_type)
        assert (result.mime, result.extension) == ("text/plain", "txt")
        assert result.sha256 == sha256_of(path)
    assert rejected(path, "audio").reason.startswith("This file is plain text, not an audio file.")
    assert rejected(path, "image").code == "type_not_allowed"


@pytest.mark.parametrize(("data", "label"), [
    (b"caf\xe9 au lait\n", "unrecognised binary"),  # Latin-1, not UTF-8
    (b"hello\x00world\n", "unrecognised binary"),
    ("hello".encode("utf-16"), "UTF-16"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML page"),
], ids=["latin-1", "nul-byte", "utf-16", "html"])
def test_what_is_not_plain_utf8_text_is_not_a_text_item(tmp_path: Path, data: bytes, label: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    error = rejected(path, "text")
    assert label in error.reason and "Text items accept PDF, EPUB or plain text" in error.reason


@pytest.mark.parametrize("text", [
    "The wide sea, a poem\n",  # "wide" where a QuickTime box type would be
    "βροχή: rain, in Greek\n",  # starts with the bytes of Brotli's signature
    "Notes on the %PDF-1.7 header\n",
    "FWS: notes from the meeting\n",  # Flash's signature
], ids=["quicktime-like", "brotli-like", "mentions-pdf", "flash-like"])
def test_text_that_happens_to_look_like_a_signature_is_still_text(tmp_path: Path, text: str) -> None:
    result = inspect_file(samples.write_text(tmp_path, text=text), "text")
    assert result.mime == "text/plain"


def test_pdf_is_accepted_for_text_and_file_items(tmp_path: Path) -> None:
    path = samples.write_pdf(tmp_path)
    for item_type in ("text", "file"):
        result = inspect_file(path, item_type)
        assert (result.mime, result.extension) == ("application/pdf", "pdf")
        assert result.metadata["pdf_version"] == "1.4"
        assert result.warnings == []
    assert rejected(path, "audio").reason.startswith("This file is a PDF document, not an audio file.")
    assert "Covers must be" in rejected(path, "text", "cover").reason


def test_a_pdf_without_its_end_marker_gets_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(samples.pdf_bytes()[:-30])
    assert any("incomplete" in w for w in inspect_file(path, "text").warnings)


def test_epub_is_detected_inside_its_zip(tmp_path: Path) -> None:
    path = samples.write_epub(tmp_path, "book.zip")  # the name does not matter
    result = inspect_file(path, "text")
    assert (result.mime, result.extension) == ("application/epub+zip", "epub")
    assert result.metadata["entries"] == 4
    assert "not a text document" in rejected(samples.write_zip(tmp_path), "text").reason
