"""RangeReader: a file over one S3 object that costs only the blocks read."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from moto import mock_aws

from workflow.errors import SourceChangedError, TransientError
from workflow.storage import Bucket, Pin, RangeReader

BUCKET, KEY = "vidflow-ingest-reader", "uploads/a.bin"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def reader_over(s3: Any, data: bytes, pin: Pin | None = None) -> RangeReader:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    return RangeReader(Bucket(s3, BUCKET), KEY, len(data), pin)


def test_reads_anywhere_return_the_objects_bytes(s3: Any) -> None:
    # GIVEN a 1.3 MB object, not a whole number of blocks
    data = os.urandom(RangeReader.BLOCK * 5 + 12345)
    reader = reader_over(s3, data)
    # WHEN it is read as a demuxer does: from the head, the tail, across a block boundary
    for where, whence, length, start in [
        (0, io.SEEK_SET, 100, 0),
        (-1000, io.SEEK_END, 5000, len(data) - 1000),
        (RangeReader.BLOCK - 10, io.SEEK_SET, 30, RangeReader.BLOCK - 10),
        (5, io.SEEK_CUR, 7, RangeReader.BLOCK + 25),
    ]:
        reader.seek(where, whence)
        # THEN each read is the object's bytes there, cut short only at its end
        assert reader.read(length) == data[start : start + length]
    reader.seek(0, io.SEEK_END)
    assert reader.read(10) == b""


def test_only_the_blocks_read_are_fetched_and_each_once(s3: Any) -> None:
    # GIVEN a 40-block object
    data = os.urandom(RangeReader.BLOCK * 40)
    reader = reader_over(s3, data)
    # WHEN its head is read twice and one byte near its end
    reader.read(1000)
    reader.seek(0)
    reader.read(1000)
    reader.seek(-1, io.SEEK_END)
    reader.read(1)
    # THEN two blocks were fetched in two GETs: not the object
    assert (reader.requests, reader.bytes_read) == (2, 2 * RangeReader.BLOCK)


def test_a_replaced_object_is_named_not_read(s3: Any) -> None:
    # GIVEN a reader pinned to an object's ETag, and the object then replaced
    data = os.urandom(1000)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    etag = s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"].strip('"')
    reader = reader_over(s3, os.urandom(1000), Pin(None, etag))
    # WHEN it reads / THEN it says so
    with pytest.raises(SourceChangedError):
        reader.read(10)


def test_reading_on_fetches_ahead_in_fewer_requests(s3: Any) -> None:
    # GIVEN a 40-block object
    data = os.urandom(RangeReader.BLOCK * 40)
    reader = reader_over(s3, data)
    # WHEN 9 blocks are read from the top, 32 KiB at a time, as a demuxer reads on
    read = b"".join(reader.read(32 * 1024) for _ in range(9 * 8))
    # THEN they are the object's, fetched as one block and then AHEAD blocks at a time
    assert read == data[: 9 * RangeReader.BLOCK]
    assert reader.requests == 1 + 2
    assert reader.bytes_read == (1 + 2 * RangeReader.AHEAD) * RangeReader.BLOCK


def test_a_body_cut_short_is_a_read_to_retry(s3: Any) -> None:
    # GIVEN an object whose GET S3 ends after half the body its headers promised
    data = os.urandom(RangeReader.BLOCK * 2)
    reader = reader_over(s3, data)
    get_object = s3.get_object

    def cut_short(**params: Any) -> dict[str, Any]:
        response: dict[str, Any] = get_object(**params)
        body = response["Body"].read()
        response["Body"] = StreamingBody(io.BytesIO(body[: len(body) // 2]), len(body))
        return response

    s3.get_object = cut_short
    # WHEN it is read, THEN the read fails as one worth retrying, not as half the bytes
    with pytest.raises(TransientError, match="cut short: IncompleteReadError"):
        reader.read(100)


def test_an_object_replaced_while_pinned_reads_run_is_named_once_they_end(s3: Any) -> None:
    # GIVEN reads pinned to the version an event named
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"first")
    pin = Pin(etag=s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"])
    bucket = Bucket(s3, BUCKET)
    with bucket.pinned(KEY, pin):
        pass  # nothing changed: nothing said
    # WHEN the object is uploaded again while they run, THEN their end says so
    with pytest.raises(SourceChangedError), bucket.pinned(KEY, pin):
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"second")
