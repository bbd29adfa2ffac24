"""Where document bytes live, behind one interface: the local filesystem (the default of `make run`,
under the data dir) or S3-compatible object storage (production). Objects are content-addressed: the key
is the sha256 of the bytes, so a file uploaded twice is stored once and an object never changes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from fupin.settings import Settings

CHUNK = 256 * 1024
_KEY = re.compile(r"^[0-9a-f]{64}$")


def _checked(key: str) -> str:
    if not _KEY.match(key):  # keys are digests: never a path a caller could steer
        raise ValueError(f"not a content key: {key!r}")
    return key


class Storage(Protocol):
    async def exists(self, key: str) -> bool: ...

    async def put(self, key: str, source: BinaryIO, *, content_type: str) -> None:
        """Store `source` (read from its start) under `key` unless an object with that key exists."""
        ...

    def read(self, key: str, *, chunk_size: int = CHUNK) -> AsyncIterator[bytes]: ...


class FilesystemStorage:
    """Objects as files `<root>/ab/cd/<sha256>`, written to a temporary name and renamed into place (a
    reader never sees half an object; two writers of the same key both end with the same bytes)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        k = _checked(key)
        return self.root / k[:2] / k[2:4] / k

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).exists)

    async def put(self, key: str, source: BinaryIO, *, content_type: str) -> None:  # noqa: ARG002
        await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: BinaryIO) -> None:
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        source.seek(0)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def read(self, key: str, *, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self._path(key), "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()


class S3Storage:
    """An S3-compatible bucket through boto3 (blocking calls run in a thread). `put` uploads in parts
    from the spooled file, so memory stays flat whatever the size."""

    def __init__(self, *, endpoint_url: str | None, bucket: str, access_key: str, secret_key: str, region: str,
                 prefix: str = "") -> None:
        import boto3  # imported here: the filesystem default needs no AWS SDK at start-up

        self.bucket = bucket
        self.prefix = prefix
        self.client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url or None, aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None, region_name=region,
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}{_checked(key)}"

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def put(self, key: str, source: BinaryIO, *, content_type: str) -> None:
        if await self.exists(key):
            return
        source.seek(0)
        await asyncio.to_thread(self.client.upload_fileobj, source, self.bucket, self._key(key),
                                ExtraArgs={"ContentType": content_type})

    async def read(self, key: str, *, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        obj = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        body = obj["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, chunk_size):
                yield chunk
        finally:
            body.close()


def make_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        return S3Storage(endpoint_url=settings.s3_endpoint_url, bucket=settings.s3_bucket,
                         access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                         region=settings.s3_region, prefix=settings.s3_prefix)
    root = Path(settings.document_dir) if settings.document_dir else Path(settings.data_dir) / "documents"
    return FilesystemStorage(root)
