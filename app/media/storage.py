"""Object storage behind one interface: files on local disk (development, tests) or an S3-compatible bucket.

Keys look like "uploads/<id>/cover.webp". Readers get short-lived signed URLs: S3 presigns them; LocalStorage signs
its own, served by app.media.storage_routes. Making a signed URL is local computation only (no network I/O), so a
page listing many files stays cheap, and an outage of the store never blocks browsing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode

import anyio.to_thread
import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.media.names import (
    Disposition,
    check_link_args,
    content_disposition,
    safe_filename,
    validate_key,
)
from app.web.errors import AppError, NotFound

T = TypeVar("T")
CHUNK = 64 * 1024
MB = 1024 * 1024


class StorageError(Exception):
    """The store refused or failed an operation for a reason other than the ones below (e.g. misconfiguration)."""


class ObjectMissing(NotFound, StorageError):
    def __init__(self, key: str) -> None:
        super().__init__("That file is no longer available.")
        self.key = key


class StorageUnavailable(AppError, StorageError):
    """The store cannot be reached or answered with a server error; worth retrying later."""

    status_code = 503
    title = "Temporarily unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__("File storage is briefly unavailable; please try again shortly.")
        self.detail = detail

    def __str__(self) -> str:
        return f"object storage unavailable: {self.detail}"


class LinkInvalid(Exception):
    """A local media link whose signature does not match what we signed."""


class LinkExpired(LinkInvalid):
    pass


class Storage(Protocol):
    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at `path` under `key` (replacing any object there); the source file is left in place."""

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int | None:
        """Size in bytes, or None when there is no such object."""

    async def download_to(self, key: str, path: Path) -> None:
        """Copy the object to a local file (raises ObjectMissing)."""

    def iter_keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key starting with `prefix` (a plain string prefix, as in S3; no order promised)."""

    def signed_url(self, key: str, *, filename: str, content_type: str, ttl_seconds: int,
                   disposition: Disposition = "attachment") -> str:
        """A URL that serves the object for `ttl_seconds`, with these Content-Type and Content-Disposition."""

    async def check(self) -> None:
        """Raise when the store cannot be used (for /health)."""


# --- local disk ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified local media link allows: this key, served with these headers until `expires`."""

    key: str
    expires: int
    filename: str
    content_type: str
    disposition: Disposition


