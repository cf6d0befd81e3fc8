"""Small, real sample files generated on demand, for the file-check tests and the upload pipeline tests.

Each `write_*` function writes one file into `directory` and returns its path. Nothing here downloads
anything or writes a big file: bombs are made by streaming zeros through a compressor, so only the small
result touches the disk.
"""

from __future__ import annotations

import gzip
import io
import math
import shutil
import struct
import subprocess
import tarfile
import wave
import zipfile
import zlib
from pathlib import Path

from PIL import Image

MB = 1024 * 1024

# ------------------------------------------------------------------------------------------------ audio


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


# ------------------------------------------------------------------------------------------------ images


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


# ------------------------------------------------------------------------------------------------ archives


def write_zip(directory: Path, name: str = "pack.zip", files: dict[str, bytes] | None = None) -> Path:
    path = directory / name
    files = files if files is not None else {
        "README.txt": b"A small sample pack.\n",
        "presets/warm.json": b'{"cutoff": 0.4, "resonance": 0.2}\n',
        "presets/cold.json": b'{"cutoff": 0.8, "resonance": 0.1}\n',
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def write_zip_bomb(directory: Path, name: str = "bomb.zip", megabytes: int = 60) -> Path:
    """`megabytes` of zeros, deflated: about 60 kB on disk for 60 MB inside (ratio about 1000x). The zeros are
    streamed into the archive one megabyte at a time."""
    path = directory / name
    chunk = bytes(MB)
    with (zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
          archive.open("zeros.bin", "w", force_zip64=True) as member):
        for _ in range(megabytes):
            member.write(chunk)
    return path


def write_overlapping_zip(directory: Path, name: str = "overlap.zip", copies: int = 20) -> Path:
    """A "non-recursive" zip bomb in the style of overlapping-file bombs: many central directory entries all
    pointing at the same compressed data. Each entry alone looks ordinary (1 MB inside, ratio about 1000x but
    shared); only the overlap gives it away."""
    source = io.BytesIO()
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("a0000.bin", bytes(MB // 8))
    data = source.getvalue()
    eocd = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<II", data[eocd + 12: eocd + 20])
    record = data[cd_offset: cd_offset + cd_size]
    records = b"".join(record.replace(b"a0000.bin", f"a{i:04d}.bin".encode()) for i in range(copies))
    counts = struct.pack("<HHII", copies, copies, len(records), cd_offset)
    tail = data[eocd:eocd + 8] + counts + data[eocd + 20:]
    path = directory / name
    path.write_bytes(data[:cd_offset] + records + tail)
    return path


def write_nested_zip(directory: Path, name: str = "nested.zip", inner_name: str = "inner.zip") -> Path:
    """A zip holding another zip (under `inner_name`, which need not end in .zip)."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("hello.txt", b"hello\n")
    return write_zip(directory, name, {"readme.txt": b"see inside\n", inner_name: inner.getvalue()})


def write_many_entries_zip(directory: Path, name: str = "many.zip", entries: int = 10_001) -> Path:
    path = directory / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(entries):
            archive.writestr(f"f{i}", b"")
    return path


def write_epub(directory: Path, name: str = "book.epub") -> Path:
    """A minimal EPUB: the uncompressed `mimetype` entry first, as the format requires."""
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", b"application/epub+zip", zipfile.ZIP_STORED)
        container = (
            '<?xml version="1.0"?>'
            '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>"
        )
        archive.writestr("META-INF/container.xml", container, zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/content.opf", '<?xml version="1.0"?><package version="3.0"/>',
                         zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/chapter1.xhtml", "<html><body><p>Once upon a time.</p></body></html>",
                         zipfile.ZIP_DEFLATED)
    return path


def write_tar_gz(directory: Path, name: str = "pack.tar.gz", files: dict[str, bytes] | None = None) -> Path:
    path = directory / name
    if files is None:
        files = {"README.txt": b"hello\n", "src/main.c": b"int main(void){return 0;}\n"}
    with tarfile.open(path, "w:gz") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def write_tar(directory: Path, name: str = "pack.tar", files: dict[str, bytes] | None = None) -> Path:
    path = directory / name
    files = files if files is not None else {"README.txt": b"hello\n", "data/notes.md": b"# notes\n"}
    with tarfile.open(path, "w") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def write_gzip_bomb(directory: Path, name: str = "zeros.gz", megabytes: int = 40) -> Path:
    """`megabytes` of zeros gzipped (about 40 kB on disk), streamed one megabyte at a time."""
    path = directory / name
    chunk = bytes(MB)
    with gzip.open(path, "wb", compresslevel=9) as out:
        for _ in range(megabytes):
            out.write(chunk)
    return path


def write_gzip(directory: Path, name: str = "notes.txt.gz", data: bytes = b"some notes\n" * 100) -> Path:
    path = directory / name
    with gzip.open(path, "wb") as out:
        out.write(data)
    return path


def write_7z_header(directory: Path, name: str = "pack.7z") -> Path:
    """Only the 7z signature and start header (the contents cannot be built without a 7z library)."""
    path = directory / name
    path.write_bytes(b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24) + b"\x00" * 64)
    return path


# ------------------------------------------------------------------------------------------------ others


def write_exe(directory: Path, name: str = "song.mp3") -> Path:
    """The start of a Windows PE program: a DOS "MZ" header pointing at a "PE" header (x86-64), named like a
    song."""
    dos = bytearray(128)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x80)
    dos[0x40:0x40 + 39] = b"This program cannot be run in DOS mode.".ljust(39)
    coff = b"PE\x00\x00" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 0xF0, 0x22)
    path = directory / name
    path.write_bytes(bytes(dos) + coff + bytes(512))
    return path


def write_elf(directory: Path, name: str = "tool") -> Path:
    path = directory / name
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 2, 0x3E, 1) + bytes(200))
    return path


def write_text(directory: Path, name: str = "notes.md",
               text: str = "# Liner notes\n\nRecorded in one take, café at dawn — thank you.\n") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def write_binary(directory: Path, name: str = "blob.bin") -> Path:
    """Bytes with no known signature and not text."""
    path = directory / name
    path.write_bytes(bytes([0x13, 0x37, 0x00, 0xFE]) + bytes(range(256)) * 4)
    return path


def write_empty(directory: Path, name: str = "empty.mp3") -> Path:
    path = directory / name
    path.write_bytes(b"")
    return path


def pdf_bytes(text: str = "Hello") -> bytes:
    """A minimal valid one-page PDF 1.4 with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R "
         b"/Resources << /Font << /F1 5 0 R >> >> >>"),
        None,  # the content stream, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    stream = f"BT /F1 18 Tf 20 40 Td ({text}) Tj ET".encode()
    objects[3] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write_pdf(directory: Path, name: str = "book.pdf") -> Path:
    path = directory / name
    path.write_bytes(pdf_bytes())
    return path


# ------------------------------------------------------------------------------------------------ video


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
