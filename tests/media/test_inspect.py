"""The worker's file checks, on real (small) files made by tests/media/samples.py. No database, no network."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from app.media import inspect as media_inspect
from app.media.inspect import ALLOWED, Inspection, Rejected, inspect_file, make_thumbnails, probe_tools
from tests.media import samples

ITEM_TYPES = ("audio", "video", "image", "text", "file")
Writer = Callable[[Path], Path]


def rejected(path: Path, item_type: str, purpose: str = "file") -> Rejected:
    with pytest.raises(Rejected) as caught:
        inspect_file(path, item_type, purpose=purpose)
    return caught.value


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ audio


def test_wav_is_accepted_as_audio_with_its_metadata(tmp_path: Path) -> None:
    path = samples.write_wav(tmp_path, seconds=1.0, rate=22050)
    result = inspect_file(path, "audio")
    assert isinstance(result, Inspection)
    assert (result.mime, result.extension) == ("audio/wav", "wav")
    assert result.size == path.stat().st_size
    assert result.sha256 == sha256_of(path)
    assert result.metadata["duration_seconds"] == pytest.approx(1.0, abs=0.01)
    assert result.metadata["sample_rate"] == 22050
    assert result.metadata["channels"] == 1
    assert result.metadata["bitrate"] == 22050 * 16
    assert result.warnings == []


@pytest.mark.parametrize("id3", [False, True], ids=["frame-sync", "id3-tag"])
def test_hand_made_mp3_frames_are_read_by_mutagen(tmp_path: Path, id3: bool) -> None:
    path = samples.write_mp3(tmp_path, frames=40, id3=id3)
    result = inspect_file(path, "audio")
    assert (result.mime, result.extension) == ("audio/mpeg", "mp3")
    # 40 frames x 1152 samples / 44100 Hz = 1.045 s; mutagen estimates from size and bitrate (1.04 s).
    assert result.metadata["duration_seconds"] == pytest.approx(1.04, abs=0.05)
    assert result.metadata["bitrate"] == 128_000
    assert result.metadata["sample_rate"] == 44_100
    assert result.metadata["channels"] == 2
    assert result.sha256 == sha256_of(path)


@pytest.mark.parametrize(("writer", "mime", "extension", "sample_rate"), [
    (samples.write_flac, "audio/flac", "flac", 44100),
    (samples.write_opus, "audio/ogg", "opus", 48000),
    (samples.write_vorbis, "audio/ogg", "ogg", 44100),
    (samples.write_m4a, "audio/mp4", "m4a", 44100),
    # A generic MP4 brand with a sound track and no picture track is audio too.
    (lambda d: samples.write_m4a(d, "song.mp4", brand=b"isom"), "audio/mp4", "m4a", 44100),
], ids=["flac", "opus", "vorbis", "m4a", "audio-only-mp4"])
def test_other_audio_formats_are_recognised_and_read(tmp_path: Path, writer: Writer, mime: str,
                                                     extension: str, sample_rate: int) -> None:
    result = inspect_file(writer(tmp_path), "audio")
    assert (result.mime, result.extension) == (mime, extension)
    assert result.metadata["duration_seconds"] == pytest.approx(1.0, abs=0.01)
    assert result.metadata["sample_rate"] == sample_rate
    assert result.metadata["channels"] == 2


def test_a_renamed_windows_program_is_not_an_mp3(tmp_path: Path) -> None:
    path = samples.write_exe(tmp_path, "song.mp3")
    error = rejected(path, "audio")
    assert str(error).startswith("This file is a Windows program (.exe), not an audio file.")
    assert error.reason == str(error) and error.code == "type_not_allowed"
    assert "MP3" in error.reason  # says what is accepted instead
    assert "not a video file" in rejected(path, "video").reason
    assert "not an image" in rejected(path, "image").reason
    assert "not a text document" in rejected(path, "text").reason
    # Software is what "file" items are for.
    result = inspect_file(path, "file")
    assert result.mime == "application/vnd.microsoft.portable-executable"
    assert result.extension == "exe"


def test_mp3_bytes_that_mutagen_cannot_read_are_rejected(tmp_path: Path) -> None:
    path = samples.write_fake_mp3(tmp_path)
    error = rejected(path, "audio")
    assert error.code == "unreadable_audio"
    assert "could not be read as audio" in error.reason
    # As the thing sold in a "file" item it is kept, with the problem noted.
    result = inspect_file(path, "file")
    assert result.mime == "audio/mpeg"
    assert any("could not be read as audio" in w for w in result.warnings)


def test_a_lone_frame_header_followed_by_noise_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp3"
    path.write_bytes(samples.MP3_HEADER + bytes(range(256)) * 10)  # one header, then no second frame
    error = rejected(path, "audio")
    assert error.code in ("unreadable_audio", "type_not_allowed")


# ------------------------------------------------------------------------------------------------ empty


@pytest.mark.parametrize("item_type", ITEM_TYPES)
@pytest.mark.parametrize("purpose", ["file", "cover", "preview"])
def test_an_empty_file_is_rejected(tmp_path: Path, item_type: str, purpose: str) -> None:
    error = rejected(samples.write_empty(tmp_path), item_type, purpose)
    assert error.code == "empty"
    assert "empty" in error.reason


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


# ------------------------------------------------------------------------------------------------ text


def test_plain_utf8_text_is_text(tmp_path: Path) -> None:
    path = samples.write_text(tmp_path)
    for item_type in ("text", "file"):
        result = inspect_file(path, item_type)
        assert (result.mime, result.extension) == ("text/plain", "txt")
        assert result.sha256 == sha256_of(path)
    assert rejected(path, "audio").reason.startswith("This file is plain text, not an audio file.")
    assert rejected(path, "image").code == "type_not_allowed"


@pytest.mark.parametrize(("data", "label"), [
    (b"caf\xe9 au lait\n", "unrecognised binary"),  # Latin-1, not UTF-8
    (b"hello\x00world\n", "unrecognised binary"),
    ("hello".encode("utf-16"), "UTF-16"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML page"),
], ids=["latin-1", "nul-byte", "utf-16", "html"])
def test_what_is_not_plain_utf8_text_is_not_a_text_item(tmp_path: Path, data: bytes, label: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    error = rejected(path, "text")
    assert label in error.reason and "Text items accept PDF, EPUB or plain text" in error.reason


@pytest.mark.parametrize("text", [
    "The wide sea, a poem\n",  # "wide" where a QuickTime box type would be
    "βροχή: rain, in Greek\n",  # starts with the bytes of Brotli's signature
    "Notes on the %PDF-1.7 header\n",
    "FWS: notes from the meeting\n",  # Flash's signature
], ids=["quicktime-like", "brotli-like", "mentions-pdf", "flash-like"])
def test_text_that_happens_to_look_like_a_signature_is_still_text(tmp_path: Path, text: str) -> None:
    result = inspect_file(samples.write_text(tmp_path, text=text), "text")
    assert result.mime == "text/plain"


def test_pdf_is_accepted_for_text_and_file_items(tmp_path: Path) -> None:
    path = samples.write_pdf(tmp_path)
    for item_type in ("text", "file"):
        result = inspect_file(path, item_type)
        assert (result.mime, result.extension) == ("application/pdf", "pdf")
        assert result.metadata["pdf_version"] == "1.4"
        assert result.warnings == []
    assert rejected(path, "audio").reason.startswith("This file is a PDF document, not an audio file.")
    assert "Covers must be" in rejected(path, "text", "cover").reason


def test_a_pdf_without_its_end_marker_gets_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(samples.pdf_bytes()[:-30])
    assert any("incomplete" in w for w in inspect_file(path, "text").warnings)


def test_epub_is_detected_inside_its_zip(tmp_path: Path) -> None:
    path = samples.write_epub(tmp_path, "book.zip")  # the name does not matter
    result = inspect_file(path, "text")
    assert (result.mime, result.extension) == ("application/epub+zip", "epub")
    assert result.metadata["entries"] == 4
    assert "not a text document" in rejected(samples.write_zip(tmp_path), "text").reason


# ------------------------------------------------------------------------------------------------ archives


def test_a_zip_is_accepted_for_file_items_only(tmp_path: Path) -> None:
    path = samples.write_zip(tmp_path)
    result = inspect_file(path, "file")
    assert (result.mime, result.extension) == ("application/zip", "zip")
    assert result.metadata == {"entries": 3, "uncompressed_bytes": 89}
    assert result.sha256 == sha256_of(path)
    for item_type in ("audio", "video", "image", "text"):
        assert rejected(path, item_type).reason.startswith("This file is a ZIP archive, not ")


def test_a_zip_bomb_is_rejected_from_its_directory(tmp_path: Path) -> None:
    path = samples.write_zip_bomb(tmp_path, megabytes=60)
    assert path.stat().st_size < 200_000  # 60 MB inside, streamed in: only the small archive touches the disk
    error = rejected(path, "file")
    assert error.code == "archive_bomb"
    assert "archive bomb" in error.reason and "100\u00d7" in error.reason


def test_a_zip_whose_entries_share_their_data_is_rejected(tmp_path: Path) -> None:
    error = rejected(samples.write_overlapping_zip(tmp_path), "file")
    assert error.code == "archive_bomb"
    assert "overlap" in error.reason


@pytest.mark.parametrize("inner_name", ["inner.zip", "innocent.dat"])
def test_a_zip_inside_a_zip_is_rejected_by_name_or_by_content(tmp_path: Path, inner_name: str) -> None:
    error = rejected(samples.write_nested_zip(tmp_path, inner_name=inner_name), "file")
    assert error.code == "nested_archive"
    assert inner_name in error.reason and "Archives inside archives" in error.reason


def test_zip_based_documents_inside_a_zip_are_not_nested_archives(tmp_path: Path) -> None:
    book = samples.write_epub(tmp_path).read_bytes()
    path = samples.write_zip(tmp_path, "templates.zip", {"letter.docx": book, "plugin/lib/x.jar": book,
                                                         "book.epub": book})
    assert inspect_file(path, "file").metadata["entries"] == 3


def test_a_zip_with_legacy_cp437_names_is_not_mistaken_for_overlapping(tmp_path: Path) -> None:
    # Old Windows tools store names in code page 437 without the UTF-8 flag; "caf\x82" is "café" there.
    path = samples.write_zip(tmp_path, "legacy.zip", {"cafe1.txt": b"one\n", "cafe2.txt": b"two\n"})
    data = path.read_bytes().replace(b"cafe1", b"caf\x821").replace(b"cafe2", b"caf\x822")
    path.write_bytes(data)
    assert inspect_file(path, "file").metadata["entries"] == 2


def test_a_zip_with_too_many_entries_is_rejected(tmp_path: Path) -> None:
    error = rejected(samples.write_many_entries_zip(tmp_path, entries=10_001), "file")
    assert error.code == "too_many_entries"
    assert "10,001" in error.reason and "10,000" in error.reason


def test_a_truncated_zip_is_damaged(tmp_path: Path) -> None:
    data = samples.write_zip(tmp_path).read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(path, "file").code == "corrupt_archive"


def test_tar_and_tar_gz_are_accepted_with_their_entry_count(tmp_path: Path) -> None:
    tar = inspect_file(samples.write_tar(tmp_path), "file")
    assert (tar.mime, tar.extension, tar.metadata["entries"]) == ("application/x-tar", "tar", 2)
    tgz = inspect_file(samples.write_tar_gz(tmp_path), "file")
    assert (tgz.mime, tgz.extension, tgz.metadata["entries"]) == ("application/gzip", "tar.gz", 2)


def test_a_gzip_file_is_decompressed_as_a_stream_and_measured(tmp_path: Path) -> None:
    result = inspect_file(samples.write_gzip(tmp_path, data=b"x" * 5000), "file")
    assert (result.extension, result.metadata["uncompressed_bytes"]) == ("gz", 5000)


def test_a_gzip_bomb_is_stopped_at_its_budget(tmp_path: Path) -> None:
    path = samples.write_gzip_bomb(tmp_path, megabytes=40)
    assert path.stat().st_size < 100_000
    error = rejected(path, "file")
    assert error.code == "archive_bomb"


def test_a_tar_gz_bomb_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bomb.tar.gz"

    class Zeros(io.RawIOBase):
        left = 50 * samples.MB

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            n = min(len(buffer), self.left)
            buffer[:n] = bytes(n)
            self.left -= n
            return n

    with gzip.open(path, "wb", compresslevel=9) as out, tarfile.open(fileobj=out, mode="w|") as archive:
        info = tarfile.TarInfo("zeros.bin")
        info.size = Zeros.left
        archive.addfile(info, io.BufferedReader(Zeros()))
    assert path.stat().st_size < 200_000
    assert rejected(path, "file").code == "archive_bomb"


def test_archives_inside_tar_archives_are_rejected(tmp_path: Path) -> None:
    inner = samples.write_zip(tmp_path).read_bytes()
    error = rejected(samples.write_tar(tmp_path, "a.tar", {"x.txt": b"x", "stuff.bin": inner}), "file")
    assert (error.code, "stuff.bin" in error.reason) == ("nested_archive", True)
    error = rejected(samples.write_tar_gz(tmp_path, "b.tar.gz", {"inner.tar.gz": b"not even real"}), "file")
    assert error.code == "nested_archive"
    gz_of_zip = samples.write_gzip(tmp_path, "c.zip.gz", data=inner)
    assert rejected(gz_of_zip, "file").code == "nested_archive"


def test_a_truncated_tar_gz_is_damaged(tmp_path: Path) -> None:
    data = samples.write_tar_gz(tmp_path).read_bytes()
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(path, "file").code == "corrupt_archive"


def test_archives_that_cannot_be_opened_here_are_accepted_with_a_warning(tmp_path: Path) -> None:
    result = inspect_file(samples.write_7z_header(tmp_path), "file")
    assert result.mime == "application/x-7z-compressed"
    assert any("not checked" in w for w in result.warnings)


def test_programs_and_unknown_binaries_are_fine_for_file_items(tmp_path: Path) -> None:
    elf = samples.write_elf(tmp_path)
    assert inspect_file(elf, "file").mime == "application/x-elf"
    assert rejected(elf, "audio").reason.startswith("This file is a Linux program (ELF), not an audio file.")
    blob = samples.write_binary(tmp_path)
    assert inspect_file(blob, "file").mime == "application/octet-stream"
    assert "unrecognised binary file" in rejected(blob, "text").reason


def test_large_files_are_hashed_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"\x13\x37\x00" + os.urandom(int(2.5 * samples.MB)))
    result = inspect_file(path, "file")
    assert result.size == path.stat().st_size
    assert result.sha256 == sha256_of(path)


# ------------------------------------------------------------------------------------------------ purposes


def test_covers_must_be_images(tmp_path: Path) -> None:
    for path in (samples.write_pdf(tmp_path), samples.write_wav(tmp_path), samples.write_zip(tmp_path)):
        error = rejected(path, "image", "cover")
        assert error.reason.endswith("Covers must be PNG, JPEG, WebP or GIF images.")


def test_previews_must_be_of_the_items_kind(tmp_path: Path) -> None:
    wav, pdf, zip_ = samples.write_wav(tmp_path), samples.write_pdf(tmp_path), samples.write_zip(tmp_path)
    assert inspect_file(wav, "audio", purpose="preview").mime == "audio/wav"
    assert "cannot be a preview" in rejected(pdf, "audio", "preview").reason
    assert inspect_file(pdf, "file", purpose="preview").mime == "application/pdf"
    assert inspect_file(wav, "file", purpose="preview").mime == "audio/wav"
    assert "cannot be a preview" in rejected(zip_, "file", "preview").reason
    # A preview is checked strictly even for a "file" item.
    assert rejected(samples.write_fake_mp3(tmp_path), "file", "preview").code == "unreadable_audio"


def test_unknown_item_types_and_purposes_are_programming_errors(tmp_path: Path) -> None:
    path = samples.write_text(tmp_path)
    with pytest.raises(ValueError):
        inspect_file(path, "podcast")
    with pytest.raises(ValueError):
        inspect_file(path, "text", purpose="avatar")


def test_the_allowed_table_covers_every_item_type() -> None:
    assert set(ALLOWED) == set(ITEM_TYPES)
    assert ALLOWED["audio"] == {"mp3", "wav", "flac", "ogg", "opus", "m4a", "aac"}
    assert ALLOWED["video"] == {"mp4", "webm", "mov", "mkv"}
    assert ALLOWED["image"] == {"png", "jpeg", "gif", "webp"}
    assert ALLOWED["text"] == {"pdf", "epub", "txt"}
    assert ALLOWED["file"] == {"*"}


# ------------------------------------------------------------------------------------------------ video


def test_probe_tools_says_whether_ffprobe_is_installed() -> None:
    assert probe_tools() == {"ffprobe": shutil.which("ffprobe") is not None}


def test_without_ffprobe_a_video_is_accepted_and_the_gap_reported(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_inspect, "_ffprobe_path", lambda: None)
    path = samples.write_mp4_stub(tmp_path)
    result = inspect_file(path, "video")
    assert (result.mime, result.extension) == ("video/mp4", "mp4")
    assert result.metadata == {"ffprobe": "unavailable"}
    assert any("ffprobe is not installed" in w for w in result.warnings)
    assert probe_tools() == {"ffprobe": False}
    assert "not an audio file" in rejected(path, "audio").reason


def test_video_metadata_from_ffprobe(tmp_path: Path) -> None:
    """With ffprobe installed: real duration and size. Without it (the usual case) the absence is reported."""
    stub = samples.write_mp4_stub(tmp_path)
    if shutil.which("ffprobe") is None:
        result = inspect_file(stub, "video")
        assert result.metadata["ffprobe"] == "unavailable" and result.warnings
        assert probe_tools()["ffprobe"] is False
        pytest.skip("ffprobe is not installed: its absence is reported (checked above)")
    # ffprobe sees that the stub holds no playable video.
    assert rejected(stub, "video").code == "unreadable_video"
    video = samples.write_mp4_with_ffmpeg(tmp_path, seconds=1.0, size=(64, 48))
    if video is None:
        pytest.skip("ffprobe is installed but ffmpeg (to make a sample video) is not")
    result = inspect_file(video, "video")
    assert result.mime == "video/mp4"
    assert (result.metadata["width"], result.metadata["height"]) == (64, 48)
    assert result.metadata["duration_seconds"] == pytest.approx(1.0, abs=0.15)
    assert result.warnings == []


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
