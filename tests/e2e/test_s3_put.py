"""Uploads to the local stack's S3 keep every byte and answer S3's ETags, with the PUT
patch (``workflow.local.s3_put``) installed: through a real boto3 client against the
engine's moto server, one PUT past moto's in-memory buffer, an overwrite, and a multipart
upload (whose ETag is the MD5 of its parts' MD5s, then their count)."""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.parse
import uuid
from typing import Any

from boto3.s3.transfer import TransferConfig

SIZE = 9 * 1024 * 1024 + 321


def test_a_large_put_keeps_its_bytes_and_answers_their_md5(engine: Any) -> None:
    s3 = engine.client("s3")
    name = f"put-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    for data in (os.urandom(SIZE), os.urandom(SIZE // 3)):
        put = s3.put_object(Bucket=name, Key="big.bin", Body=data)
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        assert put["ETag"] == etag
        assert s3.head_object(Bucket=name, Key="big.bin")["ETag"] == etag
        got = s3.get_object(Bucket=name, Key="big.bin")
        assert (got["ETag"], got["Body"].read()) == (etag, data)
        ranged = s3.get_object(Bucket=name, Key="big.bin", Range="bytes=1000-1999")
        assert ranged["Body"].read() == data[1000:2000]


def test_a_multipart_upload_keeps_its_bytes_and_its_etag(engine: Any, tmp_path: Any) -> None:
    s3 = engine.client("s3")
    name = f"put-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    part = 5 * 1024 * 1024
    data = os.urandom(2 * part + 12345)
    source = tmp_path / "parts.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part)
    s3.upload_file(str(source), name, "parts.bin", Config=config)
    digests = b"".join(hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part))
    etag = f'"{hashlib.md5(digests).hexdigest()}-3"'
    got = s3.get_object(Bucket=name, Key="parts.bin")
    assert (got["ETag"], got["Body"].read()) == (etag, data)


def _raw_put(endpoint_url: str, path: str, headers: dict[str, str], body: bytes) -> int:
    """Send a PUT by hand, its body exactly ``body`` whatever the headers say; the status."""
    address = urllib.parse.urlsplit(endpoint_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as conn:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        conn.sendall(f"PUT {path} HTTP/1.1\r\nHost: {address.netloc}\r\n{head}\r\n".encode())
        conn.sendall(body)
        conn.shutdown(socket.SHUT_WR)
        answer = conn.makefile("rb").readline()
    return int(answer.split()[1]) if answer else 0


def test_a_put_cut_short_stores_nothing(engine: Any) -> None:
    s3 = engine.client("s3")
    name = f"put-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    data = os.urandom(SIZE)
    status = _raw_put(
        engine.endpoints.endpoint_url,
        f"/{name}/cut.bin",
        {"Content-Length": str(SIZE), "Connection": "close"},
        data[: SIZE // 2],
    )
    assert status != 200
    assert s3.list_objects_v2(Bucket=name).get("KeyCount") == 0
    # The server goes on answering: a whole body sent the same way is stored.
    whole = {"Content-Length": str(SIZE), "Connection": "close"}
    assert _raw_put(engine.endpoints.endpoint_url, f"/{name}/whole.bin", whole, data) == 200
    assert s3.get_object(Bucket=name, Key="whole.bin")["Body"].read() == data


def test_a_chunked_put_keeps_its_bytes(engine: Any) -> None:
    s3 = engine.client("s3")
    name = f"put-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    data = os.urandom(SIZE)
    piece = 1024 * 1024
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(data[i : i + piece]), data[i : i + piece])
        for i in range(0, len(data), piece)
    )
    headers = {"Transfer-Encoding": "chunked", "Connection": "close"}
    status = _raw_put(
        engine.endpoints.endpoint_url, f"/{name}/chunked.bin", headers, chunked + b"0\r\n\r\n"
    )
    assert status == 200
    got = s3.get_object(Bucket=name, Key="chunked.bin")
    assert (got["ETag"], got["Body"].read()) == (f'"{hashlib.md5(data).hexdigest()}"', data)


def test_a_put_claiming_more_than_s3_takes_is_refused_and_the_server_goes_on(engine: Any) -> None:
    s3 = engine.client("s3")
    name = f"put-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    claim = {"Content-Length": str(10**13), "Connection": "close"}  # 10 TB, 1 KB sent
    status = _raw_put(engine.endpoints.endpoint_url, f"/{name}/claim.bin", claim, b"x" * 1024)
    assert 400 <= status < 500
    assert s3.list_objects_v2(Bucket=name).get("KeyCount") == 0
    s3.put_object(Bucket=name, Key="after.bin", Body=b"after")
    assert s3.get_object(Bucket=name, Key="after.bin")["Body"].read() == b"after"
