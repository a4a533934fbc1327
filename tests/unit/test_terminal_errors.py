"""A step Step Functions fails for its data (``States.DataLimitExceeded``, ``States.Runtime``)
ends the execution, as on AWS: the state machines' ``States.ALL`` retriers and catchers
(``RecordFailure``) do not see it, though moto's interpreter let them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.local import fail_errors, terminal_errors

ROOT = Path(__file__).resolve().parents[2]
# Each state machine's first step, whose Retry and Catch the tests take as they are.
FIRST = {"vod": "Probe", "live": "Probe", "clip": "Clip"}
# A result over 256 KiB: the item the step reads.
BIG = "x" * 300_000


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    fail_errors.install()
    terminal_errors.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="items",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="items", Item={"k": {"S": "big"}, "v": {"S": BIG}})
        ddb.put_item(TableName="items", Item={"k": {"S": "small"}, "v": {"S": "x"}})
        yield {"sfn": boto3.client("stepfunctions", region_name="us-east-1")}


def _run(sfn: Any, definition: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    arn = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    for _ in range(400):
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            events = sfn.get_execution_history(executionArn=execution)["events"]
            return described, [e["type"] for e in events]
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


def _step(machine: str, key: str, result_selector: dict[str, str] | None = None) -> dict[str, Any]:
    """The machine's first step, its Retry and Catch as deployed, reading one item."""
    definition = json.loads((ROOT / "statemachine" / f"{machine}.asl.json").read_text())
    first = definition["States"][FIRST[machine]]
    step: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
        "Parameters": {"TableName": "items", "Key": {"k": {"S": key}}},
        "Retry": [dict(r, IntervalSeconds=1, MaxDelaySeconds=1) for r in first["Retry"]],
        "Catch": [dict(c, Next="RecordFailure") for c in first["Catch"]],
        "End": True,
    }
    if result_selector:
        step["ResultSelector"] = result_selector
    return {
        "StartAt": "Step",
        "States": {"Step": step, "RecordFailure": {"Type": "Pass", "End": True}},
    }


@pytest.mark.parametrize("machine", sorted(FIRST))
def test_a_result_over_256_kib_fails_the_execution_uncaught(
    aws: dict[str, Any], machine: str
) -> None:
    # GIVEN a step of the machine whose result is over 256 KiB
    # WHEN it runs
    described, events = _run(aws["sfn"], _step(machine, "big"))
    # THEN Step Functions fails the execution there: no RecordFailure
    assert (described["status"], described.get("error")) == (
        "FAILED",
        "States.DataLimitExceeded",
    )
    assert "PassStateEntered" not in events


@pytest.mark.parametrize("machine", sorted(FIRST))
def test_a_result_selector_naming_a_missing_field_fails_the_execution_uncaught(
    aws: dict[str, Any], machine: str
) -> None:
    # GIVEN a step whose ResultSelector names a field its result lacks
    definition = _step(machine, "small", {"duration.$": "$.Item.duration"})
    # WHEN it runs
    described, events = _run(aws["sfn"], definition)
    # THEN it is tried once, not retried or caught, and the execution fails States.Runtime
    assert (described["status"], described.get("error")) == ("FAILED", "States.Runtime")
    assert events.count("TaskScheduled") == 1
    assert "PassStateEntered" not in events


def test_a_catcher_naming_the_error_still_catches_it(aws: dict[str, Any]) -> None:
    # GIVEN a catcher that names States.DataLimitExceeded itself
    definition = _step("vod", "big")
    definition["States"]["Step"]["Catch"] = [
        {"ErrorEquals": ["States.DataLimitExceeded"], "Next": "RecordFailure"}
    ]
    # WHEN the result is over 256 KiB
    described, events = _run(aws["sfn"], definition)
    # THEN it is caught
    assert described["status"] == "SUCCEEDED"
    assert "PassStateEntered" in events


def test_states_all_still_catches_any_other_error(aws: dict[str, Any]) -> None:
    # GIVEN the VOD machine's first step reading a table that is not there
    definition = _step("vod", "small")
    definition["States"]["Step"]["Parameters"]["TableName"] = "missing"
    # WHEN it fails
    described, events = _run(aws["sfn"], definition)
    # THEN its States.ALL catcher records it
    assert described["status"] == "SUCCEEDED"
    assert "PassStateEntered" in events
