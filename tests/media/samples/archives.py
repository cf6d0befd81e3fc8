"""Archive samples: zip (plain, bomb, overlapping, nested, many entries), EPUB, tar, tar.gz, gzip (plain and
bomb) and a 7z header. Bombs stream zeros through the compressor: only the small result touches the disk."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

MB = 1024 * 1024


def write_zip(directory: Path, name: str = "pack.zip", files: dict[str, bytes] | None = None) -> Path:
    path = directory / name
    files = files if files is not None else {
        "README.txt": b"A small sample pack.\n",
        "presets/warm.json": b'{"cutoff": 0.4, "resonance": 0.2}\n',
        "presets/cold.json": b'{"cutoff": 0.8, "resonance": 0.1}\n',
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def write_zip_bomb(directory: Path, name: str = "bomb.zip", megabytes: int = 60) -> Path:
    """`megabytes` of zeros, deflated: about 60 kB on disk for 60 MB inside (ratio about 1000x). The zeros are
    streamed into the archive one megabyte at a time."""
    path = directory / name
    chunk = bytes(MB)
    with (zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
          archive.open("zeros.bin", "w", force_zip64=True) as member):
        for _ in range(megabytes):
            member.write(chunk)
    return path


def write_overlapping_zip(directory: Path, name: str = "overlap.zip", copies: int = 20) -> Path:
    """A "non-recursive" zip bomb in the style of overlapping-file bombs: many central directory entries all
    pointing at the same compressed data. Each entry alone looks ordinary (1 MB inside, ratio about 1000x but
    shared); only the overlap gives it away."""
    source = io.BytesIO()
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("a0000.bin", bytes(MB // 8))
    data = source.getvalue()
    eocd = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<II", data[eocd + 12: eocd + 20])
    record = data[cd_offset: cd_offset + cd_size]
    records = b"".join(record.replace(b"a0000.bin", f"a{i:04d}.bin".encode()) for i in range(copies))
    counts = struct.pack("<HHII", copies, copies, len(records), cd_offset)
    tail = data[eocd:eocd + 8] + counts + data[eocd + 20:]
    path = directory / name
    path.write_bytes(data[:cd_offset] + records + tail)
    return path


def write_nested_zip(directory: Path, name: str = "nested.zip", inner_name: str = "inner.zip") -> Path:
    """A zip holding another zip (under `inner_name`, which need not end in .zip)."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("hello.txt", b"hello\n")
    return write_zip(directory, name, {"readme.txt": b"see inside\n", inner_name: inner.getvalue()})


def write_many_entries_zip(directory: Path, name: str = "many.zip", entries: int = 10_001) -> Path:
    path = directory / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(entries):
            archive.writestr(f"f{i}", b"")
    return path


def write_epub(directory: Path, name: str = "book.epub") -> Path:
    """A minimal EPUB: the uncompressed `mimetype` entry first, as the format requires."""
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", b"application/epub+zip", zipfile.ZIP_STORED)
        container = (
            '<?xml version="1.0"?>'
            '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>"
        )
        archive.writestr("META-INF/container.xml", container, zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/content.opf", '<?xml version="1.0"?><package version="3.0"/>',
                         zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/chapter1.xhtml", "<html><body><p>Once upon a time.</p></body></html>",
                         zipfile.ZIP_DEFLATED)
    return path


def write_tar_gz(directory: Path, name: str = "pack.tar.gz", files: dict[str, bytes] | None = None) -> Path:
    path = directory / name
    if files is None:
        files = {"README.txt": b"hello\n", "src/main.c": b"int main(void){return 0;}\n"}
    with tarfile.open(path, "w:gz") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def write_tar(directory: Path, name: str = "pack.tar", files: dict[str, bytes] | None = None) -> Path:
    path = directory / name
    files = files if files is not None else {"README.txt": b"hello\n", "data/notes.md": b"# notes\n"}
    with tarfile.open(path, "w") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def write_gzip_bomb(directory: Path, name: str = "zeros.gz", megabytes: int = 40) -> Path:
    """`megabytes` of zeros gzipped (about 40 kB on disk), streamed one megabyte at a time."""
    path = directory / name
    chunk = bytes(MB)
    with gzip.open(path, "wb", compresslevel=9) as out:
        for _ in range(megabytes):
            out.write(chunk)
    return path


def write_gzip(directory: Path, name: str = "notes.txt.gz", data: bytes = b"some notes\n" * 100) -> Path:
    path = directory / name
    with gzip.open(path, "wb") as out:
        out.write(data)
    return path


def write_7z_header(directory: Path, name: str = "pack.7z") -> Path:
    """Only the 7z signature and start header (the contents cannot be built without a 7z library)."""
    path = directory / name
    path.write_bytes(b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24) + b"\x00" * 64)
    return path
