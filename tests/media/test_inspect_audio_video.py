"""The worker's checks of audio and video files, on real (small) files made by tests/media/samples/. No
database, no network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.media import inspect as media_inspect
from app.media.inspect import Inspection, inspect_file, probe_tools
from tests.media import samples
from tests.media.helpers import Writer, rejected, sha256_of

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
