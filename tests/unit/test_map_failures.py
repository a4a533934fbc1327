"""A Distributed Map whose items fail past its tolerated threshold fails with
``States.ExceedToleratedFailureThreshold``, as on AWS; moto let it succeed, and a VOD job
with a failed chunk went on to Publish. One whose ItemReader cannot read its items fails
with ``States.ItemReaderFailed``, which its catcher catches, as on AWS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.local import fail_errors, map_failures, terminal_errors

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "vidflow-output"
# A child that fails on an item of kind "bad", as a chunk whose function failed.
CHILD = {
    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
    "StartAt": "WhichItem",
    "States": {
        "WhichItem": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.item.kind", "StringEquals": "bad", "Next": "Failed"}],
            "Default": "Done",
        },
        "Failed": {"Type": "Fail", "Error": "TranscodeError", "Cause": "bad chunk"},
        "Done": {"Type": "Pass", "OutputPath": None, "End": True},
    },
}


@pytest.fixture
def sfn() -> Iterator[Any]:
    fail_errors.install()
    terminal_errors.install()
    map_failures.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield boto3.client("stepfunctions", region_name="us-east-1")


def _transcode(**fields: Any) -> dict[str, Any]:
    """The VOD machine's Transcode Map as deployed, its items failing as ``CHILD`` does,
    ending in a Pass for Publish and one for RecordFailure."""
    definition = json.loads((ROOT / "statemachine" / "vod.asl.json").read_text())
    transcode = dict(definition["States"]["Transcode"], ItemProcessor=CHILD, **fields)
    return {
        "StartAt": "Transcode",
        "States": {
            "Transcode": transcode,
            "Publish": {"Type": "Pass", "End": True},
            "RecordFailure": {"Type": "Pass", "End": True},
        },
    }


def _run(sfn: Any, definition: dict[str, Any], kinds: list[str] | bytes | None) -> dict[str, Any]:
    """Run with the items' object holding ``kinds`` (bytes as they are; None: no object)."""
    if kinds is not None:
        body = kinds if isinstance(kinds, bytes) else json.dumps([{"kind": k} for k in kinds])
        boto3.client("s3", region_name="us-east-1").put_object(
            Bucket=BUCKET, Key="items.json", Body=body
        )
    arn = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]
    job = {
        "job_id": "j",
        "source": {},
        "plan": {"bucket": BUCKET, "items_key": "items.json", "max_concurrency": 2},
    }
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(job))["executionArn"]
    for _ in range(400):
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described.get("error")
            return json.loads(described.get("output", "{}"))
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


def test_one_failed_item_fails_the_vod_transcode_map(sfn: Any) -> None:
    # GIVEN the VOD Transcode Map (no tolerated failures) with one chunk of three failing
    # WHEN it runs
    output = _run(sfn, _transcode(), ["video", "bad", "video"])
    # THEN the Map fails, and its catcher hands RecordFailure the service's error
    assert output["error"] == {
        "Error": "States.ExceedToleratedFailureThreshold",
        "Cause": "The specified tolerated failure threshold was exceeded",
    }


def test_a_map_whose_items_all_succeed_goes_on(sfn: Any) -> None:
    output = _run(sfn, _transcode(), ["video", "audio", "video"])
    assert "error" not in output


def test_failures_within_the_tolerated_percentage_are_tolerated(sfn: Any) -> None:
    # GIVEN a Map tolerating half its items failing (a float: moto's parser takes no
    # integer there), one of three failing
    tolerant = _transcode(ToleratedFailurePercentage=50.0)
    output = _run(sfn, tolerant, ["video", "bad", "video"])
    # THEN it succeeds
    assert "error" not in output


@pytest.mark.parametrize(
    ("items", "cause"),
    [(None, "The specified key does not exist"), (b"not json", "Expecting value")],
    ids=["missing", "not-json"],
)
def test_items_the_reader_cannot_read_are_caught_as_item_reader_failed(
    sfn: Any, items: bytes | None, cause: str
) -> None:
    # GIVEN the VOD Transcode Map whose items' object is missing or not JSON
    # WHEN it runs
    output = _run(sfn, _transcode(), items)
    # THEN the Map fails States.ItemReaderFailed, which its catcher hands RecordFailure
    # (moto's States.Runtime ended the execution there, uncaught)
    assert output["error"]["Error"] == "States.ItemReaderFailed"
    assert cause in output["error"]["Cause"]


@pytest.mark.parametrize(
    ("failed", "total", "count", "percentage", "expected"),
    [
        (0, 10, 0, 0.0, False),
        (1, 10, 0, 0.0, True),
        (2, 10, 2, 0.0, False),
        (3, 10, 2, 0.0, True),
        (1, 10, 0, 10.0, False),
        (2, 10, 0, 10.0, True),
        # Both given: the Map fails when either is passed.
        (2, 10, 5, 10.0, True),
        (2, 10, 1, 50.0, True),
    ],
)
def test_the_threshold(
    failed: int, total: int, count: int, percentage: float, expected: bool
) -> None:
    assert map_failures.exceeded(failed, total, count, percentage) is expected
