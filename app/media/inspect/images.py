"""Images: Pillow verification and full decode within the pixel limit, and WebP thumbnails."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from app.media.inspect.common import Rejected
from app.media.inspect.kinds import Kind

IMAGE_MAX_PIXELS = 100_000_000
# Pillow warns above this and refuses above twice this; we refuse above it ourselves (see `_check_pixels`).
Image.MAX_IMAGE_PIXELS = IMAGE_MAX_PIXELS


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
