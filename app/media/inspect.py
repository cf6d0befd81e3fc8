"""The worker's checks on an uploaded file: what it really is, whether the item may hold it, what it contains.

Pure and synchronous (the worker runs it in a thread). The type comes from the file's bytes, never from its
name: a renamed Windows program is not a song. Each check reads only what it needs, streams where it must, and
keeps memory and disk bounded whatever the upload claims to be.

What each item type accepts (`ALLOWED`, by `Kind.key`):

| item  | accepted                                                        | further checks                 |
|-------|-----------------------------------------------------------------|--------------------------------|
| audio | MP3, WAV, FLAC, Ogg (Vorbis/FLAC/Speex), Opus, M4A, AAC (ADTS)  | must parse with mutagen        |
| video | MP4, WebM, MOV, MKV                                             | ffprobe, when installed        |
| image | PNG, JPEG, GIF, WebP                                            | Pillow verify() + full load(), |
|       |                                                                 | at most 100 megapixels         |
| text  | PDF, EPUB, plain UTF-8 text without NULs (Markdown included)    | EPUB: the archive checks       |
| file  | anything: archives (ZIP and ZIP-based, tar, gzip, bzip2, xz,    | archives: bomb checks, reject; |
|       | 7z, RAR...), PDF, media, programs, other binaries, text         | media: metadata, best effort   |

Covers (`purpose="cover"`) must be PNG, JPEG, WebP or GIF images whatever the item type, checked as strictly
as image items. Previews (`purpose="preview"`) must be of the item's own kind (`PREVIEW_ALLOWED`); a "file"
item's preview may be an image, audio, video, PDF or text.

Archive checks (every ZIP-based file: ZIP, EPUB, Office documents, JARs; and tar, gzip, bzip2, xz):
- more than `MAX_ARCHIVE_ENTRIES` entries: rejected (for ZIP, counted from the end record before zipfile
  parses the central directory);
- uncompressed total over `MAX_ARCHIVE_RATIO` times the file's size: rejected, once that total is above
  `ARCHIVE_RATIO_FLOOR` (so a small archive of a very compressible file is not a "bomb");
- ZIP entries whose data overlap (the "overlapping files" bomb): rejected;
- an archive inside (ZIP, tar, gzip, bzip2, xz, zstd, 7z, RAR..., by name or by its first bytes): rejected,
  except ZIP-based documents and packages (.docx, .epub, .jar...), ordinary files that happen to be ZIPs;
- ZIP and plain tar: only the central directory / headers (and each member's first bytes) are read; gzip,
  bzip2 and xz (and a tar inside) are decompressed as a stream and counted, stopping as soon as the byte
  budget is spent. Nothing is ever extracted to disk;
- 7z and RAR contents cannot be read without extra libraries: accepted for "file" items, with a warning.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import hashlib
import io
import itertools
import json
import lzma
import shutil
import struct
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import filetype
import mutagen.aac
import mutagen.flac
import mutagen.mp3
import mutagen.mp4
import mutagen.oggflac
import mutagen.oggopus
import mutagen.oggspeex
import mutagen.oggvorbis
import mutagen.wave
from PIL import Image, ImageOps

MB = 1024 * 1024
HASH_CHUNK = MB
SNIFF_BYTES = 64 * 1024

IMAGE_MAX_PIXELS = 100_000_000
# Pillow warns above this and refuses above twice this; we refuse above it ourselves (see `_check_pixels`).
Image.MAX_IMAGE_PIXELS = IMAGE_MAX_PIXELS

MAX_ARCHIVE_RATIO = 100
ARCHIVE_RATIO_FLOOR = 10 * MB
MAX_ARCHIVE_ENTRIES = 10_000
MAX_ZIP_DIRECTORY_BYTES = 64 * MB
FFPROBE_TIMEOUT_SECONDS = 120

ITEM_TYPES = ("audio", "video", "text", "image", "file")
PURPOSES = ("file", "cover", "preview")


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


@dataclass(frozen=True, slots=True)
class Kind:
    key: str
    mime: str
    extension: str
    family: str  # audio, video, image, text, document, archive, program, other
    label: str  # "an MP3 audio file": completes "This file is ..."


def _kinds(*rows: tuple[str, str, str, str, str]) -> dict[str, Kind]:
    return {row[0]: Kind(*row) for row in rows}


KINDS: dict[str, Kind] = _kinds(
    ("mp3", "audio/mpeg", "mp3", "audio", "an MP3 audio file"),
    ("wav", "audio/wav", "wav", "audio", "a WAV audio file"),
    ("flac", "audio/flac", "flac", "audio", "a FLAC audio file"),
    ("ogg", "audio/ogg", "ogg", "audio", "an Ogg audio file"),
    ("opus", "audio/ogg", "opus", "audio", "an Opus audio file"),
    ("m4a", "audio/mp4", "m4a", "audio", "an M4A audio file"),
    ("aac", "audio/aac", "aac", "audio", "an AAC audio file"),
    ("mp4", "video/mp4", "mp4", "video", "an MP4 video"),
    ("webm", "video/webm", "webm", "video", "a WebM video"),
    ("mov", "video/quicktime", "mov", "video", "a QuickTime (.mov) video"),
    ("mkv", "video/x-matroska", "mkv", "video", "a Matroska (.mkv) video"),
    ("ogv", "video/ogg", "ogv", "video", "an Ogg video"),
    ("3gp", "video/3gpp", "3gp", "video", "a 3GP video"),
    ("png", "image/png", "png", "image", "a PNG image"),
    ("jpeg", "image/jpeg", "jpg", "image", "a JPEG image"),
    ("gif", "image/gif", "gif", "image", "a GIF image"),
    ("webp", "image/webp", "webp", "image", "a WebP image"),
    ("heic", "image/heic", "heic", "image", "a HEIC image"),
    ("avif", "image/avif", "avif", "image", "an AVIF image"),
    ("svg", "image/svg+xml", "svg", "image", "an SVG image"),
    ("txt", "text/plain", "txt", "text", "plain text"),
    ("html", "text/html", "html", "text", "an HTML page"),
    ("utf16", "text/plain", "txt", "text", "text in UTF-16 (please save it as UTF-8)"),
    ("pdf", "application/pdf", "pdf", "document", "a PDF document"),
    ("epub", "application/epub+zip", "epub", "document", "an EPUB e-book"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "document",
     "a Word document (.docx)"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", "document",
     "an Excel spreadsheet (.xlsx)"),
    ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx", "document",
     "a PowerPoint presentation (.pptx)"),
    ("zip", "application/zip", "zip", "archive", "a ZIP archive"),
    ("tar", "application/x-tar", "tar", "archive", "a tar archive"),
    ("tgz", "application/gzip", "tar.gz", "archive", "a gzipped tar archive (.tar.gz)"),
    ("gz", "application/gzip", "gz", "archive", "a gzip-compressed file"),
    ("tbz2", "application/x-bzip2", "tar.bz2", "archive", "a bzip2-compressed tar archive (.tar.bz2)"),
    ("bz2", "application/x-bzip2", "bz2", "archive", "a bzip2-compressed file"),
    ("txz", "application/x-xz", "tar.xz", "archive", "an xz-compressed tar archive (.tar.xz)"),
    ("xz", "application/x-xz", "xz", "archive", "an xz-compressed file"),
    ("7z", "application/x-7z-compressed", "7z", "archive", "a 7-Zip archive"),
    ("rar", "application/vnd.rar", "rar", "archive", "a RAR archive"),
    ("zst", "application/zstd", "zst", "archive", "a Zstandard-compressed file"),
    ("exe", "application/vnd.microsoft.portable-executable", "exe", "program", "a Windows program (.exe)"),
    ("elf", "application/x-elf", "", "program", "a Linux program (ELF)"),
    ("macho", "application/x-mach-binary", "", "program", "a macOS program (Mach-O)"),
    ("bin", "application/octet-stream", "bin", "other", "an unrecognised binary file"),
)

ANYTHING = "*"
AUDIO_KEYS = frozenset({"mp3", "wav", "flac", "ogg", "opus", "m4a", "aac"})
VIDEO_KEYS = frozenset({"mp4", "webm", "mov", "mkv"})
IMAGE_KEYS = frozenset({"png", "jpeg", "gif", "webp"})
TEXT_KEYS = frozenset({"pdf", "epub", "txt"})
COVER_KEYS = IMAGE_KEYS

ALLOWED: dict[str, frozenset[str]] = {
    "audio": AUDIO_KEYS,
    "video": VIDEO_KEYS,
    "image": IMAGE_KEYS,
    "text": TEXT_KEYS,
    "file": frozenset({ANYTHING}),
}
PREVIEW_ALLOWED: dict[str, frozenset[str]] = {
    **ALLOWED, "file": IMAGE_KEYS | AUDIO_KEYS | VIDEO_KEYS | frozenset({"pdf", "txt"}),
}
# How each item type is named in a rejection ("... not an audio file. Audio items accept ...").
_NOUNS = {"audio": "an audio file", "video": "a video file", "image": "an image", "text": "a text document"}
_ACCEPTED_NAMES = {
    "audio": "MP3, WAV, FLAC, Ogg, Opus, M4A or AAC files",
    "video": "MP4, WebM, MOV or MKV videos",
    "image": "PNG, JPEG, GIF or WebP images",
    "text": "PDF, EPUB or plain text (UTF-8; Markdown included)",
    "file": "images, audio, video, PDF or plain text",  # previews only: a file item's file may be anything
}

# Members of an archive that are archives themselves, by name; ZIP-based documents and packages do not count.
_ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".tbz", ".tbz2", ".xz",
                               ".txz", ".zst", ".tzst", ".lz", ".lzma", ".z", ".cab", ".arj", ".lzh"})
_ZIP_BASED_FILES = frozenset({
    ".docx", ".xlsx", ".pptx", ".docm", ".xlsm", ".pptm", ".odt", ".ods", ".odp", ".odg", ".epub",
    ".jar", ".war", ".apk", ".aab", ".xpi", ".vsix", ".whl", ".nupkg", ".kmz", ".3mf", ".usdz", ".ora",
    ".idml", ".sketch", ".key", ".pages", ".numbers", ".ipa", ".appx", ".msix", ".crx",
})


# ============================================================================================ entry points


def probe_tools() -> dict[str, bool]:
    """Which optional external tools are installed (for /health and the admin page)."""
    return {"ffprobe": _ffprobe_path() is not None}


def inspect_file(path: Path, item_type: str, purpose: str = "file") -> Inspection:
    """Check `path` for an item of `item_type`, uploaded as its main file, its cover or its preview.

    Returns what the file is (by its bytes), its size, SHA-256 and metadata; raises `Rejected` with a sentence
    for the creator when it may not be used. `purpose` may also be passed positionally."""
    if item_type not in ITEM_TYPES:
        raise ValueError(f"unknown item type {item_type!r}")
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise Rejected("This file is empty (0 bytes). Please upload it again.", "empty")

    kind = sniff(path)
    _check_allowed(kind, item_type, purpose)

    metadata: dict[str, Any] = {}
    warnings: list[str] = []
    # Media is checked strictly when the item is of that kind (or for a cover or a preview). A "file" item may
    # hold any media file as the thing sold: its metadata is then best effort, and a failure only a warning.
    strict = purpose != "file" or item_type != "file"
    family = kind.family
    try:
        if kind.key in AUDIO_KEYS:
            metadata.update(_audio_metadata(path, kind))
        elif kind.key in IMAGE_KEYS:
            metadata.update(_image_metadata(path, kind, decode=strict))
        elif family == "video":
            metadata.update(_video_metadata(path, kind, warnings))
    except Rejected as exc:
        if strict:
            raise
        warnings.append(exc.reason)

    if kind.key == "pdf":
        metadata.update(_pdf_metadata(path, size, warnings))
    elif kind.key == "txt":
        metadata["encoding"] = "utf-8"
    elif family == "archive" or kind.key in ("epub", "docx", "xlsx", "pptx"):
        metadata.update(_check_archive(path, kind, size, warnings))

    size_hashed, digest = _sha256(path)
    return Inspection(mime=kind.mime, extension=kind.extension, size=size_hashed, sha256=digest,
                      metadata=metadata, warnings=warnings)


def make_thumbnails(source: Path, out_dir: Path,
                    sizes: Iterable[int] = (320, 640, 1280)) -> list[tuple[int, Path]]:
    """WebP thumbnails of an image, one per requested size: longest side `size` px, or the original's if that
    is smaller (never upscaled), EXIF orientation applied. Returns (requested size, path) pairs, smallest
    first."""
    wanted = sorted({int(s) for s in sizes})
    if not wanted or wanted[0] <= 0:
        raise ValueError("thumbnail sizes must be positive")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with Image.open(source) as opened:
            _check_pixels(opened.size)
            if opened.format == "JPEG":
                # Let libjpeg decode at a reduced scale when the largest thumbnail is much smaller.
                opened.draft("RGB", (wanted[-1], wanted[-1]))
            image = ImageOps.exif_transpose(opened)
            image.load()
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected(_too_many_pixels_message(), "image_too_large") from exc
    except Exception as exc:
        raise Rejected("This image is damaged or incomplete, so no thumbnails could be made from it.",
                       "corrupt_image") from exc
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    # Largest first, each made from the one before, so only one full-size copy of a big image is ever held.
    results: list[tuple[int, Path]] = []
    for size in reversed(wanted):
        longest = min(size, max(image.size))
        image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
        target = out_dir / f"thumb-{size}.webp"
        image.save(target, "WEBP", quality=80, method=4)
        results.append((size, target))
    return results[::-1]


# ============================================================================================ detection


def sniff(path: Path) -> Kind:
    """What the file is, from its first bytes (and, for text, from all of them)."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
        kind = _sniff_magic(head, f)
    if kind is not None:
        return kind
    # Text before filetype's guesses: some of its signatures are valid UTF-8 (Brotli's is "βρ", SWF's "FWS").
    if _is_utf8_text(path):
        lowered = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if lowered.startswith((b"<!doctype html", b"<html")):
            return KINDS["html"]
        if lowered.startswith((b"<svg", b"<?xml")) and b"<svg" in lowered:
            return KINDS["svg"]
        return KINDS["txt"]
    guess = filetype.guess(head)
    if guess is not None:
        return _from_filetype(guess.extension, guess.mime)
    return KINDS["bin"]


