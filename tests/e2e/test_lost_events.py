"""No upload is lost: an S3 event that fails every asynchronous attempt waits in the
failed-events queue; `vidflow redrive` or the scheduled reconciler turns it into exactly
one asset, and doing both still makes one."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _wait
from tests.reliability.test_faults import arm
from tests.stack import VIDFLOW
from workflow.local.faults import FaultPlan
from workflow.vod.jobs import JobPaths, job_id

EVENTS = Path(__file__).resolve().parents[2] / "events"


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


def _upload_losing_its_event(
    engine: Any, monkeypatch: pytest.MonkeyPatch, path: Any, key: str
) -> tuple[str, str, FaultPlan]:
    """Upload ``path`` as ``key`` with a StartJob that fails its first attempt and both of
    Lambda's retries; return once the retries have run out (job id, ETag, what fired)."""
    sqs, url = _queue(engine)
    plan = arm(engine, monkeypatch, "start_job:permanent:3")
    s3 = engine.client("s3")
    s3.upload_file(str(path), engine.endpoints.ingest_bucket, key)
    etag = s3.head_object(Bucket=engine.endpoints.ingest_bucket, Key=key)["ETag"]
    deadline = time.monotonic() + 60
    while _waiting(sqs, url) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    return job_id(engine.endpoints.ingest_bucket, key, etag), etag, plan


def _execution_arn(engine: Any, job: str) -> str:
    return engine.endpoints.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job}"


def test_an_upload_whose_trigger_fails_every_attempt_is_redriven_once(
    engine: Any, clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, url = _queue(engine)
    assert _waiting(sqs, url) == 0
    # GIVEN an upload whose StartJob failed every attempt
    job, etag, plan = _upload_losing_its_event(
        engine, monkeypatch, clip("long_gop"), "uploads/lost.mp4"
    )
    # THEN the event waits in the failed-events queue, in Lambda's destination format,
    # and no job ran
    assert plan.fired == [("StartJobFunction", "permanent")] * 3
    (message,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorType"] == "InjectedFaultError"
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["eTag"] == etag.strip('"')
    sfn, s3 = engine.client("stepfunctions"), engine.client("s3")
    arn = _execution_arn(engine, job)
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


def _reconcile(engine: Any) -> dict[str, Any]:
    """One run of the reconciler, with no grace period, against the session's stack."""
    done = subprocess.run(
        [*VIDFLOW, "invoke", "ReconcileFunction",
         "--event", str(EVENTS / "scheduled-reconcile.json"),
         "--endpoint-url", engine.endpoints.endpoint_url,
         "--parameter", "ReconcileGraceSeconds=0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def test_the_reconciler_starts_a_lost_uploads_job_once(
    engine: Any, clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, url = _queue(engine)
    # GIVEN an upload whose S3 event failed every attempt (so no job started)
    job, _, _ = _upload_losing_its_event(
        engine, monkeypatch, clip("long_gop"), "uploads/lost-reconciled.mp4"
    )
    assert _waiting(sqs, url) == 1
    s3 = engine.client("s3")
    # WHEN the reconciler runs
    found = _reconcile(engine)
    # THEN it starts that job, which publishes; a second run starts nothing
    assert job in found["started"]
    sfn = engine.client("stepfunctions")
    assert _wait(sfn, _execution_arn(engine, job))["status"] == "SUCCEEDED"
    assert job not in _reconcile(engine)["started"]
    # AND redriving the queued event afterwards starts no second job: exactly one asset
    done = _redrive(engine)
    assert done.returncode == 0 and done.stdout.strip().endswith("1 redriven, 0 failed again")
    executions = sfn.list_executions(stateMachineArn=engine.endpoints.state_machine_arn)
    assert [e["name"] for e in executions["executions"]].count(job) == 1
    listed = s3.list_objects_v2(
        Bucket=engine.endpoints.output_bucket, Prefix=JobPaths(job).output_prefix
    )
    assert sum(o["Key"].endswith("master.m3u8") for o in listed.get("Contents", [])) == 1
