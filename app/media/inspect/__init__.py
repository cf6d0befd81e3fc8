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

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from app.media.inspect.archives import (
    ARCHIVE_RATIO_FLOOR,
    MAX_ARCHIVE_ENTRIES,
    MAX_ARCHIVE_RATIO,
    MAX_ZIP_DIRECTORY_BYTES,
    _check_archive,
)
from app.media.inspect.common import HASH_CHUNK, MB, Inspection, Rejected
from app.media.inspect.detect import SNIFF_BYTES, sniff
from app.media.inspect.images import IMAGE_MAX_PIXELS, _image_metadata, make_thumbnails
from app.media.inspect.kinds import (
    ALLOWED,
    ANYTHING,
    AUDIO_KEYS,
    COVER_KEYS,
    IMAGE_KEYS,
    ITEM_TYPES,
    KINDS,
    PREVIEW_ALLOWED,
    PURPOSES,
    TEXT_KEYS,
    VIDEO_KEYS,
    Kind,
    _check_allowed,
)
from app.media.inspect.media import _audio_metadata, _pdf_metadata

__all__ = [
    "ALLOWED", "ANYTHING", "ARCHIVE_RATIO_FLOOR", "AUDIO_KEYS", "COVER_KEYS", "FFPROBE_TIMEOUT_SECONDS",
    "HASH_CHUNK", "IMAGE_KEYS", "IMAGE_MAX_PIXELS", "ITEM_TYPES", "KINDS", "MAX_ARCHIVE_ENTRIES",
    "MAX_ARCHIVE_RATIO", "MAX_ZIP_DIRECTORY_BYTES", "MB", "PREVIEW_ALLOWED", "PURPOSES", "SNIFF_BYTES",
    "TEXT_KEYS", "VIDEO_KEYS", "Inspection", "Kind", "Rejected", "inspect_file", "make_thumbnails",
    "probe_tools", "sniff",
]

FFPROBE_TIMEOUT_SECONDS = 120


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


# ============================================================================================ video
# Kept in this module, not in media.py: tests replace `app.media.inspect._ffprobe_path`, and both
# `probe_tools` and `_video_metadata` must look it up here for that to take effect.


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


# ============================================================================================ hashing


def _sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