def _sniff_magic(head: bytes, f: BinaryIO) -> Kind | None:
    k = KINDS
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return k["png"]
    if head.startswith(b"\xff\xd8\xff"):
        return k["jpeg"]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return k["gif"]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return k["webp"]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return k["wav"]
    if head.startswith(b"fLaC"):
        return k["flac"]
    if head.startswith(b"OggS"):
        return _ogg_kind(head)
    if _is_id3(head):
        # An ID3 tag usually starts an MP3, but may sit in front of FLAC (or AAC) too: look past it.
        tag_size = 10 + _syncsafe(head[6:10]) + (10 if head[5] & 0x10 else 0)
        f.seek(tag_size)
        after = f.read(16)
        if after.startswith(b"fLaC"):
            return k["flac"]
        if _is_adts(after):
            return k["aac"]
        return k["mp3"]
    if _is_adts(head):
        return k["aac"]
    if _mpeg_audio_frame_length(head) is not None and _mpeg_stream_continues(head):
        return k["mp3"]
    if head[4:8] == b"ftyp" and _plausible_box(head, f):
        return _iso_bmff_kind(head, f)
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot") and _plausible_box(head, f):
        return k["mov"]  # QuickTime files from before `ftyp`
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return k["webm"] if b"webm" in head[:64] else k["mkv"]
    pdf_at = head.find(b"%PDF-", 0, 1024)
    if pdf_at == 0 or (pdf_at > 0 and b"\x00" in head[:pdf_at]):  # a binary prefix (MacBinary...) is allowed
        return k["pdf"]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_kind(head)
    if head.startswith(b"\x1f\x8b"):
        return k["tgz"] if _is_tar(_peek_decompressed(lambda b: gzip.GzipFile(fileobj=b), head)) else k["gz"]
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return k["tbz2"] if _is_tar(_peek_decompressed(bz2.BZ2File, head)) else k["bz2"]
    if head.startswith(b"\xfd7zXZ\x00"):
        return k["txz"] if _is_tar(_peek_decompressed(lzma.LZMAFile, head)) else k["xz"]
    if _is_tar(head):
        return k["tar"]
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return k["7z"]
    if head.startswith(b"Rar!\x1a\x07"):
        return k["rar"]
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return k["zst"]
    if head.startswith(b"MZ") and len(head) >= 64:
        pe = struct.unpack("<I", head[0x3C:0x40])[0]
        f.seek(pe)
        if f.read(4) == b"PE\x00\x00":
            return k["exe"]
    if head.startswith(b"\x7fELF"):
        return k["elf"]
    if head[:4] in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"):
        return k["macho"]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and len(head) >= 4:
        return k["utf16"]
    return None


