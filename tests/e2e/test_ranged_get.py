"""Ranged S3 GETs on the local stack answer exactly what S3 answers, reading only their range.

Through a real boto3 client against the engine's moto server, with the ranged-GET patch
(``workflow.local.ranged_get``) installed: every form of single range, the 416s, the ranges
S3 treats as absent, conditional and versioned GETs, on a multi-MB object; and the bytes
moto reads from the object's buffer for a range are the range's, not the object's, and
for an open-ended range about what the reader took before it hung up.
"""

from __future__ import annotations

import os
import time
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

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


def test_an_open_ended_read_costs_what_the_reader_took(bucket: tuple[Any, str, bytes]) -> None:
    # ffmpeg's way: ``bytes=N-`` on a presigned URL, read what it needs, hang up.
    s3, name, _ = bucket
    data = os.urandom(64 * 1024 * 1024)
    s3.put_object(Bucket=name, Key="long.bin", Body=data)
    key = _key(name, "long.bin")
    counting = _CountingBuffer(key._value_buffer)
    key._value_buffer = counting
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "long.bin"})
    try:
        request = urllib.request.Request(url, headers={"Range": "bytes=1000-"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 206
            assert answer.headers["Content-Length"] == str(len(data) - 1000)
            assert answer.read(65536) == data[1000 : 1000 + 65536]
        deadline = time.monotonic() + 10
        seen = -1
        while seen != counting.read_bytes and time.monotonic() < deadline:
            seen = counting.read_bytes
            time.sleep(0.5)
    finally:
        key._value_buffer = counting.inner

    assert counting.read_bytes <= 16 * 1024 * 1024
