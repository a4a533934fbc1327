"""A VOD job's cost estimate counts what the template's state machine runs, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workflow import prices
from workflow.cli.billing import VodBilling
from workflow.local.template import Stack

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = """\
Resources:
  Starter:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: starter/
      Handler: app.handler
      MemorySize: 128
      Environment:
        Variables:
          MACHINE: !Ref Machine
      Events:
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Ingest
            Events: s3:ObjectCreated:*
  Ingest:
    Type: AWS::S3::Bucket
  Small:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: small/, Handler: app.handler, MemorySize: 512}
  Big:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: big/, Handler: app.handler, MemorySize: 4096}
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub "${AWS::StackName}-vod"
      DefinitionUri: machine.asl.json
      DefinitionSubstitutions:
        SmallArn: !GetAtt Small.Arn
        BigArn: !GetAtt Big.Arn
Outputs:
  VodStateMachineArn:
    Value: !Ref Machine
"""


def task(arn: str, **more: object) -> dict[str, object]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": arn, "Payload.$": "$"},
        **more,
    }


ASL = {
    "StartAt": "First",
    "States": {
        "First": task("${SmallArn}", Next="Wait", Catch=[{"Next": "Failed"}]),
        "Wait": {"Type": "Pass", "Next": "Items"},
        "Items": {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Which",
                "States": {
                    "Which": {
                        "Type": "Choice",
                        "Choices": [
                            {"Variable": "$.item.kind", "StringEquals": "small", "Next": "S"}
                        ],
                        "Default": "B",
                    },
                    "S": task("${SmallArn}", End=True),
                    "B": task("${BigArn}", Next="Done"),
                    "Done": {"Type": "Succeed"},
                },
            },
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail"},
    },
}


@pytest.fixture
def billing(tmp_path: Path) -> VodBilling:
    (tmp_path / "sam-template.yaml").write_text(TEMPLATE)
    (tmp_path / "machine.asl.json").write_text(json.dumps(ASL))
    return VodBilling.from_stack(Stack(tmp_path))


def test_transitions_are_the_states_each_item_and_the_job_run(billing: VodBilling) -> None:
    # GIVEN a machine of four states on its success path (the Catch is not taken) whose
    # Distributed Map runs a Choice and one task per item, two states more for the default
    # THEN an empty job runs the four, and each item adds its child's start and its states
    assert billing.state_transitions([]) == 4
    assert billing.state_transitions(["small"]) == 4 + 1 + 2
    assert billing.state_transitions(["small", "other-00001"]) == 4 + 3 + 4


def test_requests_are_the_starter_and_every_lambda_task(billing: VodBilling) -> None:
    # the S3-triggered function that names the machine, then First, then one per item
    assert billing.lambda_requests(["small", "other-00001", "other-00002"]) == 2 + 3


def test_compute_is_priced_at_the_memory_of_the_function_each_item_calls(
    billing: VodBilling,
) -> None:
    assert billing.gb_seconds({"small": 2.0, "other-00001": 1.0}) == 2.0 * 0.5 + 1.0 * 4
    cost = billing.estimate({"small": 2.0})
    assert cost["lambda_compute"] == round(1.0 * prices.LAMBDA_GB_SECOND.usd, 6)
    assert cost["state_transitions"] == round(7 * prices.STANDARD_TRANSITION.usd, 6)
    parts = sum(v for k, v in cost.items() if k != "total")
    assert cost["total"] == pytest.approx(parts, abs=1e-6)


def test_the_real_template_prices_each_item_at_its_function(tmp_path: Path) -> None:
    # GIVEN the project's own template
    stack = Stack(ROOT)
    billing = VodBilling.from_stack(stack)

    def memory(logical_id: str) -> int:
        function = stack.find_function(logical_id)
        assert function is not None
        return function.memory

    # THEN video chunks, audio, images and subtitles each run on their own function
    assert billing.branch("video-00000").memory_mb == memory("TranscodeChunkFunction")
    assert billing.branch("audio").memory_mb == memory("TranscodeAudioFunction")
    assert billing.branch("images").memory_mb == memory("ImagesFunction")
    assert billing.branch("subtitles-en").memory_mb == memory("SubtitlesFunction")
    # AND the upload starts one function, and Probe, Plan and Publish are Lambda tasks
    assert billing.lambda_requests([]) == 4
    assert list(billing.task_memory) == ["Probe", "Plan", "Publish"]
