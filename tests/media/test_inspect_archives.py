"""The worker's checks of archives (zip, tar, gzip: bombs, nesting, damage) and of programs and unknown
binaries, on real (small) files made by tests/media/samples/. No database, no network."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from app.media.inspect import inspect_file
from tests.media import samples
from tests.media.helpers import rejected, sha256_of

# ------------------------------------------------------------------------------------------------ archives


def test_a_zip_is_accepted_for_file_items_only(tmp_path: Path) -> None:
    path = samples.write_zip(tmp_path)
    result = inspect_file(path, "file")
    assert (result.mime, result.extension) == ("application/zip", "zip")
    assert result.metadata == {"entries": 3, "uncompressed_bytes": 89}
    assert result.sha256 == sha256_of(path)
    for item_type in ("audio", "video", "image", "text"):
        assert rejected(path, item_type).reason.startswith("This file is a ZIP archive, not ")


def test_a_zip_bomb_is_rejected_from_its_directory(tmp_path: Path) -> None:
    path = samples.write_zip_bomb(tmp_path, megabytes=60)
    assert path.stat().st_size < 200_000  # 60 MB inside, streamed in: only the small archive touches the disk
    error = rejected(path, "file")
    assert error.code == "archive_bomb"
    assert "archive bomb" in error.reason and "100\u00d7" in error.reason


def test_a_zip_whose_entries_share_their_data_is_rejected(tmp_path: Path) -> None:
    error = rejected(samples.write_overlapping_zip(tmp_path), "file")
    assert error.code == "archive_bomb"
    assert "overlap" in error.reason


@pytest.mark.parametrize("inner_name", ["inner.zip", "innocent.dat"])
def test_a_zip_inside_a_zip_is_rejected_by_name_or_by_content(tmp_path: Path, inner_name: str) -> None:
    error = rejected(samples.write_nested_zip(tmp_path, inner_name=inner_name), "file")
    assert error.code == "nested_archive"
    assert inner_name in error.reason and "Archives inside archives" in error.reason


def test_zip_based_documents_inside_a_zip_are_not_nested_archives(tmp_path: Path) -> None:
    book = samples.write_epub(tmp_path).read_bytes()
    path = samples.write_zip(tmp_path, "templates.zip", {"letter.docx": book, "plugin/lib/x.jar": book,
                                                         "book.epub": book})
    assert inspect_file(path, "file").metadata["entries"] == 3


def test_a_zip_with_legacy_cp437_names_is_not_mistaken_for_overlapping(tmp_path: Path) -> None:
    # Old Windows tools store names in code page 437 without the UTF-8 flag; "caf\x82" is "café" there.
    path = samples.write_zip(tmp_path, "legacy.zip", {"cafe1.txt": b"one\n", "cafe2.txt": b"two\n"})
    data = path.read_bytes().replace(b"cafe1", b"caf\x821").replace(b"cafe2", b"caf\x822")
    path.write_bytes(data)
    assert inspect_file(path, "file").metadata["entries"] == 2


def test_a_zip_with_too_many_entries_is_rejected(tmp_path: Path) -> None:
    error = rejected(samples.write_many_entries_zip(tmp_path, entries=10_001), "file")
    assert error.code == "too_many_entries"
    assert "10,001" in error.reason and "10,000" in error.reason


def test_a_truncated_zip_is_damaged(tmp_path: Path) -> None:
    data = samples.write_zip(tmp_path).read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(path, "file").code == "corrupt_archive"


def test_tar_and_tar_gz_are_accepted_with_their_entry_count(tmp_path: Path) -> None:
    tar = inspect_file(samples.write_tar(tmp_path), "file")
    assert (tar.mime, tar.extension, tar.metadata["entries"]) == ("application/x-tar", "tar", 2)
    tgz = inspect_file(samples.write_tar_gz(tmp_path), "file")
    assert (tgz.mime, tgz.extension, tgz.metadata["entries"]) == ("application/gzip", "tar.gz", 2)


def test_a_gzip_file_is_decompressed_as_a_stream_and_measured(tmp_path: Path) -> None:
    result = inspect_file(samples.write_gzip(tmp_path, data=b"x" * 5000), "file")
    assert (result.extension, result.metadata["uncompressed_bytes"]) == ("gz", 5000)


def test_a_gzip_bomb_is_stopped_at_its_budget(tmp_path: Path) -> None:
    path = samples.write_gzip_bomb(tmp_path, megabytes=40)
    assert path.stat().st_size < 100_000
    error = rejected(path, "file")
    assert error.code == "archive_bomb"


def test_a_tar_gz_bomb_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bomb.tar.gz"

    class Zeros(io.RawIOBase):
        left = 50 * samples.MB

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            n = min(len(buffer), self.left)
            buffer[:n] = bytes(n)
            self.left -= n
            return n

    with gzip.open(path, "wb", compresslevel=9) as out, tarfile.open(fileobj=out, mode="w|") as archive:
        info = tarfile.TarInfo("zeros.bin")
        info.size = Zeros.left
        archive.addfile(info, io.BufferedReader(Zeros()))
    assert path.stat().st_size < 200_000
    assert rejected(path, "file").code == "archive_bomb"


def test_archives_inside_tar_archives_are_rejected(tmp_path: Path) -> None:
    inner = samples.write_zip(tmp_path).read_bytes()
    error = rejected(samples.write_tar(tmp_path, "a.tar", {"x.txt": b"x", "stuff.bin": inner}), "file")
    assert (error.code, "stuff.bin" in error.reason) == ("nested_archive", True)
    error = rejected(samples.write_tar_gz(tmp_path, "b.tar.gz", {"inner.tar.gz": b"not even real"}), "file")
    assert error.code == "nested_archive"
    gz_of_zip = samples.write_gzip(tmp_path, "c.zip.gz", data=inner)
    assert rejected(gz_of_zip, "file").code == "nested_archive"


def test_a_truncated_tar_gz_is_damaged(tmp_path: Path) -> None:
    data = samples.write_tar_gz(tmp_path).read_bytes()
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(path, "file").code == "corrupt_archive"


def test_archives_that_cannot_be_opened_here_are_accepted_with_a_warning(tmp_path: Path) -> None:
    result = inspect_file(samples.write_7z_header(tmp_path), "file")
    assert result.mime == "application/x-7z-compressed"
    assert any("not checked" in w for w in result.warnings)


def test_programs_and_unknown_binaries_are_fine_for_file_items(tmp_path: Path) -> None:
    elf = samples.write_elf(tmp_path)
    assert inspect_file(elf, "file").mime == "application/x-elf"
    assert rejected(elf, "audio").reason.startswith("This file is a Linux program (ELF), not an audio file.")
    blob = samples.write_binary(tmp_path)
    assert inspect_file(blob, "file").mime == "application/octet-stream"
    assert "unrecognised binary file" in rejected(blob, "text").reason


def test_large_files_are_hashed_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"\x13\x37\x00" + os.urandom(int(2.5 * samples.MB)))
    result = inspect_file(path, "file")
    assert result.size == path.stat().st_size
    assert result.sha256 == sha256_of(path)
