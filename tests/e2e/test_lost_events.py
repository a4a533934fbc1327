"""No upload is lost: an S3 event that fails every asynchronous attempt waits in the
failed-events queue, and `vidflow redrive` turns it into exactly one asset."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from tests.conftest import _wait
from tests.reliability.test_faults import arm
from tests.stack import VIDFLOW
from workflow.jobs import JobPaths, job_id


def _queue(engine: Any) -> tuple[Any, str]:
    sqs = engine.client("sqs")
    (name,) = engine.stack.queues().values()
    return sqs, sqs.get_queue_url(QueueName=name)["QueueUrl"]


def _waiting(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _redrive(engine: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VIDFLOW, "redrive", "--endpoint-url", engine.endpoints.endpoint_url],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_an_upload_whose_trigger_fails_every_attempt_is_redriven_once(
    engine: Any, clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, url = _queue(engine)
    assert _waiting(sqs, url) == 0
    # GIVEN a StartJob that fails its first attempt and both of Lambda's retries
    plan = arm(engine, monkeypatch, "start_job:permanent:3")
    s3 = engine.client("s3")
    key = "uploads/lost.mp4"
    s3.upload_file(str(clip("long_gop")), engine.endpoints.ingest_bucket, key)
    etag = s3.head_object(Bucket=engine.endpoints.ingest_bucket, Key=key)["ETag"]
    job = job_id(engine.endpoints.ingest_bucket, key, etag)
    # WHEN the retries run out
    deadline = time.monotonic() + 60
    while _waiting(sqs, url) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    # THEN the event waits in the failed-events queue, in Lambda's destination format,
    # and no job ran
    assert plan.fired == [("StartJobFunction", "permanent")] * 3
    (message,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorType"] == "InjectedFaultError"
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["eTag"] == etag.strip('"')
    sfn = engine.client("stepfunctions")
    arn = engine.endpoints.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job}"
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.describe_execution(executionArn=arn)
    # WHEN the operator redrives the queue
    done = _redrive(engine)
    # THEN the event runs again, the queue is empty and the job publishes one asset
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "1 redriven, 0 failed again"
    assert _waiting(sqs, url) == 0
    assert _wait(sfn, arn)["status"] == "SUCCEEDED"
    listed = s3.list_objects_v2(Bucket=engine.endpoints.output_bucket, Prefix="outputs/")
    masters = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("master.m3u8")]
    assert JobPaths(job).master_key in masters
    # AND redriving again finds nothing to do
    again = _redrive(engine)
    assert again.returncode == 0 and again.stdout.strip().endswith("0 redriven, 0 failed again")
