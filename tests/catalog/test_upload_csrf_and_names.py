"""Receiving uploads over HTTP: the CSRF token (in the form before the file, or in the header), and client
file names, which are cleaned for display and never used as paths."""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest
from litestar.testing import TestClient

from tests.catalog.conftest import CreatorSetup, new_item, run_jobs
from tests.catalog.upload_helpers import (
    Conn,
    csrf_part,
    error_text,
    file_part,
    multipart,
    nothing_recorded,
    post_raw,
    row,
    temp_dir,
    upload_id,
)
from tests.conftest import csrf_token
from tests.media import samples

# -------------------------------------------------------------------------------- CSRF


def test_upload_without_a_csrf_token_is_refused_and_nothing_is_written(
        creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    data = samples.write_mp3(sources).read_bytes()

    response = post_raw(client, item, multipart(file_part(data)))
    assert response.status_code == 403
    assert "Your form expired or came from another site" in error_text(response)
    forged = post_raw(client, item, multipart(csrf_part("0" * 64 + "f" * 64), file_part(data)))
    assert forged.status_code == 403
    wrong_header = post_raw(client, item, multipart(file_part(data)), headers={"X-CSRF-Token": "nonsense"})
    assert wrong_header.status_code == 403
    nothing_recorded(db, settings)


def test_csrf_token_must_come_before_the_file(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    data = samples.write_mp3(sources).read_bytes()
    response = post_raw(client, item, multipart(file_part(data), csrf_part(csrf_token(client))))
    assert response.status_code == 403
    nothing_recorded(db, settings)


def test_csrf_token_in_the_header_is_accepted(creator: CreatorSetup, db: Conn, sources: Path) -> None:
    client = creator.client
    item = new_item(client, "audio")
    data = samples.write_mp3(sources).read_bytes()
    public_id = upload_id(post_raw(client, item, multipart(file_part(data)),
                                   headers={"X-CSRF-Token": csrf_token(client)}))
    assert row(db, public_id)["size_bytes"] == len(data)


def test_csrf_token_of_another_browser_is_refused(creator: CreatorSetup, db: Conn, sources: Path,
                                                  browser: TestClient) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "audio")
    data = samples.write_mp3(sources).read_bytes()
    theirs = csrf_token(browser)
    assert theirs != csrf_token(client)
    response = post_raw(client, item, multipart(csrf_part(theirs), file_part(data)))
    assert response.status_code == 403
    nothing_recorded(db, settings)


# -------------------------------------------------------------------------------- file names


NAMES = {
    "parent-dirs": b"../../etc/passwd",
    "absolute": b"/etc/passwd",
    "windows-path": b"..\\..\\Windows\\System32\\evil.zip",
    "control": b"a\x01b\x1b[31mred\x7f\tend.zip",
    "quotes": b'say \\"hi\\" to \'them\'.zip',
    "html": b"<img src=x onerror=alert(1)>.zip",
    "bidi": "invoice\u202egpj.zip".encode(),
    "non-ascii": "Ünïcödé 音楽 – café.zip".encode(),
    "long-ascii": b"x" * 1000 + b".zip",
    "long-non-ascii": ("é" * 400 + ".zip").encode(),
    "dots": b"...hidden",
    "empty": b"",
    "reserved": b"CON.zip",
}


def assert_clean(name: str) -> None:
    assert name, "an empty display name"
    assert len(name) <= 255 and len(name.encode()) <= 255
    assert "/" not in name and "\\" not in name and '"' not in name
    assert not name.startswith(".") and name == name.strip()
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name), repr(name)


@pytest.mark.parametrize("raw", list(NAMES.values()), ids=list(NAMES))
def test_client_file_names_are_cleaned_and_never_used_as_paths(
        creator: CreatorSetup, db: Conn, tmp_path: Path, raw: bytes) -> None:
    client, settings = creator.client, creator.settings
    item = new_item(client, "file")
    data = samples.write_zip(tmp_path).read_bytes()
    response = post_raw(client, item, multipart(csrf_part(csrf_token(client)), file_part(data, raw)))
    public_id = upload_id(response)

    received = row(db, public_id)
    name = received["filename"]
    assert_clean(name)
    temp = Path(received["temp_path"])
    assert temp.parent == temp_dir(settings)
    assert re.fullmatch(r"[0-9a-f]{32}\.part", temp.name), temp.name
    assert temp.read_bytes() == data
    if raw == NAMES["non-ascii"]:
        assert name == "Ünïcödé 音楽 – café.zip"
    if raw in (NAMES["long-ascii"], NAMES["long-non-ascii"]):
        assert name.endswith(".zip") and len(name.encode()) <= 200
    if raw == NAMES["empty"]:
        assert name == "download"

    run_jobs(settings)
    ready = row(db, public_id)
    assert ready["state"] == "ready", ready["reason"]
    storage = client.app.state.storage
    stored_path = storage.path_for(ready["storage_key"]).resolve()
    assert stored_path.parent == (storage.root / "uploads" / public_id).resolve()
    assert stored_path.read_bytes() == data
    assert ready["storage_key"] == f"uploads/{public_id}/{name}"
    assert not (settings.var_dir / "etc").exists() and not (tmp_path / "etc").exists()

    # The name is shown escaped on the files page.
    page = client.get(f"/creator/items/{item}/files").text
    assert "<img src=x" not in page
    assert f'<span class="upload-name">{name}</span>' in html.unescape(page)

    url = storage.signed_url(ready["storage_key"], filename=name, content_type=ready["mime"], ttl_seconds=60)
    served = client.get(url)
    assert served.status_code == 200 and served.content == data
    disposition = served.headers["content-disposition"]
    assert not any(ord(ch) < 32 or ord(ch) > 126 for ch in disposition), repr(disposition)
    match = re.fullmatch(r"attachment; filename=\"([^\"\\/]*)\"; filename\*=UTF-8''([A-Za-z0-9%._~\-]*)",
                         disposition)
    assert match, disposition
    assert unquote(match.group(2), errors="strict") == name
