"""A job the service failed (its Map past its tolerated failures, or its items unreadable:
``States.ExceedToleratedFailureThreshold``, ``States.ItemReaderFailed``; or a result over
256 KiB, ``States.DataLimitExceeded``, which nothing catches) ends locally with that error,
as on AWS, not with the interpreter's own ``States.Runtime``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.local import fail_errors

ROOT = Path(__file__).resolve().parents[2]
# Each state machine's last state: the error its RecordFailure caught, by ErrorPath.
FAILS = {"vod": "JobFailed", "live": "SegmentFailed", "clip": "ClipFailed"}
CAUSE = (
    "The state/task 'arn:aws:lambda:us-east-1:123456789012:function:probe' returned a "
    "result with a size exceeding the maximum number of bytes service limit."
)


def _ended(sfn: Any, arn: str) -> dict[str, Any]:
    for _ in range(200):
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


@pytest.mark.parametrize("machine", sorted(FAILS))
def test_a_caught_service_error_ends_the_execution_under_its_own_name(machine: str) -> None:
    # GIVEN the state machine's own Fail state, after a RecordFailure that caught
    # Step Functions' error for a result over 256 KiB
    definition = json.loads((ROOT / "statemachine" / f"{machine}.asl.json").read_text())
    fail = definition["States"][FAILS[machine]]
    recorded = {"error": "States.DataLimitExceeded", "cause": CAUSE}
    ending = {
        "StartAt": "RecordFailure",
        "States": {
            "RecordFailure": {
                "Type": "Pass",
                "Result": recorded,
                "ResultPath": "$.failure",
                "Next": "Failed",
            },
            "Failed": fail,
        },
    }
    fail_errors.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name=machine,
            definition=json.dumps(ending),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        # WHEN it runs
        execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        ended = _ended(sfn, execution)
    # THEN the execution fails with the error and cause recorded, as Step Functions ends it
    assert (ended["status"], ended.get("error"), ended.get("cause")) == (
        "FAILED",
        "States.DataLimitExceeded",
        CAUSE,
    )