def _plausible_box(head: bytes, f: BinaryIO) -> bool:
    """Whether the file starts with an ISO/QuickTime box whose size fits the file ("The wide..." does not)."""
    if len(head) < 8:
        return False
    size = struct.unpack(">I", head[:4])[0]
    f.seek(0, io.SEEK_END)
    return size in (0, 1) or 8 <= size <= f.tell()


def _from_filetype(extension: str, mime: str) -> Kind:
    known = {"jpg": "jpeg", "exe": "exe", "elf": "elf", "epub": "epub", "docx": "docx", "xlsx": "xlsx",
             "pptx": "pptx", "7z": "7z", "rar": "rar", "zst": "zst"}
    key = known.get(extension, extension)
    if key in KINDS:
        return KINDS[key]
    family = mime.split("/", 1)[0]
    if family == "image":
        return Kind(extension, mime, extension, "image", f"{_article(extension)} {extension.upper()} image")
    name = f"{_article(extension)} {extension.upper()}"
    if family == "audio":
        return Kind(extension, mime, extension, "audio-other", f"{name} audio file")
    if family == "video":
        return Kind(extension, mime, extension, "video-other", f"{name} video")
    return Kind(extension, mime, extension, "other", f"{name} file")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aefhilmnorsx" else "a"  # letters whose names start with a vowel sound


