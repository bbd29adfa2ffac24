"""The S3 backend against an S3-compatible server the test starts: moto's standalone server (`moto[server]`
from PyPI), on loopback."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from fupin.devservers import port_open
from fupin.documents.storage import S3Storage
from tests.field.photos import VILLAGE_LAT, jpeg
from tests.field.test_documents import _world, upload


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None, "moto server exited"
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def s3(s3_endpoint: str) -> S3Storage:
    storage = S3Storage(endpoint_url=s3_endpoint, bucket=f"fupin-{uuid.uuid4().hex[:12]}", access_key="test",
                        secret_key="test", region="us-east-1", prefix="documents/")
    storage.client.create_bucket(Bucket=storage.bucket)
    return storage


def _objects(storage: S3Storage) -> list[str]:
    listed = storage.client.list_objects_v2(Bucket=storage.bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


async def test_put_once_exists_and_read_back(s3: S3Storage):
    data = jpeg(seed=900) * 40  # a few hundred KiB, read back in chunks
    key = hashlib.sha256(data).hexdigest()
    assert await s3.exists(key) is False
    await s3.put(key, io.BytesIO(data), content_type="image/jpeg")
    await s3.put(key, io.BytesIO(b"never written: the key exists"), content_type="image/jpeg")
    assert await s3.exists(key) is True
    assert b"".join([c async for c in s3.read(key, chunk_size=65536)]) == data
    assert _objects(s3) == [f"documents/{key}"]
    with pytest.raises(ValueError, match="not a content key"):
        await s3.exists("../etc/passwd")


async def test_upload_and_download_through_the_api_on_s3(app, client, owner_sessionmaker, test_settings, s3):
    _, _, household, h = await _world(owner_sessionmaker, test_settings)
    data = jpeg(seed=901, lat=VILLAGE_LAT, lon=VILLAGE_LAT)
    previous = app.state.storage
    app.state.storage = s3
    try:
        doc = (await upload(client, h["village"], data, target_id=household)).json()
        again = await upload(client, h["village"], data, target_id=household)
        assert again.status_code == 200
        sha = hashlib.sha256(data).hexdigest()
        keys = _objects(s3)
        assert f"documents/{sha}" in keys
        assert len(keys) == 2  # the photo and its thumbnail, once each
        r = await client.get(f"/documents/{doc['id']}/content", headers=h["auditor"])
        assert r.content == data
        r = await client.get(f"/documents/{doc['id']}/content", headers=h["station"])
        assert r.headers["x-location-removed"] == "true"
    finally:
        app.state.storage = previous
