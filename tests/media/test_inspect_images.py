"""The worker's checks of images (dimensions, damage, decompression bombs) and the WebP thumbnails it makes,
on real (small) files made by tests/media/samples/. No database, no network."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from app.media import inspect as media_inspect
from app.media.inspect import Rejected, inspect_file, make_thumbnails
from tests.media import samples
from tests.media.helpers import ITEM_TYPES, Writer, rejected, sha256_of

# ------------------------------------------------------------------------------------------------ images


@pytest.mark.parametrize(("writer", "size", "mime", "extension", "fmt"), [
    (lambda d: samples.write_png(d, size=(200, 120)), (200, 120), "image/png", "png", "PNG"),
    (lambda d: samples.write_jpeg(d, size=(300, 200)), (300, 200), "image/jpeg", "jpg", "JPEG"),
    (lambda d: samples.write_gif(d, size=(64, 48)), (64, 48), "image/gif", "gif", "GIF"),
    (lambda d: samples.write_webp(d, size=(80, 60)), (80, 60), "image/webp", "webp", "WEBP"),
], ids=["png", "jpeg", "gif", "webp"])
def test_images_are_accepted_with_dimensions(tmp_path: Path, writer: Writer, size: tuple[int, int], mime: str,
                                             extension: str, fmt: str) -> None:
    path = writer(tmp_path)
    result = inspect_file(path, "image")
    assert (result.mime, result.extension) == (mime, extension)
    assert (result.metadata["width"], result.metadata["height"]) == size
    assert result.metadata["format"] == fmt
    assert result.size == path.stat().st_size and result.sha256 == sha256_of(path)
    # Any item may have it as its cover.
    for item_type in ITEM_TYPES:
        assert inspect_file(path, item_type, purpose="cover").metadata["width"] == size[0]


def test_purpose_may_be_passed_positionally(tmp_path: Path) -> None:
    # The upload job calls it through anyio.to_thread.run_sync, which passes positional arguments only.
    assert inspect_file(samples.write_png(tmp_path), "audio", "cover").mime == "image/png"


def test_dimensions_follow_the_exif_orientation(tmp_path: Path) -> None:
    path = samples.write_jpeg(tmp_path, size=(300, 200), orientation=6)  # shown rotated a quarter turn
    result = inspect_file(path, "image")
    assert (result.metadata["width"], result.metadata["height"]) == (200, 300)


@pytest.mark.parametrize("writer", [samples.write_truncated_png, samples.write_garbage_png,
                                    samples.write_truncated_jpeg], ids=["truncated-png", "garbage-png",
                                                                        "truncated-jpeg"])
def test_damaged_images_are_rejected(tmp_path: Path, writer: Writer) -> None:
    path = writer(tmp_path)
    for item_type, purpose in (("image", "file"), ("audio", "cover")):
        error = rejected(path, item_type, purpose)
        assert error.code == "corrupt_image"
        assert "damaged or incomplete" in error.reason


def test_a_decompression_bomb_image_is_rejected(tmp_path: Path) -> None:
    path = samples.write_huge_png(tmp_path, width=20_000, height=20_000)
    assert path.stat().st_size < 200_000  # 400 megapixels in a small file
    for item_type, purpose in (("image", "file"), ("video", "cover")):
        error = rejected(path, item_type, purpose)
        assert error.code == "image_too_large"
        assert "100 megapixels" in error.reason
    with pytest.raises(Rejected, match="100 megapixels"):
        make_thumbnails(path, tmp_path / "thumbs")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_image_over_the_limit_but_under_pillows_hard_limit_is_rejected_too(tmp_path: Path) -> None:
    # 144 megapixels: Pillow only warns (it refuses at twice its limit); we refuse.
    path = samples.write_huge_png(tmp_path, width=12_000, height=12_000)
    assert rejected(path, "image").code == "image_too_large"


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillows_bomb_warning_turned_into_an_error_is_still_reported_as_too_large(tmp_path: Path) -> None:
    path = samples.write_huge_png(tmp_path, width=12_000, height=12_000)
    assert rejected(path, "image").code == "image_too_large"


def test_a_huge_image_sold_in_a_file_item_is_kept_with_a_warning(tmp_path: Path) -> None:
    # Not decoded (we do not show it), so not refused; Pillow's own hard limit still notes it.
    result = inspect_file(samples.write_huge_png(tmp_path, width=20_000, height=20_000), "file")
    assert result.mime == "image/png"
    assert any("100 megapixels" in w for w in result.warnings)


def test_pixel_limit_is_set_on_pillow() -> None:
    assert Image.MAX_IMAGE_PIXELS == media_inspect.IMAGE_MAX_PIXELS == 100_000_000


def test_an_unsupported_image_format_is_named(tmp_path: Path) -> None:
    path = samples.write_bmp(tmp_path)
    error = rejected(path, "image")
    assert error.reason.startswith("This file is a BMP image, a format we do not accept.")
    assert "PNG, JPEG, GIF or WebP" in error.reason
    assert "Covers must be PNG, JPEG, WebP or GIF" in rejected(path, "file", "cover").reason
    assert inspect_file(path, "file").mime == "image/bmp"

# ------------------------------------------------------------------------------------------------ thumbnails


def open_thumb(path: Path) -> Image.Image:
    image = Image.open(path)
    assert image.format == "WEBP"
    return image


def test_thumbnails_are_webp_with_the_longest_side_requested(tmp_path: Path) -> None:
    source = samples.write_png(tmp_path, size=(1500, 700), mode="RGBA")
    result = make_thumbnails(source, tmp_path / "thumbs")
    assert [size for size, _ in result] == [320, 640, 1280]
    for size, path in result:
        assert path.parent == tmp_path / "thumbs" and path.suffix == ".webp"
        with open_thumb(path) as image:
            assert max(image.size) == size
            assert image.size[0] / image.size[1] == pytest.approx(1500 / 700, rel=0.02)
            assert image.mode == "RGBA"  # transparency kept


def test_thumbnails_never_upscale(tmp_path: Path) -> None:
    source = samples.write_png(tmp_path, size=(500, 250))
    result = make_thumbnails(source, tmp_path / "thumbs")
    sizes = {}
    for size, path in result:
        with open_thumb(path) as image:
            sizes[size] = image.size
            assert image.mode == "RGB"
    assert sizes == {320: (320, 160), 640: (500, 250), 1280: (500, 250)}


def test_thumbnails_apply_the_exif_orientation(tmp_path: Path) -> None:
    source = samples.write_jpeg(tmp_path, size=(800, 400), orientation=6)
    (size, path), = make_thumbnails(source, tmp_path / "thumbs", sizes=(320,))
    with open_thumb(path) as image:
        assert (size, image.size) == (320, (160, 320))  # portrait, as the photo is shown


def test_thumbnails_of_a_palette_gif_and_a_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (400, 300), (0, 128, 255, 0)).save(cmyk, "JPEG")
    for source in (samples.write_gif(tmp_path), cmyk):
        for _, path in make_thumbnails(source, tmp_path / source.stem, sizes=(320,)):
            with open_thumb(path) as image:
                assert image.mode == "RGB"