def _is_id3(head: bytes) -> bool:
    return (len(head) >= 10 and head.startswith(b"ID3") and head[3] in (2, 3, 4) and head[4] != 0xFF
            and all(b < 0x80 for b in head[6:10]))


def _syncsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def _is_adts(head: bytes) -> bool:
    # 12-bit sync, MPEG-4/2 id, layer 00; then a valid sampling frequency index.
    return len(head) >= 7 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0 and ((head[2] >> 2) & 0x0F) < 13


_MPEG_BITRATES = {  # kbit/s by (MPEG-1?, layer) and index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_audio_frame_length(header: bytes) -> int | None:
    """The length in bytes of the MPEG audio frame starting here, or None if this is not a frame header."""
    if len(header) < 4 or header[0] != 0xFF or (header[1] & 0xE0) != 0xE0:
        return None
    version = (header[1] >> 3) & 0x03  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5, 1 reserved
    layer = 4 - ((header[1] >> 1) & 0x03)  # 4 would be "reserved"
    bitrate_index, rate_index, padding = header[2] >> 4, (header[2] >> 2) & 0x03, (header[2] >> 1) & 0x01
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _MPEG_RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    if layer == 3 and not mpeg1:
        return 72 * bitrate // rate + padding
    return 144 * bitrate // rate + padding


def _mpeg_stream_continues(head: bytes) -> bool:
    """A lone 0xFFEx pair is common in random data: require the next frame to start where this one ends."""
    length = _mpeg_audio_frame_length(head)
    if length is None:
        return False
    if len(head) < length + 4:
        return length <= len(head) < SNIFF_BYTES  # the whole file is exactly one frame
    return _mpeg_audio_frame_length(head[length:length + 4]) is not None


def _ogg_kind(head: bytes) -> Kind:
    # The first page carries the codec's identification header.
    first_page = head[:512]
    if b"OpusHead" in first_page:
        return KINDS["opus"]
    if b"\x80theora" in first_page:
        return KINDS["ogv"]
    return KINDS["ogg"]


_M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_MOV_BRANDS = {b"qt  "}
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_3GP_PREFIXES = (b"3gp", b"3g2")


def _iso_bmff_kind(head: bytes, f: BinaryIO) -> Kind:
    """MP4 family: the major brand (and compatible brands) in `ftyp` say which; a generic MP4 brand with sound
    but no picture track is M4A audio."""
    ftyp_size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    brands = {major} | {head[i:i + 4] for i in range(16, min(ftyp_size, len(head)) - 3, 4)}
    if major in _AVIF_BRANDS:
        return KINDS["avif"]
    if major in _HEIC_BRANDS:
        return KINDS["avif"] if brands & _AVIF_BRANDS and not brands & {b"heic", b"heix"} else KINDS["heic"]
    if major in _M4A_BRANDS:
        return KINDS["m4a"]
    if major in _MOV_BRANDS:
        return KINDS["mov"]
    if major.startswith(_3GP_PREFIXES):
        return KINDS["3gp"]
    handlers = _mp4_handlers(f)
    if handlers and b"soun" in handlers and b"vide" not in handlers:
        return KINDS["m4a"]
    return KINDS["mp4"]


def _mp4_handlers(f: BinaryIO, max_boxes: int = 1000, max_moov: int = 64 * MB) -> set[bytes]:
    """The track handler types ('vide', 'soun'...) in the `moov` box, found by walking top-level boxes."""
    f.seek(0, io.SEEK_END)
    end = f.tell()
    offset = 0
    for _ in range(max_boxes):
        if offset + 8 > end:
            return set()
        f.seek(offset)
        header = f.read(16)
        size, box = struct.unpack(">I", header[:4])[0], header[4:8]
        header_len = 8
        if size == 1 and len(header) < 16:
            return set()
        if size == 1:
            size, header_len = struct.unpack(">Q", header[8:16])[0], 16
        elif size == 0:
            size = end - offset
        if size < header_len:
            return set()
        if box == b"moov":
            if size > max_moov:
                return set()
            f.seek(offset + header_len)
            moov = f.read(size - header_len)
            handlers = set()
            at = moov.find(b"hdlr")
            while at != -1:
                handlers.add(moov[at + 12:at + 16])
                at = moov.find(b"hdlr", at + 4)
            return handlers
        offset += size
    return set()


def _zip_kind(head: bytes) -> Kind:
    # EPUB requires an uncompressed "mimetype" entry first: its content follows the first local header.
    name_len = struct.unpack("<H", head[26:28])[0] if len(head) >= 30 else 0
    if head[30:30 + name_len] == b"mimetype":
        extra_len = struct.unpack("<H", head[28:30])[0]
        content = head[30 + name_len + extra_len:30 + name_len + extra_len + 20]
        if content == b"application/epub+zip":
            return KINDS["epub"]
    guess = filetype.guess(head)
    if guess is not None and guess.extension in ("epub", "docx", "xlsx", "pptx"):
        return KINDS[guess.extension]
    return KINDS["zip"]


def _is_tar(block: bytes) -> bool:
    return len(block) >= 262 and block[257:262] == b"ustar"


def _peek_decompressed(opener: Callable[[BinaryIO], BinaryIO], head: bytes, size: int = 512) -> bytes:
    """The first bytes a compressed stream decompresses to, from its first (possibly partial) bytes."""
    try:
        with opener(io.BytesIO(head)) as stream:
            return stream.read(size)
    except (OSError, EOFError, lzma.LZMAError, zlib.error):
        return b""


def _is_utf8_text(path: Path) -> bool:
    """Valid UTF-8 (BOM allowed) without NUL bytes, all the way through."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            if b"\x00" in chunk:
                return False
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _check_allowed(kind: Kind, item_type: str, purpose: str) -> None:
    if purpose == "cover":
        if kind.key not in COVER_KEYS:
            what = "a format we do not accept" if kind.family == "image" else "not an image"
            raise Rejected(f"This file is {kind.label}, {what}. Covers must be PNG, JPEG, WebP or GIF "
                           "images.", "type_not_allowed")
    elif purpose == "preview":
        if kind.key not in PREVIEW_ALLOWED[item_type]:
            raise Rejected(f"This file is {kind.label}, which cannot be a preview. Previews of {item_type} "
                           f"items must be {_ACCEPTED_NAMES[item_type]}.", "type_not_allowed")
    elif ANYTHING not in ALLOWED[item_type] and kind.key not in ALLOWED[item_type]:
        accepts = f"{item_type.capitalize()} items accept {_ACCEPTED_NAMES[item_type]}."
        if kind.family.split("-")[0] == item_type:  # a BMP for an image item: right kind, unsupported format
            raise Rejected(f"This file is {kind.label}, a format we do not accept. {accepts}",
                           "type_not_allowed")
        raise Rejected(f"This file is {kind.label}, not {_NOUNS[item_type]}. {accepts}", "type_not_allowed")


# ============================================================================================ media


def _audio_metadata(path: Path, kind: Kind) -> dict[str, Any]:
    readers: dict[str, tuple[Callable[[Path], Any], ...]] = {
        "mp3": (mutagen.mp3.MP3,), "wav": (mutagen.wave.WAVE,), "flac": (mutagen.flac.FLAC,),
        "ogg": (mutagen.oggvorbis.OggVorbis, mutagen.oggflac.OggFLAC, mutagen.oggspeex.OggSpeex),
        "opus": (mutagen.oggopus.OggOpus,), "m4a": (mutagen.mp4.MP4,), "aac": (mutagen.aac.AAC,),
    }
    info = None
    for reader in readers[kind.key]:
        info = _try_read(reader, path)
        if info is not None:
            break
    if info is None:
        raise Rejected(f"This file looks like {kind.label} but could not be read as audio: it may be damaged "
                       "or only partly uploaded.", "unreadable_audio")
    length = float(getattr(info, "length", 0) or 0)
    if length <= 0:
        raise Rejected(f"This file looks like {kind.label} but could not be read as audio: it contains no "
                       "sound.", "unreadable_audio")
    meta: dict[str, Any] = {"duration_seconds": round(length, 3)}
    for name in ("bitrate", "sample_rate", "channels"):
        value = getattr(info, name, None)
        meta[name] = int(value) if value else None
    if kind.key == "opus" and meta["sample_rate"] is None:
        meta["sample_rate"] = 48000  # Opus always decodes at 48 kHz; mutagen leaves it out
    return meta


def _try_read(reader: Callable[[Path], Any], path: Path) -> Any:
    try:
        return reader(path).info
    except Exception:  # noqa: BLE001 - mutagen raises its own errors, and struct/index errors on bad input
        return None


def _too_many_pixels_message() -> str:
    return (f"This image is too large: images may have at most {IMAGE_MAX_PIXELS // 1_000_000} megapixels. "
            "Please scale it down and upload it again.")


def _check_pixels(size: tuple[int, int]) -> None:
    if size[0] * size[1] > IMAGE_MAX_PIXELS:
        raise Rejected(_too_many_pixels_message(), "image_too_large")


def _image_metadata(path: Path, kind: Kind, decode: bool = True) -> dict[str, Any]:
    """Pillow's verify() (structure, checksums), then a full decode (unless `decode` is false: a "file" item's
    own image is not shown by us), refusing anything over the pixel limit before a pixel is decoded."""
    damaged = Rejected(f"This file looks like {kind.label} but is damaged or incomplete, so it cannot be "
                       "shown. Please export it again and upload it.", "corrupt_image")
    try:
        with Image.open(path) as image:
            if decode:
                _check_pixels(image.size)
            image.verify()
        with Image.open(path) as image:
            if decode:
                _check_pixels(image.size)
                image.load()
            width, height = image.size
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn when shown
                width, height = height, width
            meta: dict[str, Any] = {"width": width, "height": height, "format": image.format}
            if getattr(image, "is_animated", False):
                meta["animated"] = True
            return meta
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the warning, if an error
        raise Rejected(_too_many_pixels_message(), "image_too_large") from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error... on bad data
        raise damaged from exc


def _ffprobe_path() -> str | None:
    return shutil.which("ffprobe")


def _video_metadata(path: Path, kind: Kind, warnings: list[str]) -> dict[str, Any]:
    ffprobe = _ffprobe_path()
    if ffprobe is None:
        warnings.append("The video was not fully checked: ffprobe is not installed on the server, so its "
                        "duration and size are unknown.")
        return {"ffprobe": "unavailable"}
    try:
        run = subprocess.run(
            [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
            capture_output=True, timeout=FFPROBE_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        warnings.append("The video was not fully checked: ffprobe took too long.")
        return {"ffprobe": "timeout"}
    unreadable = Rejected(f"This file looks like {kind.label} but could not be read as video: it may be "
                          "damaged or only partly uploaded.", "unreadable_video")
    if run.returncode != 0:
        raise unreadable
    try:
        probe = json.loads(run.stdout or b"{}")
    except ValueError as exc:
        raise unreadable from exc
    streams = probe.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None:
        raise Rejected(f"This file is {kind.label} without any picture: it has no video track.",
                       "unreadable_video")
    duration = _float(probe.get("format", {}).get("duration")) or _float(video.get("duration"))
    meta: dict[str, Any] = {
        "duration_seconds": round(duration, 3) if duration else None,
        "width": video.get("width"),
        "height": video.get("height"),
        "video_codec": video.get("codec_name"),
        "audio_codec": audio.get("codec_name") if audio else None,
    }
    if not duration:
        warnings.append("The video's duration could not be determined.")
    return meta


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pdf_metadata(path: Path, size: int, warnings: list[str]) -> dict[str, Any]:
    with open(path, "rb") as f:
        head = f.read(1024)
        f.seek(max(0, size - 2048))
        tail = f.read()
    start = head.find(b"%PDF-")
    version = head[start + 5:start + 8].decode("ascii", "replace")
    if b"%%EOF" not in tail:
        warnings.append("The PDF has no end-of-file marker: it may be incomplete.")
    return {"pdf_version": version}


# ============================================================================================ archives


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


# ============================================================================================ hashing


def _sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
