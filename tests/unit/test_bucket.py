"""Bucket's reads and deletes where S3's answer says more than its status: a batch delete
answered 200 with keys it could not delete is not a success, and an object too large for
a small read is told by its length before its body is read."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from workflow.errors import EncryptedInputError, TransientError
from workflow.storage import Bucket, transient_aws_errors

BUCKET = "vidflow-output-delete"
KEYS = ["outputs/job/720p/seg_00000.ts", "outputs/job/720p/seg_00001.ts"]


def _stubbed(errors: list[dict[str, str]]) -> tuple[Any, Stubber]:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stub = Stubber(client)
    stub.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": key} for key in KEYS]},
        {"Bucket": BUCKET, "Prefix": "outputs/job/"},
    )
    stub.add_response("delete_objects", {"Errors": errors} if errors else {})
    return client, stub


def test_every_key_deleted_is_counted() -> None:
    client, stub = _stubbed([])
    with stub:
        assert Bucket(client, BUCKET).delete_prefix("outputs/job/") == 2


@pytest.mark.parametrize(
    ("code", "raised"),
    [("AccessDenied", botocore.exceptions.ClientError), ("InternalError", TransientError)],
)
def test_a_key_s3_could_not_delete_is_raised_as_its_error(code: str, raised: type) -> None:
    # GIVEN S3 answering the batch 200 but naming a key it did not delete
    error = {"Key": KEYS[1], "Code": code, "Message": "We encountered an internal error."}
    client, stub = _stubbed([error])
    # THEN the clean-up fails naming the key, and a step retries it where S3 asks to
    with stub, pytest.raises(raised) as failed, transient_aws_errors():
        Bucket(client, BUCKET).delete_prefix("outputs/job/")
    cause = failed.value if raised is not TransientError else failed.value.__cause__
    assert isinstance(cause, botocore.exceptions.ClientError)
    assert KEYS[1] in str(cause)


class _Unread:
    """A body that fails the test if any of it is read."""

    closed = False

    def read(self, *_: Any) -> bytes:
        raise AssertionError("the body of an object past the bound was read")

    def close(self) -> None:
        self.closed = True


def test_a_small_read_of_a_large_object_reads_none_of_its_body() -> None:
    body = _Unread()

    class Client:
        def get_object(self, **_: Any) -> dict[str, Any]:
            return {"ContentLength": 5 * 1024**3, "Body": body}

    # GIVEN a venue's stream.json, END or clip request of 5 GiB
    # THEN it is refused from its length alone, and its connection let go
    assert Bucket(Client(), BUCKET).get_small("live/game/stream.json", 64 * 1024) is None
    assert body.closed


@pytest.mark.parametrize(
    "code",
    [
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
    ],
)
def test_dynamodb_throttling_is_transient(code: str) -> None:
    # GIVEN DynamoDB throttling a write (a hot stream record), past botocore's own retries,
    # or refusing it while a transaction on its item is under way (a segment's count)
    # THEN the step fails as one to retry (and Reconcile to start again), not as a
    # ClientError that makes the segment a gap for good
    with pytest.raises(TransientError, match=code), transient_aws_errors():
        raise botocore.exceptions.ClientError({"Error": {"Code": code}}, "UpdateItem")


KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize("encryption", ["aws:kms", "aws:kms:dsse", "AES256"])
def test_a_get_refused_by_kms_is_named_with_its_key(encryption: str) -> None:
    # GIVEN S3's answers to a role without kms:Decrypt on an upload's key: the GET is
    # 403 AccessDenied naming kms:Decrypt, the HEAD (which decrypts nothing) is answered
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stub = Stubber(client)
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/r/f is not authorized to perform: "
        f"kms:Decrypt on resource: {KMS_KEY} because no identity-based policy allows the "
        "kms:Decrypt action"
    )
    stub.add_client_error("get_object", "AccessDenied", denied, 403)
    described = {"ServerSideEncryption": encryption, "ContentLength": 10}
    if encryption != "AES256":
        described["SSEKMSKeyId"] = KMS_KEY
    stub.add_response("head_object", described)
    with stub:
        read = Bucket(client, "ingest")
        if encryption != "AES256":
            # THEN the read fails named, with the key and what to grant
            with pytest.raises(EncryptedInputError, match=f"{KMS_KEY}.*kms:Decrypt"):
                read.read_span("uploads/a.mp4", 0, 1)
        else:
            # AND a refusal of an object not under KMS is left as S3 answered it
            with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
                read.read_span("uploads/a.mp4", 0, 1)
