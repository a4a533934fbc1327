"""The local stack's SSE-C objects (``workflow.local.sse_c``), read as S3 reads them, and
the workflow's reads of an upload replaced under a key or class it cannot read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig
from moto import mock_aws

from workflow.errors import SourceChangedError
from workflow.local import sse_c
from workflow.storage import Bucket, Pin

BUCKET = "ingest"
CUSTOMER = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
OTHER = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "o" * 32}
SIZE = 6 * 1024 * 1024  # (in two parts)


@pytest.fixture
def s3() -> Iterator[Any]:
    sse_c.install()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _refused(call: Any, **params: Any) -> bool:
    try:
        call(Bucket=BUCKET, **params)
    except botocore.exceptions.ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return False


def test_a_copy_of_an_sse_c_upload_is_read_with_the_key_its_copy_names(
    s3: Any, tmp_path: Any
) -> None:
    # GIVEN an upload in parts under its uploader's key
    source = tmp_path / "game.mp4"
    source.write_bytes(b"v" * SIZE)
    s3.upload_file(str(source), BUCKET, "uploads/game.mp4", ExtraArgs=CUSTOMER,
                   Config=TransferConfig(multipart_threshold=5 * 1024 * 1024))  # fmt: skip
    assert _refused(s3.get_object, Key="uploads/game.mp4")
    copied = {"Bucket": BUCKET, "Key": "uploads/game.mp4"}
    source_key = {f"CopySource{name}": value for name, value in CUSTOMER.items()}
    # WHEN it is copied in the clear (the error's advice), and under another key
    s3.copy_object(Bucket=BUCKET, Key="uploads/plain.mp4", CopySource=copied, **source_key)
    s3.copy_object(Bucket=BUCKET, Key="uploads/other.mp4", CopySource=copied, **source_key, **OTHER)
    # THEN the plain copy is read by anyone, the other with its own key only
    # (its body unread: moto answers a copy of parts with their checksum, not the copy's)
    assert s3.get_object(Bucket=BUCKET, Key="uploads/plain.mp4")["ContentLength"] == SIZE
    assert _refused(s3.get_object, Key="uploads/other.mp4")
    assert s3.get_object(Bucket=BUCKET, Key="uploads/other.mp4", **OTHER)["ContentLength"] == SIZE


def test_an_sse_c_objects_tags_and_acl_are_read_without_its_key(s3: Any) -> None:
    # GIVEN an object under its uploader's key
    s3.put_object(Bucket=BUCKET, Key="uploads/game.mp4", Body=b"video", **CUSTOMER)
    # WHEN its tags and ACL are read without it / THEN S3 serves them, and the object
    # itself only with its key
    assert s3.get_object_tagging(Bucket=BUCKET, Key="uploads/game.mp4")["TagSet"] == []
    assert "Grants" in s3.get_object_acl(Bucket=BUCKET, Key="uploads/game.mp4")
    assert _refused(s3.head_object, Key="uploads/game.mp4")


@pytest.mark.parametrize("replacement", ["sse-c", "glacier"])
def test_an_upload_replaced_by_one_its_reader_cannot_read_is_a_changed_source(
    s3: Any, replacement: str
) -> None:
    # GIVEN an upload to a bucket without versions, its job's reads pinned by its ETag
    put = s3.put_object(Bucket=BUCKET, Key="uploads/game.mp4", Body=b"first")
    pin = Pin(None, put["ETag"].strip('"'))
    # WHEN it is replaced by one under a customer key, or in an archive class
    extra = CUSTOMER if replacement == "sse-c" else {"StorageClass": "GLACIER"}
    s3.put_object(Bucket=BUCKET, Key="uploads/game.mp4", Body=b"second", **extra)
    # THEN the old job's reads say its source changed, not the new upload's trouble
    ingest = Bucket(s3, BUCKET)
    with pytest.raises(SourceChangedError):
        ingest.read_span("uploads/game.mp4", 0, 3, pin)
    with pytest.raises(SourceChangedError):
        ingest.head("uploads/game.mp4", pin)
