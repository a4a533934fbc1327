"""A Choice rule reading a path its input lacks ends the execution with ``States.Runtime``
locally, as Step Functions ends it, rather than taking the ``Default`` branch."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.local import choice_paths

ROOT = Path(__file__).resolve().parents[2]


def _ended(sfn: Any, arn: str) -> dict[str, Any]:
    for _ in range(200):
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


def _run(choice: dict[str, Any], execution_input: dict[str, Any]) -> dict[str, Any]:
    """Run ``choice`` on the input, each of its branches a Pass state naming itself."""
    targets = {rule["Next"] for rule in choice["Choices"]} | {choice["Default"]}
    definition = {
        "StartAt": "Choose",
        "States": {
            "Choose": choice,
            **{name: {"Type": "Pass", "Result": {"branch": name}, "End": True} for name in targets},
        },
    }
    choice_paths.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="choose",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))
        return _ended(sfn, execution["executionArn"])


LIVE_CHOICE = json.loads((ROOT / "statemachine" / "live.asl.json").read_text())["States"][
    "AlreadyPublished"
]


def test_a_choice_on_a_missing_field_fails_the_execution_as_aws_does() -> None:
    # GIVEN the live machine's Choice on LiveProbe's `duplicate`
    # WHEN its input lacks the field (a probe result that lost it)
    ended = _run(LIVE_CHOICE, {"stream": "s"})
    # THEN the execution fails there with States.Runtime, naming the path, rather than
    # going on to its Default (Transcode), which on AWS never runs
    assert ended["status"] == "FAILED", ended
    assert ended.get("error") == "States.Runtime", ended
    assert "$.duplicate" in ended.get("cause", ""), ended


@pytest.mark.parametrize(("duplicate", "branch"), [(True, "Duplicate"), (False, "Transcode")])
def test_a_choice_on_a_present_field_takes_its_branch(duplicate: bool, branch: str) -> None:
    ended = _run(LIVE_CHOICE, {"duplicate": duplicate})
    assert ended["status"] == "SUCCEEDED", ended
    assert json.loads(ended["output"]) == {"branch": branch}


def test_is_present_reads_a_missing_field_without_failing() -> None:
    choice = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.duplicate", "IsPresent": False, "Next": "Absent"}],
        "Default": "Present",
    }
    ended = _run(choice, {})
    assert ended["status"] == "SUCCEEDED", ended
    assert json.loads(ended["output"]) == {"branch": "Absent"}
