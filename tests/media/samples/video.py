"""Video samples: the start of an MP4 (no playable frames), or a real one when ffmpeg is installed."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path


def mp4_stub_bytes() -> bytes:
    """An ISO base media file with an `ftyp` box (brand isom) and an empty `mdat`: what the bytes of an MP4
    look like at the start, though nothing can be played."""
    ftyp = struct.pack(">I", 24) + b"ftyp" + b"isom" + struct.pack(">I", 0x200) + b"isom" + b"mp41"
    return ftyp + struct.pack(">I", 8) + b"mdat"


def write_mp4_stub(directory: Path, name: str = "clip.mp4") -> Path:
    path = directory / name
    path.write_bytes(mp4_stub_bytes())
    return path


def write_mp4_with_ffmpeg(directory: Path, name: str = "clip.mp4", seconds: float = 1.0,
                          size: tuple[int, int] = (64, 48)) -> Path | None:
    """A real H.264 (or MPEG-4 part 2) MP4 made by ffmpeg's test source; None when ffmpeg is not installed."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    path = directory / name
    base = [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size[0]}x{size[1]}:rate=10",
            "-t", str(seconds), "-pix_fmt", "yuv420p"]
    for codec in (["-c:v", "libx264"], ["-c:v", "mpeg4"]):
        done = subprocess.run([*base, *codec, str(path)], capture_output=True, timeout=60, check=False)
        if done.returncode == 0:
            return path
    return None
