"""Small, real sample files generated on demand, for the file-check tests and the upload pipeline tests.

Each `write_*` function writes one file into `directory` and returns its path. Nothing here downloads
anything or writes a big file: bombs are made by streaming zeros through a compressor, so only the small
result touches the disk.

The samples live in one module per kind (audio, images, archives, video, other); everything public is
re-exported here, so `from tests.media import samples; samples.write_mp3(...)` works.
"""

from __future__ import annotations

from tests.media.samples.archives import (
    MB,
    write_7z_header,
    write_epub,
    write_gzip,
    write_gzip_bomb,
    write_many_entries_zip,
    write_nested_zip,
    write_overlapping_zip,
    write_tar,
    write_tar_gz,
    write_zip,
    write_zip_bomb,
)
from tests.media.samples.audio import (
    MP3_FRAME_BYTES,
    MP3_HEADER,
    flac_bytes,
    m4a_bytes,
    mp3_bytes,
    write_fake_mp3,
    write_flac,
    write_m4a,
    write_mp3,
    write_opus,
    write_vorbis,
    write_wav,
)
from tests.media.samples.images import (
    write_bmp,
    write_garbage_png,
    write_gif,
    write_huge_png,
    write_jpeg,
    write_png,
    write_truncated_jpeg,
    write_truncated_png,
    write_webp,
)
from tests.media.samples.other import (
    pdf_bytes,
    write_binary,
    write_elf,
    write_empty,
    write_exe,
    write_pdf,
    write_text,
)
from tests.media.samples.video import (
    mp4_stub_bytes,
    write_mp4_stub,
    write_mp4_with_ffmpeg,
)

__all__ = [
    "MB",
    "MP3_FRAME_BYTES",
    "MP3_HEADER",
    "flac_bytes",
    "m4a_bytes",
    "mp3_bytes",
    "mp4_stub_bytes",
    "pdf_bytes",
    "write_7z_header",
    "write_binary",
    "write_bmp",
    "write_elf",
    "write_empty",
    "write_epub",
    "write_exe",
    "write_fake_mp3",
    "write_flac",
    "write_garbage_png",
    "write_gif",
    "write_gzip",
    "write_gzip_bomb",
    "write_huge_png",
    "write_jpeg",
    "write_m4a",
    "write_many_entries_zip",
    "write_mp3",
    "write_mp4_stub",
    "write_mp4_with_ffmpeg",
    "write_nested_zip",
    "write_opus",
    "write_overlapping_zip",
    "write_pdf",
    "write_png",
    "write_tar",
    "write_tar_gz",
    "write_text",
    "write_truncated_jpeg",
    "write_truncated_png",
    "write_vorbis",
    "write_wav",
    "write_webp",
    "write_zip",
    "write_zip_bomb",
]
