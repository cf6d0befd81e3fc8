"""The kinds of file we recognise, and which of them each item type (and cover, preview) accepts."""

from __future__ import annotations

from dataclasses import dataclass

from app.media.inspect.common import Rejected

ITEM_TYPES = ("audio", "video", "text", "image", "file")
PURPOSES = ("file", "cover", "preview")


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
