"""Metadata of audio files (read with mutagen) and PDFs. Video (ffprobe) is in `__init__`: see there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import mutagen.aac
import mutagen.flac
import mutagen.mp3
import mutagen.mp4
import mutagen.oggflac
import mutagen.oggopus
import mutagen.oggspeex
import mutagen.oggvorbis
import mutagen.wave

from app.media.inspect.common import Rejected
from app.media.inspect.kinds import Kind


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
