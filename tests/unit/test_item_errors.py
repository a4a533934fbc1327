"""A work item that fails on something AWS refuses leaves its error, which names the job's."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws

from tests import iam_policy
from tests.records import plan
from workflow.errors import TransientError
from workflow.runtime import Clients, Deadline
from workflow.settings import Settings
from workflow.vod.failure import record_failure
from workflow.vod.items import Work, work_item
from workflow.vod.jobs import JobPaths
from workflow.vod.records import WorkItem

OUTPUT = "vidflow-output-items"
PATHS = JobPaths("clip-0123456789abcdef")


class Bus:
    """An EventBridge client that keeps what it is given."""

    def __init__(self) -> None:
        self.put: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.put.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(len(self.put))}]}


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=OUTPUT)
        client.put_object(Bucket=OUTPUT, Key=PATHS.plan_key, Body=json.dumps(plan().to_dict()))
        yield client


def _refuse_published_writes(params: dict[str, Any], **_: Any) -> Any:
    """S3 under a bucket policy that denies writes to ``outputs/``."""
    if f"/{OUTPUT}/outputs/" in params["url_path"] or params["url_path"].startswith("/outputs/"):
        error = {"Code": "AccessDenied", "Message": "Access Denied"}
        return AWSResponse("", 403, HTTPHeaders(), None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
    return None


@work_item
def _uploads_a_segment(work: Work, remaining: Deadline) -> dict[str, Any]:
    work.output.put_bytes(f"{work.paths.output_prefix}360p/seg_00000.ts", b"x")
    return {}


def test_an_item_refused_by_s3_names_the_jobs_failure(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (a failed job is counted, as its function's environment names the namespace)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "vidflow-test")
    # GIVEN an output bucket whose policy refuses writes under outputs/
    s3.meta.events.register("before-call.s3.PutObject", _refuse_published_writes)
    clients = Clients(s3=s3, events=Bus())
    settings = Settings(output_bucket=OUTPUT, event_bus="vidflow-events")
    event = {
        "job_id": PATHS.job_id,
        "source": {"bucket": "in", "key": "uploads/clip.mp4", "etag": "x"},
        "item": WorkItem("video", chunk=plan().chunks[0]).to_dict(),
    }
    # WHEN a chunk's segment upload is refused, and the job fails on the item missing
    with pytest.raises(s3.exceptions.ClientError) as refused:
        _uploads_a_segment(event, settings, clients, lambda: 60.0)
    failed = {
        "job_id": PATHS.job_id,
        "source": event["source"],
        "error": {"Error": "IncompleteOutputError", "Cause": "1 of 3 work items have no result"},
    }
    recorded = record_failure(failed, settings, clients)
    # THEN the job's failure is the item's own, by the name Lambda reports it by (botocore
    # models S3's AccessDenied as a class of its own): what was refused, and where
    assert recorded["error"] == type(refused.value).__name__
    assert recorded["cause"].startswith("video-00000: ")
    assert "AccessDenied" in recorded["cause"] and "PutObject" in recorded["cause"]


def _failing_job() -> dict[str, Any]:
    """What RecordFailure is given when another item's error ended the job's Map."""
    return {
        "job_id": PATHS.job_id,
        "source": {"bucket": "in", "key": "uploads/clip.mp4", "etag": "x"},
        "error": {"Error": "TranscodeError", "Cause": "video-00003: damaged"},
    }


@pytest.mark.parametrize("then_fails", [False, True])
@pytest.mark.parametrize("function", ["TranscodeChunkFunction", "ImagesFunction"])
def test_an_item_that_uploads_after_its_job_failed_leaves_nothing_in_outputs(
    s3: Any, function: str, then_fails: bool
) -> None:
    # GIVEN a job whose Map ends on another item's error while this item still encodes:
    # Step Functions stops the item's execution, Lambda runs its invocation on, and
    # RecordFailure removes the partial output it finds before this item uploads
    settings = Settings(output_bucket=OUTPUT)
    clients = Clients(s3=s3, events=Bus())
    held = boto3.client("s3", region_name="us-east-1")
    iam_policy.enforce(held, function, {OUTPUT: "OutputBucket"})

    @work_item
    def straggler(work: Work, remaining: Deadline) -> dict[str, Any]:
        work.output.put_bytes(f"{work.paths.output_prefix}360p/seg_00000.ts", b"x")
        record_failure(_failing_job(), settings, clients)
        work.output.put_bytes(f"{work.paths.output_prefix}360p/seg_00001.ts", b"x")
        if then_fails:  # (and then fails itself: its next upload refused, S3 slowing down)
            raise TransientError("AWS is unavailable: SlowDown")
        return {}

    event = {
        "job_id": PATHS.job_id,
        "source": {"bucket": "in", "key": "uploads/clip.mp4", "etag": "x"},
        "item": WorkItem("video", chunk=plan().chunks[0]).to_dict(),
    }
    with pytest.raises(TransientError) if then_fails else contextlib.nullcontext():
        straggler(event, settings, Clients(s3=held), lambda: 60.0)
    # THEN the failed job keeps nothing under outputs/ (no rule expires it: it would be
    # paid for every month after, and read as a job's partial rungs)
    assert s3.list_objects_v2(Bucket=OUTPUT, Prefix=PATHS.output_prefix).get("KeyCount") == 0


@pytest.mark.parametrize(
    ("uploaded_at", "kept"),
    [
        # the same job id failed long before this upload (the same bytes, months ago)
        ("2026-12-05T20:00:00.000Z", 1),
        # this run's job failed after its upload, before this item's handler started (a
        # cold start behind an Invoke sent while the Map still ran)
        ("1970-01-01T00:10:00.000Z", 0),
    ],
)
def test_an_item_starting_after_a_failure_keeps_its_output_only_if_the_failure_is_older(
    s3: Any, uploaded_at: str, kept: int
) -> None:
    # GIVEN a failure record written at 1,000 s, before the item's handler starts
    settings = Settings(output_bucket=OUTPUT)
    clients = Clients(s3=s3, events=Bus(), clock=lambda: 1_000.0)
    record_failure(_failing_job(), settings, clients)
    s3.put_object(Bucket=OUTPUT, Key=PATHS.plan_key, Body=json.dumps(plan().to_dict()))
    event = {
        "job_id": PATHS.job_id,
        "source": {
            "bucket": "in",
            "key": "uploads/clip.mp4",
            "etag": "x",
            "uploaded_at": uploaded_at,
        },
        "item": WorkItem("video", chunk=plan().chunks[0]).to_dict(),
    }
    # WHEN the item uploads, THEN its segment stays only where the failure is an earlier
    # upload's
    _uploads_a_segment(event, settings, Clients(s3=s3, clock=lambda: 2_000.0), lambda: 60.0)
    found = s3.list_objects_v2(Bucket=OUTPUT, Prefix=PATHS.output_prefix).get("KeyCount")
    assert found == kept


@pytest.mark.parametrize("cut_off", [False, True])
def test_record_failure_run_again_keeps_the_items_error(
    s3: Any, monkeypatch: pytest.MonkeyPatch, cut_off: bool
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "vidflow-test")
    held = boto3.client("s3", region_name="us-east-1")  # (as its role lets it, both runs)
    iam_policy.enforce(held, "RecordFailureFunction", {OUTPUT: "OutputBucket"})
    clients = Clients(s3=held, events=Bus())
    settings = Settings(output_bucket=OUTPUT, event_bus="vidflow-events")
    source = {"bucket": "in", "key": "uploads/clip.mp4", "etag": "x"}
    # GIVEN a job whose chunk failed by name, ending its Map
    item_error = {"error": "TranscodeError", "cause": "video-00001: damaged"}
    s3.put_object(Bucket=OUTPUT, Key=PATHS.item_error_key("video-00001"),
                  Body=json.dumps(item_error))  # fmt: skip
    s3.put_object(Bucket=OUTPUT, Key=PATHS.result_key("video-00000"), Body=b"{}")
    failed = {
        "job_id": PATHS.job_id,
        "source": source,
        "error": {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "the Map failed"},
    }
    # WHEN RecordFailure runs to its end, or is cut off after the first key it removes of
    # the scratch, and Step Functions runs it again (Retry: States.ALL)
    if cut_off:
        deleted = held.delete_objects

        def cut(**kwargs: Any) -> Any:
            kwargs["Delete"]["Objects"] = kwargs["Delete"]["Objects"][:1]
            deleted(**kwargs)
            raise TimeoutError("Task timed out")

        monkeypatch.setattr(held, "delete_objects", cut)
        with pytest.raises(TimeoutError):
            record_failure(failed, settings, clients)
        monkeypatch.undo()
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "vidflow-test")
    else:
        record_failure(failed, settings, clients)
    again = record_failure(failed, settings, clients)
    # THEN the failure record still names the item's own error, as one clean run left it
    record = json.loads(s3.get_object(Bucket=OUTPUT, Key=PATHS.failure_key)["Body"].read())
    assert (record["error"], record["cause"]) == ("TranscodeError", "video-00001: damaged")
    assert again["error"] == "TranscodeError"
    assert len(clients.events.put) == 1
