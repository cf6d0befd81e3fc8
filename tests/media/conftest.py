"""Fixtures for the storage tests: each storage case runs against LocalStorage on disk and against S3Storage talking
HTTP to a real moto S3 server, and fetches signed URLs the way a browser would."""

from __future__ import annotations

import functools
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import AsyncTestClient
from moto.server import ThreadedMotoServer

from app.media.storage import MB, LocalStorage, S3Storage, Storage
from app.media.storage_routes import MEDIA_ROUTES
from tests.conftest import TEST_SECRET

REGION = "us-east-1"
# Dummy credentials: nothing in these tests can reach a real AWS account.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_SESSION_TOKEN": "testing", "AWS_SECURITY_TOKEN": "testing"}
# Small parts so a ~12 MB file is a real multipart upload (S3's minimum part size is 5 MB).
PART = 5 * MB


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def make_s3(endpoint: str, bucket: str, **options: object) -> S3Storage:
    params: dict[str, object] = {"connect_timeout": 2, "read_timeout": 5, "max_attempts": 2,
                                 "multipart_threshold": PART, "multipart_chunksize": PART, **options}
    return S3Storage(endpoint, REGION, bucket, "testing", "testing", **params)  # type: ignore[arg-type]


@functools.cache
def _admin(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def new_bucket(endpoint: str) -> str:
    """A bucket of its own for each test, so tests cannot see each other's objects."""
    name = f"fairshelf-{uuid.uuid4().hex[:16]}"
    _admin(endpoint).create_bucket(Bucket=name)
    return name


@dataclass
class Backend:
    kind: str
    storage: Storage
    app: Litestar | None = None

    async def fetch(self, url: str, method: str = "GET", headers: dict[str, str] | None = None) -> httpx.Response:
        """Fetch a signed URL as a browser would: LocalStorage's through our /media route, S3's from the server."""
        if self.app is not None:
            async with AsyncTestClient(self.app, base_url="http://testserver.local") as client:
                return await client.request(method, url, headers=headers)
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.request(method, url, headers=headers)


def media_app(storage: Storage) -> Litestar:
    return Litestar(route_handlers=MEDIA_ROUTES, state=State({"storage": storage}))


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        storage = LocalStorage(tmp_path / "media", TEST_SECRET, list_page_size=2)
        return Backend("local", storage, media_app(storage))
    endpoint = request.getfixturevalue("moto_endpoint")
    # list_page_size=2 makes listing cross page boundaries with a handful of keys.
    return Backend("s3", make_s3(endpoint, new_bucket(endpoint), list_page_size=2))


@pytest.fixture
def storage(backend: Backend) -> Storage:
    return backend.storage


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write bytes to a new file outside the store and return its path."""
    source = tmp_path / "sources"
    source.mkdir()

    def _write(data: bytes, name: str | None = None) -> Path:
        path = source / (name or uuid.uuid4().hex)
        path.write_bytes(data)
        return path

    return _write


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An address that accepts connections and never answers: what a hung store looks like."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"

