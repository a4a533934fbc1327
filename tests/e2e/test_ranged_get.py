"""Ranged S3 GETs on the local stack answer exactly what S3 answers, reading only their range.

Through a real boto3 client against the engine's moto server, with the ranged-GET patch
(``workflow.local.ranged_get``) installed: every form of single range, the 416s, the ranges
S3 treats as absent, conditional and versioned GETs, on a multi-MB object; and the bytes
moto reads from the object's buffer for a range are the range's, not the object's, and
for an open-ended range about what the reader took before it hung up.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from workflow.local import ranged_get
from workflow.storage import S3_CONFIG

SIZE = 5 * 1024 * 1024 + 123
LAST = SIZE - 1

# (Range header, first byte, last byte) of the 206 S3 answers.
PARTIAL = [
    ("bytes=0-0", 0, 0),
    ("bytes=0-99", 0, 99),
    ("bytes=1000-2000000", 1000, 2000000),
    ("bytes=4194304-", 4194304, LAST),
    (f"bytes={LAST}-{LAST}", LAST, LAST),
    (f"bytes={LAST - 10}-{SIZE + 5000}", LAST - 10, LAST),
    ("bytes=-1", LAST, LAST),
    ("bytes=-65536", SIZE - 65536, LAST),
    (f"bytes=-{SIZE + 10}", 0, LAST),
    ("bytes=0-", 0, LAST),
]
# Ranges S3 ignores: the whole object, 200.
WHOLE = ["bytes=0-1,5-6", "bytes=x-y", "bytes=10-5"]
UNSATISFIABLE = [f"bytes={SIZE}-", f"bytes={SIZE + 100}-{SIZE + 200}", "bytes=-0"]


@pytest.fixture(scope="module")
def bucket(engine: Any) -> tuple[Any, str, bytes]:
    """A versioned bucket of its own (no notifications) holding a multi-MB object."""
    s3 = engine.client("s3")
    name = f"ranged-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    data = os.urandom(SIZE)
    s3.put_object(Bucket=name, Key="big.bin", Body=data)
    return s3, name, data


@pytest.mark.parametrize(("header", "first", "last"), PARTIAL)
def test_a_single_range_is_its_slice(
    bucket: tuple[Any, str, bytes], header: str, first: int, last: int
) -> None:
    s3, name, data = bucket
    got = s3.get_object(Bucket=name, Key="big.bin", Range=header)
    body = got["Body"].read()
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert body == data[first : last + 1]
    assert got["ContentRange"] == f"bytes {first}-{last}/{SIZE}"
    assert got["ContentLength"] == last - first + 1
    assert got["AcceptRanges"] == "bytes"
    assert got["VersionId"]


@pytest.mark.parametrize("header", WHOLE)
def test_a_range_s3_ignores_gives_the_whole_object(
    bucket: tuple[Any, str, bytes], header: str
) -> None:
    s3, name, data = bucket
    got = s3.get_object(Bucket=name, Key="big.bin", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == data
    assert got["ContentLength"] == SIZE
    assert "ContentRange" not in got


@pytest.mark.parametrize("header", UNSATISFIABLE)
def test_an_unsatisfiable_range_is_416(bucket: tuple[Any, str, bytes], header: str) -> None:
    s3, name, _ = bucket
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=name, Key="big.bin", Range=header)
    assert raised.value.response["Error"]["Code"] == "InvalidRange"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_conditions_are_checked_before_the_range(bucket: tuple[Any, str, bytes]) -> None:
    s3, name, data = bucket
    etag = s3.head_object(Bucket=name, Key="big.bin")["ETag"]
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=name, Key="big.bin", Range="bytes=0-9", IfMatch='"nope"')
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as unchanged:
        s3.get_object(Bucket=name, Key="big.bin", Range="bytes=0-9", IfNoneMatch=etag)
    assert unchanged.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    matched = s3.get_object(Bucket=name, Key="big.bin", Range="bytes=10-19", IfMatch=etag)
    assert matched["Body"].read() == data[10:20]


def test_a_ranged_get_of_an_old_version_reads_that_version(
    bucket: tuple[Any, str, bytes],
) -> None:
    s3, name, _ = bucket
    first = os.urandom(3 * 1024 * 1024)
    second = os.urandom(2 * 1024 * 1024)
    v1 = s3.put_object(Bucket=name, Key="versions.bin", Body=first)["VersionId"]
    v2 = s3.put_object(Bucket=name, Key="versions.bin", Body=second)["VersionId"]

    old = s3.get_object(Bucket=name, Key="versions.bin", VersionId=v1, Range="bytes=-100")
    new = s3.get_object(Bucket=name, Key="versions.bin", Range="bytes=2097000-")

    assert old["Body"].read() == first[-100:]
    assert old["VersionId"] == v1
    assert old["ContentRange"] == f"bytes {len(first) - 100}-{len(first) - 1}/{len(first)}"
    assert new["Body"].read() == second[2097000:]
    assert new["VersionId"] == v2
    assert new["ContentRange"] == f"bytes 2097000-{len(second) - 1}/{len(second)}"


class _CountingBuffer:
    """A key's buffer that counts the bytes read from it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.read_bytes = 0

    def read(self, *args: Any) -> bytes:
        data: bytes = self.inner.read(*args)
        self.read_bytes += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_ranged_get_reads_only_its_range(bucket: tuple[Any, str, bytes]) -> None:
    s3, name, data = bucket
    key = _key(name, "big.bin")
    counting = _CountingBuffer(key._value_buffer)
    key._value_buffer = counting
    try:
        ranged = s3.get_object(Bucket=name, Key="big.bin", Range="bytes=1000-1999")["Body"].read()
        after_range = counting.read_bytes
        whole = s3.get_object(Bucket=name, Key="big.bin")["Body"].read()
    finally:
        key._value_buffer = counting.inner

    assert (ranged, after_range) == (data[1000:2000], 1000)
    assert whole == data and counting.read_bytes == 1000 + SIZE


