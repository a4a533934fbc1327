"""Uploads that S3 takes but will not serve to the stack: one in an archive storage
class, one under a key its uploader keeps (SSE-C), one under a KMS key the stack's roles
may not decrypt with. The job fails with a named error a
user can act on, publishes nothing, and never hangs; and the local S3 refuses such reads
as S3 does."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig

from tests.conftest import _wait
from workflow.vod.jobs import JobPaths, job_id


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_an_upload_in_an_archive_storage_class_fails_named_and_publishes_nothing(
    storage_class: str, clip: Any, run_job: Any
) -> None:
    # GIVEN a video uploaded straight into an archive tier (aws s3 cp --storage-class),
    # whose bytes S3 refuses to serve (InvalidObjectState) until it is restored
    source = clip("half_second")
    key = f"uploads/archived-{storage_class.lower()}.mp4"
    # WHEN its job runs
    run = run_job(source, key=key, extra={"StorageClass": storage_class})
    # THEN it fails with the workflow's own error, saying why and what to do
    assert run.status == "FAILED"
    assert run.error == "ArchivedInputError", run.cause
    assert run.cause and "\n" not in run.cause
    assert storage_class in run.cause and key in run.cause
    assert run.output_keys == [], "a failed job published something"
    assert run.failure is not None and run.failure["error"] == "ArchivedInputError"


def _customer_key() -> dict[str, str]:
    """SSE-C arguments of a key S3 never keeps (boto3 sends it with its MD5)."""
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": os.urandom(16).hex()}


def test_an_object_under_a_customer_key_is_read_only_with_that_key(
    engine: Any, tmp_path: Path
) -> None:
    # GIVEN objects uploaded with a customer-provided key: one PUT, one multipart upload
    s3 = engine.client("s3")
    name = f"ssec-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    sse = _customer_key()
    data = os.urandom(11 * 1024 * 1024)
    s3.put_object(Bucket=name, Key="put.bin", Body=data[:1000], **sse)
    source = tmp_path / "parts.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024)
    s3.upload_file(str(source), name, "parts.bin", ExtraArgs=sse, Config=config)
    for key, body in (("put.bin", data[:1000]), ("parts.bin", data)):
        # THEN a read without the key is refused as S3 refuses it, a read with it is served
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            s3.get_object(Bucket=name, Key=key)
        assert refused.value.response["Error"]["Code"] == "InvalidRequest"
        with pytest.raises(botocore.exceptions.ClientError) as headed:
            s3.head_object(Bucket=name, Key=key)
        assert headed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert s3.get_object(Bucket=name, Key=key, **sse)["Body"].read() == body
        assert s3.head_object(Bucket=name, Key=key, **sse)["ContentLength"] == len(body)


def test_an_upload_under_a_customer_key_fails_named_and_publishes_nothing(
    engine: Any, clip: Any
) -> None:
    # GIVEN a video uploaded with a customer-provided key (SSE-C), which S3 keeps no copy of
    s3, sfn, ep = engine.client("s3"), engine.client("stepfunctions"), engine.endpoints
    key = "uploads/customer-key.mp4"
    put = s3.put_object(
        Bucket=ep.ingest_bucket, Key=key, Body=clip("half_second").read_bytes(), **_customer_key()
    )
    # WHEN its job runs
    job = job_id(ep.ingest_bucket, key, put["ETag"])
    described = _wait(
        sfn, ep.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job}"
    )
    # THEN it fails with the workflow's own error, naming the upload, and publishes nothing
    assert described["status"] == "FAILED"
    assert described["error"] == "EncryptedInputError", described.get("cause")
    assert key in described["cause"] and "\n" not in described["cause"]
    paths = JobPaths(job)
    assert "Contents" not in s3.list_objects_v2(Bucket=ep.output_bucket, Prefix=paths.output_prefix)
    failure = json.loads(
        s3.get_object(Bucket=ep.output_bucket, Key=paths.failure_key)["Body"].read()
    )
    assert failure["error"] == "EncryptedInputError"


def _uploaders_key(engine: Any) -> str:
    """A customer-managed KMS key of the uploader's, which no role of the stack is granted."""
    kms = engine.client("kms")
    return str(kms.create_key(Description="an uploader's own key")["KeyMetadata"]["Arn"])


def test_an_upload_under_a_kms_key_the_stack_may_not_use_fails_named_and_publishes_nothing(
    engine: Any, clip: Any
) -> None:
    # GIVEN a video uploaded under the uploader's own KMS key (aws s3 cp --sse aws:kms
    # --sse-kms-key-id <key>), which no role of the stack may decrypt with
    s3, sfn, ep = engine.client("s3"), engine.client("stepfunctions"), engine.endpoints
    key_arn = _uploaders_key(engine)
    key = "uploads/uploaders-kms-key.mp4"
    put = s3.put_object(
        Bucket=ep.ingest_bucket,
        Key=key,
        Body=clip("half_second").read_bytes(),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_arn,
    )
    # WHEN its job runs
    job = job_id(ep.ingest_bucket, key, put["ETag"])
    described = _wait(
        sfn, ep.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job}"
    )
    # THEN it fails with the workflow's own error, naming the upload and the key, and
    # publishes nothing
    assert described["status"] == "FAILED"
    assert described["error"] == "EncryptedInputError", described.get("cause")
    cause = described["cause"]
    assert key in cause and key_arn in cause and "kms:Decrypt" in cause and "\n" not in cause
    paths = JobPaths(job)
    assert "Contents" not in s3.list_objects_v2(Bucket=ep.output_bucket, Prefix=paths.output_prefix)
    failure = json.loads(
        s3.get_object(Bucket=ep.output_bucket, Key=paths.failure_key)["Body"].read()
    )
    assert failure["error"] == "EncryptedInputError"
