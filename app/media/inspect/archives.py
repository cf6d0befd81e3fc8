"""Archive checks: entry counts, expansion ratio, overlapping ZIP entries, archives inside archives."""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from app.media.inspect.common import MB, Rejected
from app.media.inspect.detect import _is_tar
from app.media.inspect.kinds import Kind

MAX_ARCHIVE_RATIO = 100
ARCHIVE_RATIO_FLOOR = 10 * MB
MAX_ARCHIVE_ENTRIES = 10_000
MAX_ZIP_DIRECTORY_BYTES = 64 * MB

# Members of an archive that are archives themselves, by name; ZIP-based documents and packages do not count.
_ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".tbz", ".tbz2", ".xz",
                               ".txz", ".zst", ".tzst", ".lz", ".lzma", ".z", ".cab", ".arj", ".lzh"})
_ZIP_BASED_FILES = frozenset({
    ".docx", ".xlsx", ".pptx", ".docm", ".xlsm", ".pptm", ".odt", ".ods", ".odp", ".odg", ".epub",
    ".jar", ".war", ".apk", ".aab", ".xpi", ".vsix", ".whl", ".nupkg", ".kmz", ".3mf", ".usdz", ".ora",
    ".idml", ".sketch", ".key", ".pages", ".numbers", ".ipa", ".appx", ".msix", ".crx",
})


def _check_archive(path: Path, kind: Kind, size: int, warnings: list[str]) -> dict[str, Any]:
    if kind.key in ("zip", "epub", "docx", "xlsx", "pptx"):
        return _check_zip(path, kind, size)
    if kind.key == "tar":
        return _check_tar(path, kind, size)
    if kind.key in ("gz", "tgz", "bz2", "tbz2", "xz", "txz"):
        return _check_compressed(path, kind, size)
    warnings.append(f"The contents of this {kind.label.split(' ', 1)[1]} were not checked.")
    return {}


def _bomb(kind: Kind, detail: str) -> Rejected:
    return Rejected(f"This file is {kind.label} that expands to far more than its size ({detail}), which is "
                    "how archive bombs work; it cannot be accepted.", "archive_bomb")


def _damaged(kind: Kind) -> Rejected:
    return Rejected(f"This file looks like {kind.label} but is damaged or incomplete, so its contents cannot "
                    "be read. Please create it again and upload it.", "corrupt_archive")


def _too_many(kind: Kind, count: int | str) -> Rejected:
    return Rejected(f"This file is {kind.label} with {count} entries; at most {MAX_ARCHIVE_ENTRIES:,} are "
                    "allowed.", "too_many_entries")


def _nested(kind: Kind, member: str) -> Rejected:
    return Rejected(f"This file is {kind.label} that contains another archive ({member!r}). Archives inside "
                    "archives are not accepted: please put all the files in one archive.", "nested_archive")


def _check_ratio(kind: Kind, uncompressed: int, size: int) -> None:
    if uncompressed > ARCHIVE_RATIO_FLOOR and uncompressed > MAX_ARCHIVE_RATIO * size:
        raise _bomb(kind, f"{_human(uncompressed)} from {_human(size)}, more than {MAX_ARCHIVE_RATIO}\u00d7")


def _human(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError


def _is_archive_name(name: str) -> bool:
    suffix = PurePosixPath(name.rstrip("/")).suffix.lower()
    return suffix in _ARCHIVE_SUFFIXES


def _is_archive_bytes(name: str, first: bytes) -> bool:
    """An archive by its first bytes, except ZIP-based documents and packages named as such."""
    if first.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return PurePosixPath(name).suffix.lower() not in _ZIP_BASED_FILES
    return (first.startswith((b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\xfd7zXZ\x00",
                              b"\x28\xb5\x2f\xfd", b"MSCF"))
            or (first.startswith(b"BZh") and first[3:4].isdigit()) or _is_tar(first))


def _zip_entry_count(path: Path, kind: Kind) -> tuple[int, int]:
    """(entries, central directory bytes) from the end-of-central-directory record, before zipfile parses (and
    holds in memory) the whole directory."""
    with open(path, "rb") as f:
        f.seek(0, io.SEEK_END)
        end = f.tell()
        f.seek(max(0, end - (65535 + 22)))
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            raise _damaged(kind)
        entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
        zip64 = entries == 0xFFFF or cd_size == 0xFFFFFFFF
        if zip64 and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":
            zip64_offset = struct.unpack("<Q", tail[at - 12:at - 4])[0]
            f.seek(zip64_offset)
            record = f.read(56)
            if record[:4] != b"PK\x06\x06" or len(record) < 56:
                raise _damaged(kind)
            entries, cd_size = struct.unpack("<QQ", record[32:48])
        return entries, cd_size


def _check_zip(path: Path, kind: Kind, size: int) -> dict[str, Any]:
    declared, cd_size = _zip_entry_count(path, kind)
    if declared > MAX_ARCHIVE_ENTRIES:
        raise _too_many(kind, f"{declared:,}")
    if cd_size > MAX_ZIP_DIRECTORY_BYTES:
        raise _too_many(kind, "an absurd number of")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ARCHIVE_ENTRIES:
                raise _too_many(kind, f"{len(infos):,}")
            total = sum(info.file_size for info in infos)
            _check_ratio(kind, total, size)
            _check_zip_overlap(kind, infos, size)
            for info in infos:
                if info.is_dir():
                    continue
                if _is_archive_name(info.filename):
                    raise _nested(kind, info.filename)
                if info.flag_bits & 0x1 or info.file_size < 4:
                    continue  # encrypted (cannot be read without the password) or too small to be an archive
                try:
                    with archive.open(info) as member:
                        first = member.read(512)
                except (NotImplementedError, RuntimeError):
                    continue  # a compression method Python does not implement
                if _is_archive_bytes(info.filename, first):
                    raise _nested(kind, info.filename)
    except Rejected:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, lzma.LZMAError) as exc:
        raise _damaged(kind) from exc
    return {"entries": len(infos), "uncompressed_bytes": total}