class LocalStorage:
    """Files under `root`. Writes are atomic (temporary file, then rename), so readers never see half a file."""

    incoming = ".incoming"

    def __init__(self, root: Path, secret_key: str, *, url_prefix: str = "/media", list_page_size: int = 1000,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root).absolute()
        self.url_prefix = url_prefix.rstrip("/")
        self.list_page_size = list_page_size
        self.clock = clock
        # A key of its own, so a media signature can never be replayed as any other signed value of the app.
        self._key = hmac.new(secret_key.encode(), b"fairshelf.media.local-url.v1", hashlib.sha256).digest()

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await anyio.to_thread.run_sync(self._put, self.path_for(key), Path(path))

    def _put(self, target: Path, source: Path) -> None:
        tmp_dir = self.root / self.incoming
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{secrets.token_hex(8)}.part"
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            for _ in range(3):  # a concurrent delete may prune the (empty) parent between mkdir and rename
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(tmp, target)
                    return
                except FileNotFoundError:
                    if not tmp.exists():
                        raise
            raise StorageError(f"could not place {target}")
        finally:
            tmp.unlink(missing_ok=True)

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._delete, self.path_for(key))

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and self.root in parent.parents:  # prune empty folders, keep the sweep fast
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        path = self.path_for(key)
        try:
            st = await anyio.to_thread.run_sync(os.stat, path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    async def download_to(self, key: str, path: Path) -> None:
        source = self.path_for(key)
        try:
            await anyio.to_thread.run_sync(shutil.copyfile, source, path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if not source.is_file():
                raise ObjectMissing(key) from None
            raise

    async def iter_keys(self, prefix: str) -> AsyncIterator[str]:
        walker = self._walk(prefix)
        while batch := await anyio.to_thread.run_sync(lambda: list(islice(walker, self.list_page_size))):
            for key in batch:
                yield key

    def _walk(self, prefix: str) -> Iterator[str]:
        folder, _, start = prefix.rpartition("/")
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.startswith(start):
                continue
            key = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(key + "/")
            elif entry.is_file(follow_symlinks=False):
                yield key

    def signed_url(self, key: str, *, filename: str, content_type: str, ttl_seconds: int,
                   disposition: Disposition = "attachment") -> str:
        validate_key(key)
        check_link_args(content_type, ttl_seconds, disposition)
        name = safe_filename(filename)
        expires = int(self.clock()) + ttl_seconds
        signature = self._sign(key, expires, name, content_type, disposition)
        query = urlencode({"e": expires, "n": name, "t": content_type, "d": disposition, "s": signature},
                          quote_via=quote)
        return f"{self.url_prefix}/{quote(key, safe='/')}?{query}"

    def _sign(self, key: str, expires: int, name: str, content_type: str, disposition: str) -> str:
        # JSON framing: no choice of separator could let one field's text slide into another's.
        message = json.dumps([key, expires, name, content_type, disposition], separators=(",", ":"))
        digest = hmac.new(self._key, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, key: str, params: Mapping[str, str]) -> Grant:
        """The grant a signed link carries; raises LinkInvalid (tampered, incomplete) or LinkExpired."""
        try:
            expires = int(params["e"]) if params["e"].isdigit() else -1
            name, content_type, disposition, signature = params["n"], params["t"], params["d"], params["s"]
        except KeyError:
            raise LinkInvalid("incomplete link") from None
        expected = self._sign(key, expires, name, content_type, disposition)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise LinkInvalid("bad signature")
        if expires < self.clock():
            raise LinkExpired("expired")
        return Grant(validate_key(key), expires, name, content_type, disposition)  # type: ignore[arg-type]

    async def check(self) -> None:
        await anyio.to_thread.run_sync(self._check)

    def _check(self) -> None:
        probe = self.root / self.incoming / f"health-{secrets.token_hex(4)}"
        try:
            probe.parent.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageUnavailable(f"{self.root} is not writable: {exc}") from exc


# --- S3 ------------------------------------------------------------------------------------------------------------

class S3Storage:
    """An S3-compatible bucket through boto3. boto3 blocks, so each call runs in a worker thread; timeouts are
    short and retries few, so an outage fails fast instead of tying up requests and workers."""

    def __init__(self, endpoint_url: str | None, region: str, bucket: str, access_key: str, secret_key: str, *,
                 connect_timeout: float = 3.0, read_timeout: float = 10.0, max_attempts: int = 3,
                 public_endpoint_url: str | None = None, multipart_threshold: int = 64 * MB,
                 multipart_chunksize: int = 64 * MB, list_page_size: int = 1000) -> None:
        self.bucket = bucket
        self.list_page_size = list_page_size

        # One session for the three clients: the S3 service model is loaded once (a new session costs ~0.1 s).
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                        region_name=region)

        def client(endpoint: str | None, connect: float, read: float, attempts: int) -> Any:
            config = Config(
                signature_version="s3v4",
                # Path style for S3-compatible servers (MinIO, Garage, moto) that have no wildcard DNS per bucket.
                s3={"addressing_style": "path" if endpoint else "auto"},
                connect_timeout=connect,
                read_timeout=read,
                retries={"total_max_attempts": attempts, "mode": "standard"},
                # Checksums only where S3 requires them: several S3-compatible stores reject the newer defaults.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            return session.client("s3", endpoint_url=endpoint or None, config=config)

        self._client = client(endpoint_url, connect_timeout, read_timeout, max_attempts)
        # Links are presigned for the address browsers use, which may differ from the one the app reaches.
        self._presigner = (client(public_endpoint_url, connect_timeout, read_timeout, max_attempts)
                           if public_endpoint_url else self._client)
        # /health answers within a few seconds whatever the retry settings.
        self._probe = client(endpoint_url, min(connect_timeout, 2.0), min(read_timeout, 3.0), 1)
        self._transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                        multipart_chunksize=multipart_chunksize, max_concurrency=4)

    async def _call(self, fn: Callable[..., T], key: str | None = None, **kwargs: Any) -> T:
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, **kwargs))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if key is not None and (status == 404 or error.get("Code") in ("404", "NoSuchKey", "NotFound")):
                raise ObjectMissing(key) from exc
            if status >= 500 or status in (408, 429):
                raise StorageUnavailable(f"{error.get('Code')} ({status})") from exc
            raise StorageError(f"S3 refused: {error.get('Code')} {error.get('Message')}") from exc
        except (BotoCoreError, Boto3Error) as exc:  # connection refused, timeouts, failed multipart upload …
            raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await self._call(self._client.upload_file, Filename=str(path), Bucket=self.bucket, Key=validate_key(key),
                         ExtraArgs={"ContentType": content_type}, Config=self._transfer)

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete_object, Bucket=self.bucket, Key=validate_key(key))

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        try:
            head = await self._call(self._client.head_object, key, Bucket=self.bucket, Key=validate_key(key))
        except ObjectMissing:
            return None
        return int(head["ContentLength"])

    async def download_to(self, key: str, path: Path) -> None:
        await self._call(self._client.download_file, key, Bucket=self.bucket, Key=validate_key(key),
                         Filename=str(path), Config=self._transfer)

    async def iter_keys(self, prefix: str) -> AsyncIterator[str]:
        pages = iter(self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.list_page_size}))
        while page := await self._call(functools.partial(next, pages, None)):  # one request per page
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def signed_url(self, key: str, *, filename: str, content_type: str, ttl_seconds: int,
                   disposition: Disposition = "attachment") -> str:
        validate_key(key)
        check_link_args(content_type, ttl_seconds, disposition)
        params = {"Bucket": self.bucket, "Key": key, "ResponseContentType": content_type,
                  "ResponseContentDisposition": content_disposition(disposition, filename)}
        return str(self._presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds))

    async def check(self) -> None:
        await self._call(self._probe.head_bucket, Bucket=self.bucket)


def make_storage(kind: str, *, secret_key: str, local_root: Path, s3_endpoint_url: str = "",
                 s3_public_endpoint_url: str = "", s3_region: str = "us-east-1", s3_bucket: str = "",
                 s3_access_key: str = "", s3_secret_key: str = "", s3_connect_timeout: float = 3.0,
                 s3_read_timeout: float = 10.0, s3_max_attempts: int = 3) -> Storage:
    """The configured store: "local" (files under local_root, served by /media) or "s3"."""
    if kind == "local":
        return LocalStorage(local_root, secret_key)
    if kind == "s3":
        if not s3_bucket:
            raise ValueError("STORAGE=s3 needs S3_BUCKET")
        return S3Storage(s3_endpoint_url or None, s3_region, s3_bucket, s3_access_key, s3_secret_key,
                         connect_timeout=s3_connect_timeout, read_timeout=s3_read_timeout,
                         max_attempts=s3_max_attempts, public_endpoint_url=s3_public_endpoint_url or None)
    raise ValueError(f"STORAGE must be 'local' or 's3', not {kind!r}")
