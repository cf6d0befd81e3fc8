"""Image samples: PNG, JPEG (with EXIF orientation), GIF, WebP and BMP, damaged ones, and a PNG bomb."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image


def write_png(directory: Path, name: str = "picture.png", size: tuple[int, int] = (200, 120),
              mode: str = "RGB") -> Path:
    path = directory / name
    image = Image.new(mode, size)
    # A gradient, so the image is not trivially compressible and thumbnails have something to resample.
    for x in range(0, size[0], max(1, size[0] // 50)):
        for y in range(0, size[1], max(1, size[1] // 50)):
            colour = (x * 255 // size[0], y * 255 // size[1], 128) if mode.startswith("RGB") else 128
            if mode == "RGBA":
                colour = (*colour, 200)  # type: ignore[misc]
            image.putpixel((x, y), colour)
    image.save(path, "PNG")
    return path


def write_jpeg(directory: Path, name: str = "photo.jpg", size: tuple[int, int] = (300, 200),
               orientation: int | None = None) -> Path:
    """A JPEG; with `orientation`, stored with that EXIF orientation tag (6 = rotate 90 degrees clockwise)."""
    path = directory / name
    image = Image.new("RGB", size, (200, 60, 30))
    image.paste((30, 60, 200), (0, 0, size[0] // 2, size[1] // 2))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, "JPEG", quality=85, exif=exif.tobytes())
    return path


def write_gif(directory: Path, name: str = "anim.gif", size: tuple[int, int] = (64, 48)) -> Path:
    path = directory / name
    frames = [Image.new("P", size, i * 40) for i in range(3)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def write_webp(directory: Path, name: str = "picture.webp", size: tuple[int, int] = (80, 60)) -> Path:
    path = directory / name
    Image.new("RGBA", size, (10, 200, 10, 128)).save(path, "WEBP")
    return path


def write_bmp(directory: Path, name: str = "picture.bmp", size: tuple[int, int] = (20, 10)) -> Path:
    path = directory / name
    Image.new("RGB", size).save(path, "BMP")
    return path


def write_truncated_png(directory: Path, name: str = "truncated.png") -> Path:
    """A real PNG cut off half-way through its image data."""
    source = io.BytesIO()
    Image.effect_noise((200, 200), 64).convert("RGB").save(source, "PNG")
    data = source.getvalue()
    path = directory / name
    path.write_bytes(data[: len(data) // 2])
    return path


def write_garbage_png(directory: Path, name: str = "garbage.png") -> Path:
    """The PNG signature and header chunk, then garbage where the image data should be."""
    source = io.BytesIO()
    Image.new("RGB", (50, 50)).save(source, "PNG")
    data = source.getvalue()
    path = directory / name
    path.write_bytes(data[:33] + bytes(range(256)) * 8)
    return path


def write_truncated_jpeg(directory: Path, name: str = "truncated.jpg") -> Path:
    source = io.BytesIO()
    Image.effect_noise((300, 300), 64).convert("RGB").save(source, "JPEG", quality=90)
    data = source.getvalue()
    path = directory / name
    path.write_bytes(data[: len(data) // 3])
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_huge_png(directory: Path, name: str = "bomb.png", width: int = 20_000,
                   height: int = 20_000) -> Path:
    """A valid 1-bit greyscale PNG of width x height black pixels. 20000 x 20000 (400 megapixels, 1.6 GB once
    decoded as RGBA) is about 50 kB on disk. Rows are compressed as they are produced, never held at once."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte "none", then the packed 1-bit pixels
    compressor = zlib.compressobj(9)
    idat = bytearray()
    batch = row * 256
    for start in range(0, height, 256):
        idat += compressor.compress(batch if start + 256 <= height else row * (height - start))
    idat += compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path = directory / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", bytes(idat))
                     + _png_chunk(b"IEND", b""))
    return path