def _check_zip_overlap(kind: Kind, infos: list[zipfile.ZipInfo], size: int) -> None:
    """Each entry's data must end before the next entry's local header starts (entries sorted by offset)."""
    spans = sorted(
        (info.header_offset,
         info.header_offset + 30 + _raw_name_length(info) + info.compress_size)
        for info in infos)
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        if next_start < end:
            raise _bomb(kind, "its entries overlap, so the same compressed data is unpacked again and again")
    if spans and spans[-1][1] > size:
        raise _damaged(kind)


def _raw_name_length(info: zipfile.ZipInfo) -> int:
    # zipfile decoded the stored name as UTF-8 when flag bit 11 is set, else as cp437 (which round-trips).
    return len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"))


def _check_tar(path: Path, kind: Kind, size: int) -> dict[str, Any]:
    try:
        with tarfile.open(path, "r:") as archive:
            return _walk_tar(archive, kind, size)
    except Rejected:
        raise
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _damaged(kind) from exc


def _walk_tar(archive: tarfile.TarFile, kind: Kind, size: int) -> dict[str, Any]:
    """Headers one by one (a plain tar's data is skipped with seeks), the first bytes of each regular file."""
    count = total = 0
    for member in archive:
        count += 1
        if count > MAX_ARCHIVE_ENTRIES:
            raise _too_many(kind, f"more than {MAX_ARCHIVE_ENTRIES:,}")
        total += member.size
        _check_ratio(kind, total, size)
        if not member.isfile():
            continue
        if _is_archive_name(member.name):
            raise _nested(kind, member.name)
        if member.size >= 4:
            extracted = archive.extractfile(member)
            first = extracted.read(512) if extracted is not None else b""
            if _is_archive_bytes(member.name, first):
                raise _nested(kind, member.name)
    return {"entries": count, "uncompressed_bytes": total}


class _Budgeted(io.RawIOBase):
    """Reads a decompressing stream, counting, and refuses to go past `budget` bytes."""

    def __init__(self, stream: BinaryIO, budget: int, on_over: Callable[[int], Exception]) -> None:
        self.stream, self.budget, self.on_over, self.total = stream, budget, on_over, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(min(len(buffer), MB))
        n = len(data)
        buffer[:n] = data
        self.total += n
        if self.total > self.budget:
            raise self.on_over(self.total)
        return n


def _open_compressed(kind: Kind, path: Path) -> BinaryIO:
    """A reader that decompresses as it goes (bounded memory: a read returns at most what was asked for)."""
    if kind.key in ("gz", "tgz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if kind.key in ("bz2", "tbz2"):
        return bz2.open(path, "rb")  # type: ignore[return-value]
    return lzma.open(path, "rb")  # type: ignore[return-value]


def _check_compressed(path: Path, kind: Kind, size: int) -> dict[str, Any]:
    """Decompress as a stream, counting: more than the budget is a bomb, and it is stopped right there."""
    budget = max(ARCHIVE_RATIO_FLOOR, MAX_ARCHIVE_RATIO * size)

    def over(total: int) -> Exception:
        return _bomb(kind, f"more than {_human(budget)} from {_human(size)}")

    try:
        with _open_compressed(kind, path) as raw:
            stream = _Budgeted(raw, budget, over)
            reader = io.BufferedReader(stream, buffer_size=MB)
            first = reader.peek(512)[:512]
            meta: dict[str, Any] = {}
            if _is_tar(first):
                with tarfile.open(fileobj=reader, mode="r|") as archive:  # type: ignore[call-overload]
                    meta = _walk_tar(archive, kind, size)
            elif _is_archive_bytes("", first):
                raise _nested(kind, "its decompressed content")
            while reader.read(MB):
                pass
            meta["uncompressed_bytes"] = stream.total
            return meta
    except Rejected:
        raise
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zlib.error) as exc:
        raise _damaged(kind) from exc
