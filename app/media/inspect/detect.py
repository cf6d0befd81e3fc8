"""What a file is, from its bytes (magic numbers, container headers, UTF-8 text), never from its name."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import filetype

from app.media.inspect.common import HASH_CHUNK, MB
from app.media.inspect.kinds import KINDS, Kind

SNIFF_BYTES = 64 * 1024


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
