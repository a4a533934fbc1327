"""`vidflow redrive`: an event that fails again is there for the next run, at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.cli.invoke import redrive_queue


class Lambdas:
    """The functions, failing as told until their cause is fixed."""

    def __init__(self) -> None:
        self.fixed = False
        self.invoked: list[dict[str, Any]] = []
        self.request_ids: list[str | None] = []

    def invoke(
        self, function: str, event: dict[str, Any], request_id: str | None = None
    ) -> tuple[Any, Any]:
        self.invoked.append(event)
        self.request_ids.append(request_id)
        if self.fixed:
            return {}, None
        return None, {"errorType": "AccessDenied", "errorMessage": "Access Denied"}


@pytest.fixture
def queue() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="vidflow-failed-events")["QueueUrl"]
        arn = "arn:aws:lambda:us-east-1:123456789012:function:vidflow-start-job:$LATEST"
        record = {
            "requestContext": {"functionArn": arn, "requestId": "c0ffee"},
            "requestPayload": {"Records": []},
        }
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
        yield sqs, url


def test_an_event_that_failed_again_is_redriven_by_the_next_run(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    lambdas = Lambdas()
    # GIVEN a redrive whose event failed again (its cause not yet fixed)
    assert redrive_queue(sqs, url, lambdas) == (0, 1)
    # WHEN the operator fixes the cause and redrives at once
    lambdas.fixed = True
    # THEN the event runs again and leaves the queue (not "0 redriven" for 15 minutes)
    assert redrive_queue(sqs, url, lambdas) == (1, 0)
    assert len(lambdas.invoked) == 2
    # (each run a retry of the invocation that failed: its request id, which StartJob's
    # starts are named after, so a start it made before failing is counted, not lost)
    assert lambdas.request_ids == ["c0ffee", "c0ffee"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


class Interrupted(Lambdas):
    """Ctrl-C during the second event's run."""

    def invoke(
        self, function: str, event: dict[str, Any], request_id: str | None = None
    ) -> tuple[Any, Any]:
        if self.invoked and not self.fixed:
            raise KeyboardInterrupt
        self.invoked.append(event)
        return {}, None


def test_events_an_interrupted_run_never_ran_are_there_for_the_next(
    queue: tuple[Any, str],
) -> None:
    sqs, url = queue
    for _ in range(2):  # three events in all
        sqs.send_message(QueueUrl=url, MessageBody=sqs.receive_message(
            QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"])  # fmt: skip
    lambdas = Interrupted()
    # GIVEN a redrive stopped with Ctrl-C while it ran the second event of its batch
    with pytest.raises(KeyboardInterrupt):
        redrive_queue(sqs, url, lambdas)
    # WHEN the operator runs it again at once / THEN the two it did not finish run (not
    # "0 redriven, 0 failed" while they stay hidden for 15 minutes)
    lambdas.fixed = True
    assert redrive_queue(sqs, url, lambdas) == (2, 0)
    assert len(lambdas.invoked) == 3


@pytest.mark.parametrize("body", ["not json", "[]", '{"requestContext": {}}', '{"a": 1}'])
def test_a_message_that_is_no_failure_record_fails_alone(
    queue: tuple[Any, str], body: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, url = queue
    # GIVEN a message put on the queue by hand before the real failure record
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"]
    sqs.purge_queue(QueueUrl=url)
    sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.send_message(QueueUrl=url, MessageBody=first)
    lambdas = Lambdas()
    lambdas.fixed = True
    # WHEN the operator redrives / THEN that one fails again by name, and the event after
    # it still runs (the run stopped at it: JSONDecodeError, an internal error)
    assert redrive_queue(sqs, url, lambdas) == (1, 1)
    assert "not an on-failure record" in capsys.readouterr().out
    assert len(lambdas.invoked) == 1
