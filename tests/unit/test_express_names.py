"""An Express machine keeps no execution names: the local stack runs a name started again,
as AWS does, where a Standard machine refuses it."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.local import execution_names

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def _ended(sfn: Any, arn: str) -> str:
    for _ in range(200):
        status: str = sfn.describe_execution(executionArn=arn)["status"]
        if status != "RUNNING":
            return status
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


@pytest.mark.parametrize("kind", ["EXPRESS", "STANDARD"])
def test_a_name_started_again_runs_again_on_express_only(kind: str) -> None:
    execution_names.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="live", definition=DEFINITION, type=kind,
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]  # fmt: skip
        # GIVEN a segment's execution, run to its end
        first = sfn.start_execution(stateMachineArn=machine, name="game-000000001-ab", input="{}")
        assert _ended(sfn, first["executionArn"]) == "SUCCEEDED"
        # WHEN its event is delivered again (the same name and input)
        if kind == "STANDARD":
            # THEN a Standard machine refuses the name it ran
            with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
                sfn.start_execution(stateMachineArn=machine, name="game-000000001-ab", input="{}")
            return
        # THEN an Express one runs it again, twice if asked, each an execution of its own
        again = [
            sfn.start_execution(stateMachineArn=machine, name="game-000000001-ab", input="{}")
            for _ in range(2)
        ]
        arns = {first["executionArn"], *(a["executionArn"] for a in again)}
        assert len(arns) == 3
        assert [_ended(sfn, a["executionArn"]) for a in again] == ["SUCCEEDED", "SUCCEEDED"]
        listed = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert sorted(e["name"] for e in listed) == ["game-000000001-ab"] * 3
        # AND a name AWS refuses is still refused
        with pytest.raises(sfn.exceptions.InvalidName):
            sfn.start_execution(stateMachineArn=machine, name="game:1", input="{}")
