"""The functions' log lines reach the template's log group as Lambda puts them: a stream per
function, made the first time it is needed (again if someone deleted it), no empty lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.local.engine import _send_logs

GROUP = "/aws/lambda/vidflow"
NOW = int(time.time() * 1000)  # CloudWatch drops events older than 14 days


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=GROUP)
        yield client


def _messages(logs: Any, function: str) -> list[str]:
    stream = f"local/[$LATEST]{function}"
    events = logs.get_log_events(logGroupName=GROUP, logStreamName=stream)["events"]
    return [e["message"] for e in events]


def test_each_function_gets_its_stream_and_its_lines_in_order(logs: Any) -> None:
    _send_logs(logs, GROUP, [("probe", NOW, "one"), ("plan", NOW + 1, "a"), ("probe", NOW + 2, "")])
    _send_logs(logs, GROUP, [("probe", NOW + 3, "two")])
    streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert sorted(s["logStreamName"] for s in streams) == [
        "local/[$LATEST]plan",
        "local/[$LATEST]probe",
    ]
    assert _messages(logs, "probe") == ["one", "two"]
    assert _messages(logs, "plan") == ["a"]


def test_a_deleted_stream_is_made_again(logs: Any) -> None:
    _send_logs(logs, GROUP, [("probe", NOW, "before")])
    logs.delete_log_stream(logGroupName=GROUP, logStreamName="local/[$LATEST]probe")
    _send_logs(logs, GROUP, [("probe", NOW + 3, "after")])
    assert _messages(logs, "probe") == ["after"]


def test_a_missing_group_is_an_error_the_shipper_reports(logs: Any) -> None:
    logs.delete_log_group(logGroupName=GROUP)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        _send_logs(logs, GROUP, [("probe", NOW, "lost")])
