"""Uploads to the local stack's S3 keep every byte and answer S3's ETags, with the PUT
patch (``workflow.local.s3_put``) installed: through a real boto3 client against the
engine's moto server, one PUT past moto's in-memory buffer, an overwrite, and a multipart
upload (whose ETag is the MD5 of its parts' MD5s, then their count)."""

from __future__ import annotations

import hashlib
import os
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
