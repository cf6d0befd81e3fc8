"""Other samples: programs (Windows PE, Linux ELF), text, unknown binary bytes, an empty file, and a PDF."""

from __future__ import annotations

import struct
from pathlib import Path


def write_exe(directory: Path, name: str = "song.mp3") -> Path:
    """The start of a Windows PE program: a DOS "MZ" header pointing at a "PE" header (x86-64), named like a
    song."""
    dos = bytearray(128)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x80)
    dos[0x40:0x40 + 39] = b"This program cannot be run in DOS mode.".ljust(39)
    coff = b"PE\x00\x00" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 0xF0, 0x22)
    path = directory / name
    path.write_bytes(bytes(dos) + coff + bytes(512))
    return path


def write_elf(directory: Path, name: str = "tool") -> Path:
    path = directory / name
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 2, 0x3E, 1) + bytes(200))
    return path


def write_text(directory: Path, name: str = "notes.md",
               text: str = "# Liner notes\n\nRecorded in one take, café at dawn — thank you.\n") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def write_binary(directory: Path, name: str = "blob.bin") -> Path:
    """Bytes with no known signature and not text."""
    path = directory / name
    path.write_bytes(bytes([0x13, 0x37, 0x00, 0xFE]) + bytes(range(256)) * 4)
    return path


def write_empty(directory: Path, name: str = "empty.mp3") -> Path:
    path = directory / name
    path.write_bytes(b"")
    return path


def pdf_bytes(text: str = "Hello") -> bytes:
    """A minimal valid one-page PDF 1.4 with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R "
         b"/Resources << /Font << /F1 5 0 R >> >> >>"),
        None,  # the content stream, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    stream = f"BT /F1 18 Tf 20 40 Td ({text}) Tj ET".encode()
    objects[3] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write_pdf(directory: Path, name: str = "book.pdf") -> Path:
    path = directory / name
    path.write_bytes(pdf_bytes())
    return path
