"""The upload pipeline with S3 storage (a moto server over HTTP): files and cover thumbnails stored in the
bucket and served by presigned URLs, nothing written to local disk, and the sweep cleaning the bucket."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from tests.catalog.conftest import CreatorSetup, become_creator, new_item, run_jobs
from tests.catalog.pipeline_helpers import (
    THUMBS,
    cover_src,
    keys_under,
    publish,
    put_object,
    run_sweep,
    stored_bytes,
)
from tests.catalog.upload_helpers import Conn, row, send, storage_used, temp_files
from tests.conftest import make_settings
from tests.media import samples
from tests.media.conftest import REGION, moto_endpoint, new_bucket  # noqa: F401  (moto_endpoint is a fixture)


@pytest.fixture
def s3_settings(database_url: str, tmp_path: Path, moto_endpoint: str) -> Settings:  # noqa: F811
    return make_settings(database_url, var_dir=tmp_path / "var", storage="s3", s3_endpoint_url=moto_endpoint,
                         s3_region=REGION, s3_bucket=new_bucket(moto_endpoint), s3_access_key="testing",
                         s3_secret_key="testing", s3_connect_timeout=2.0, s3_read_timeout=5.0,
                         s3_max_attempts=2)


@pytest.fixture
def s3_creator(s3_settings: Settings) -> Iterator[CreatorSetup]:
    with TestClient(create_app(s3_settings), base_url="http://testserver.local") as client:
        become_creator(client, "maker")
        yield CreatorSetup(client, s3_settings)


def test_s3_audio_is_stored_in_the_bucket_and_served_by_a_presigned_url(
        s3_creator: CreatorSetup, db: Conn, sources: Path, tmp_path: Path,
        moto_endpoint: str) -> None:  # noqa: F811
    client, settings = s3_creator.client, s3_creator.settings
    item = new_item(client, "audio")
    path = samples.write_mp3(sources, "Ünïon Hall.mp3")
    data = path.read_bytes()
    public_id = send(client, item, path)
    run_jobs(settings)

    ready = row(db, public_id)
    assert ready["state"] == "ready", ready["reason"]
    assert ready["sha256"] == hashlib.sha256(data).hexdigest()
    assert ready["meta"]["bitrate"] == 128_000
    assert keys_under(settings, "uploads/") == {ready["storage_key"]}
    assert stored_bytes(settings, ready["storage_key"], tmp_path) == data
    assert temp_files(settings) == []
    assert not (settings.var_dir / "media").exists()  # nothing went to local disk

    url = client.app.state.storage.signed_url(ready["storage_key"], filename=ready["filename"],
                                              content_type=ready["mime"], ttl_seconds=300)
    assert url.startswith(f"{moto_endpoint}/{settings.s3_bucket}/uploads/{public_id}/")
    assert "X-Amz-Signature=" in url
    fetched = httpx.get(url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["content-type"] == "audio/mpeg"
    assert "filename*=UTF-8''%C3%9Cn%C3%AFon%20Hall.mp3" in fetched.headers["content-disposition"]
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    # The app does not serve /media with S3: the bytes never pass through Python.
    assert client.get(f"/media/{ready['storage_key']}").status_code == 404


def test_s3_cover_thumbnails_and_public_page(s3_creator: CreatorSetup, db: Conn, sources: Path,
                                             s3_settings: Settings) -> None:
    client, settings = s3_creator.client, s3_creator.settings
    item = new_item(client, "audio", title="Night Songs", ai_label="handmade")
    send(client, item, samples.write_mp3(sources))
    cover = send(client, item, samples.write_jpeg(sources), purpose="cover")
    run_jobs(settings)

    uploaded = row(db, cover)
    assert uploaded["state"] == "ready", uploaded["reason"]
    assert keys_under(settings, f"uploads/{cover}/") == {
        uploaded["storage_key"], *(f"uploads/{cover}/thumb-{s}.webp" for s in THUMBS)}
    publish(client, item)
    with TestClient(create_app(s3_settings), base_url="http://testserver.local") as stranger:
        src = cover_src(stranger.get(f"/i/{item}").text)
    assert src.startswith(settings.s3_endpoint_url) and f"uploads/{cover}/thumb-1280.webp" in src
    image = httpx.get(src, timeout=10)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/webp"
    assert image.content[8:12] == b"WEBP"


def test_s3_rejected_program_stores_nothing_and_sweep_cleans_the_bucket(
        s3_creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = s3_creator.client, s3_creator.settings
    item = new_item(client, "audio")
    song = send(client, item, samples.write_mp3(sources))
    fake = send(client, item, samples.write_exe(sources, "song.mp3"))
    run_jobs(settings)

    assert row(db, fake)["state"] == "rejected"
    assert "Windows program" in row(db, fake)["reason"]
    assert storage_used(db) == row(db, song)["size_bytes"]
    assert keys_under(settings, "uploads/") == {row(db, song)["storage_key"]}
    assert temp_files(settings) == []

    orphan = sources / "orphan.bin"
    orphan.write_bytes(b"nobody's")
    put_object(settings, "uploads/qqqqqqqqqqqq/orphan.bin", orphan)
    run_sweep(settings)
    assert keys_under(settings, "uploads/") == {row(db, song)["storage_key"]}
