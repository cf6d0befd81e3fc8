"""Audio samples: a WAV tone, hand-made MP3 frames, and FLAC, Ogg (Opus, Vorbis) and M4A containers."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path


def write_wav(directory: Path, name: str = "tone.wav", seconds: float = 1.0, rate: int = 22050,
              channels: int = 1, frequency: float = 440.0) -> Path:
    """A PCM WAV of a sine tone (16-bit)."""
    path = directory / name
    frames = int(seconds * rate)
    samples = bytearray()
    for i in range(frames):
        value = int(12000 * math.sin(2 * math.pi * frequency * i / rate))
        samples += struct.pack("<h", value) * channels
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(samples))
    return path


# MPEG-1 Layer III, no CRC | 128 kbit/s, 44.1 kHz, no padding | joint stereo, original.
MP3_HEADER = bytes([0xFF, 0xFB, 0x90, 0x64])
MP3_FRAME_BYTES = 144 * 128_000 // 44_100  # 417; a frame carries 1152 samples (26.1 ms at 44.1 kHz)


def mp3_bytes(frames: int = 40, id3: bool = False) -> bytes:
    """A stream of valid (silent) MPEG-1 Layer III frames: header, zero side information, zero main data."""
    frame = MP3_HEADER + bytes(MP3_FRAME_BYTES - len(MP3_HEADER))
    tag = b""
    if id3:
        # An ID3v2.4 tag with one text frame (TIT2 "Test"), as most real MP3 files start.
        body = b"TIT2" + struct.pack(">I", 5) + b"\x00\x00" + b"\x03Test"
        tag = b"ID3\x04\x00\x00" + bytes((len(body) >> s) & 0x7F for s in (21, 14, 7, 0)) + body
    return tag + frame * frames


def write_mp3(directory: Path, name: str = "song.mp3", frames: int = 40, id3: bool = False) -> Path:
    """About one second (40 frames x 26.1 ms) of silent MP3."""
    path = directory / name
    path.write_bytes(mp3_bytes(frames, id3))
    return path


def write_fake_mp3(directory: Path, name: str = "broken.mp3") -> Path:
    """Starts with a valid ID3 tag (so the bytes say MP3) but holds no audio frames at all."""
    path = directory / name
    tag = mp3_bytes(0, id3=True)
    path.write_bytes(tag + b"this is not audio, just text pretending to be a song " * 20)
    return path


def flac_bytes(seconds: float = 1.0, rate: int = 44100, channels: int = 2, bits: int = 16) -> bytes:
    """The FLAC signature and a STREAMINFO block (rate, channels, total samples), as real files start. No
    audio frames follow: readers such as mutagen take the duration from STREAMINFO; a player plays nothing."""
    total = int(seconds * rate)
    packed = (rate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36) | total
    info = struct.pack(">HH", 4096, 4096) + bytes(6) + struct.pack(">Q", packed) + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info


def write_flac(directory: Path, name: str = "tone.flac", seconds: float = 1.0) -> Path:
    path = directory / name
    path.write_bytes(flac_bytes(seconds))
    return path


def _ogg(pages: list[tuple[list[bytes], int]], serial: int = 0x5EED) -> bytes:
    """Ogg pages (packets, granule position), with correct CRCs, via mutagen's page writer."""
    from mutagen.ogg import OggPage

    out = b""
    for sequence, (packets, granule) in enumerate(pages):
        page = OggPage()
        page.serial, page.sequence, page.position, page.packets = serial, sequence, granule, packets
        page.first, page.last = sequence == 0, sequence == len(pages) - 1
        out += page.write()
    return out


def write_opus(directory: Path, name: str = "voice.opus", seconds: float = 1.0) -> Path:
    """Ogg Opus headers (OpusHead, OpusTags) and one page of tiny packets whose granule position makes the
    stream `seconds` long (Opus counts at 48 kHz, after a 312-sample pre-skip)."""
    head = b"OpusHead" + bytes([1, 2]) + struct.pack("<HIhB", 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 9) + b"fairshelf" + struct.pack("<I", 0)
    path = directory / name
    audio = [b"\xfc" + bytes(8)] * 50
    path.write_bytes(_ogg([([head], 0), ([tags], 0), (audio, int(48000 * seconds) + 312)]))
    return path


def write_vorbis(directory: Path, name: str = "tone.ogg", seconds: float = 1.0, rate: int = 44100) -> Path:
    """Ogg Vorbis identification and comment headers, a stub setup header, and a last page `seconds` in."""
    ident = b"\x01vorbis" + struct.pack("<IBIiii", 0, 2, rate, 0, 128000, 0) + bytes([0xB8, 1])
    comment = b"\x03vorbis" + struct.pack("<I", 9) + b"fairshelf" + struct.pack("<I", 0) + b"\x01"
    setup = b"\x05vorbis" + bytes(20)
    path = directory / name
    path.write_bytes(_ogg([([ident], 0), ([comment, setup], 0), ([bytes(10)] * 20, int(rate * seconds))]))
    return path


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def m4a_bytes(seconds: float = 1.0, rate: int = 44100, brand: bytes = b"M4A ") -> bytes:
    """An MP4 container with one AAC sound track (ftyp, mdat, then moov as many encoders write it). The sample
    data is empty: enough for the container to be parsed, not to be played."""
    def descriptor(tag: int, body: bytes) -> bytes:
        return bytes([tag, len(body)]) + body

    config = descriptor(4, bytes([0x40, 0x15]) + bytes(3) + struct.pack(">II", 128000, 128000)
                        + descriptor(5, b"\x12\x10"))
    esds = _box(b"esds", bytes(4) + descriptor(3, struct.pack(">HB", 1, 0) + config + descriptor(6, b"\x02")))
    mp4a = _box(b"mp4a", bytes(6) + struct.pack(">H", 1) + bytes(8)
                + struct.pack(">HHHHI", 2, 16, 0, 0, rate << 16) + esds)
    mdhd = _box(b"mdhd", struct.pack(">IIIII", 0, 0, 0, rate, int(rate * seconds)) + b"\x55\xc4\x00\x00")
    hdlr = _box(b"hdlr", bytes(8) + b"soun" + bytes(12) + b"\x00")
    stsd = _box(b"stsd", bytes(4) + struct.pack(">I", 1) + mp4a)
    trak = _box(b"trak", _box(b"mdia", mdhd + hdlr + _box(b"minf", _box(b"stbl", stsd))))
    mvhd = _box(b"mvhd", struct.pack(">IIIII", 0, 0, 0, 1000, int(1000 * seconds)) + bytes(80))
    ftyp = _box(b"ftyp", brand + bytes(4) + brand + b"isommp42")
    return ftyp + _box(b"mdat", bytes(64)) + _box(b"moov", mvhd + trak)


def write_m4a(directory: Path, name: str = "song.m4a", seconds: float = 1.0, brand: bytes = b"M4A ") -> Path:
    path = directory / name
    path.write_bytes(m4a_bytes(seconds, brand=brand))
    return path