def _key(name: str, key_name: str) -> Any:
    from moto.s3.models import s3_backends

    return next(
        bucket_model.keys[key_name]
        for account in s3_backends.values()
        for backend in account.values()
        for bucket_name, bucket_model in backend.buckets.items()
        if bucket_name == name
    )


def test_an_open_ended_read_costs_what_the_reader_took(
    bucket: tuple[Any, str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ffmpeg's way: ``bytes=N-`` on a presigned URL, read what it needs, hang up.
    s3, name, _ = bucket
    data = os.urandom(64 * 1024 * 1024)
    s3.put_object(Bucket=name, Key="long.bin", Body=data)
    key = _key(name, "long.bin")
    counting = _CountingBuffer(key._value_buffer)
    key._value_buffer = counting
    # The server is done with the answer when the body it sends ends (sent whole, or
    # closed once the reader hung up): only then has it read all it will read.
    sent = threading.Event()
    blocks = ranged_get._KeyBody.blocks

    def watched(body: Any) -> Iterator[bytes]:
        try:
            yield from blocks(body)
        finally:
            if body._key is key:
                sent.set()

    monkeypatch.setattr(ranged_get._KeyBody, "blocks", watched)
    url = _presign(s3, name, "long.bin")
    try:
        request = urllib.request.Request(url, headers={"Range": "bytes=1000-"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 206
            assert answer.headers["Content-Length"] == str(len(data) - 1000)
            assert answer.read(65536) == data[1000 : 1000 + 65536]
        assert sent.wait(timeout=120), "the server still sends the body 120 s after the hang-up"
    finally:
        key._value_buffer = counting.inner

    assert counting.read_bytes <= 16 * 1024 * 1024


def _presign(s3: Any, bucket: str, key: str, config: Config = S3_CONFIG) -> str:
    signer = boto3.client(
        "s3", region_name=s3.meta.region_name, endpoint_url=s3.meta.endpoint_url, config=config
    )
    url: str = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    return url


def test_a_url_presigned_with_sigv2_is_refused_as_s3_refuses_it(
    bucket: tuple[Any, str, bytes],
) -> None:
    # GIVEN the same object presigned with SigV4 and with SigV2 (botocore's default for
    # presigning in us-east-1; S3 refuses it for KMS-encrypted objects and new buckets)
    s3, name, data = bucket
    urls = {v: _presign(s3, name, "big.bin", Config(signature_version=v)) for v in ("s3v4", "s3")}
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in urls["s3v4"]
    assert "AWSAccessKeyId=" in urls["s3"]
    # THEN the SigV4 URL is served, and the SigV2 one refused with S3's own answer
    request = urllib.request.Request(urls["s3v4"], headers={"Range": "bytes=0-99"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.read() == data[:100]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urls["s3"], timeout=30)
    assert refused.value.code == 400
    assert b"<Code>InvalidRequest</Code>" in refused.value.read()
