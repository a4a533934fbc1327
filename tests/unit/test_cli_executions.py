"""``vidflow executions show|history|watch`` given an ARN that names no execution."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from workflow.cli import terminal, watch
from workflow.cli.common import EXIT_USAGE
from workflow.cli.main import main
from workflow.cli.monitor import Monitor


class _NoSuchExecution:
    """A monitor whose Step Functions knows no execution by any ARN."""

    def __init__(self, code: str) -> None:
        self.code = code

    def _refuse(self, arn: str) -> None:
        raise ClientError({"Error": {"Code": self.code, "Message": "Execution Does Not Exist"}},
                          "DescribeExecution")  # fmt: skip

    execution = history = _refuse


@pytest.mark.parametrize("verb", ["show", "history"])
@pytest.mark.parametrize(
    ("arn", "code"),
    [
        (
            "arn:aws:states:us-east-1:123456789012:execution:vidflow-vod:nope",
            "ExecutionDoesNotExist",
        ),
        ("arn:nope", "InvalidArn"),
    ],
)
def test_an_arn_that_names_no_execution_is_said_as_a_name_is(
    verb: str, arn: str, code: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr(watch, "_monitor", lambda args: _NoSuchExecution(code))
    # WHEN an execution is asked for by an ARN no execution has / THEN it is a usage
    # error that says so, as for a name, not botocore's ClientError
    assert main(["executions", verb, arn]) == EXIT_USAGE
    assert capsys.readouterr().err == f"error: no execution {arn!r}\n"


class _FailedInRecordFailure:
    """A monitor of one execution that failed where RecordFailure itself failed: its
    cause is the function's error payload, stack trace and all."""

    summary = {
        "name": "job", "status": "FAILED", "machine": "vidflow-vod", "input_key": "a.mp4",
        "start": "2027-01-15T08:00:00", "seconds": 3.0, "error": "TransientError",
        "cause": json.dumps({
            "errorType": "TransientError", "errorMessage": "the output bucket throttled",
            "stackTrace": ['  File "/var/task/app.py", line 20, in handler\n'],
        }),
    }  # fmt: skip

    def execution(self, arn: str) -> dict[str, Any]:
        return {"summary": self.summary, "failed_state": "RecordFailure", "states": {},
                "definition": {"States": {}}}  # fmt: skip


@pytest.mark.parametrize("verb", [terminal.show, terminal.watch])
def test_a_failure_is_shown_by_its_message_not_the_functions_stack_trace(
    verb: Callable[..., int],
) -> None:
    out = io.StringIO()
    # WHEN the user looks at it / THEN one line names the error and says its message
    verb(_FailedInRecordFailure(), "arn:aws:states:::execution:vidflow-vod:job", out=out)
    said = out.getvalue()
    assert "error: TransientError in RecordFailure: the output bucket throttled" in said or (
        verb is terminal.watch and "error: TransientError: the output bucket throttled" in said
    ), said
    assert "stackTrace" not in said and "app.py" not in said, said


def test_an_execution_is_found_by_name_however_long_ago_it_ran(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        role = "arn:aws:iam::123456789012:role/sfn"
        definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
        for machine in ("vidflow-clip", "vidflow-vod"):
            arn = sfn.create_state_machine(name=machine, definition=definition, roleArn=role)[
                "stateMachineArn"
            ]
        started = sfn.start_execution(stateMachineArn=arn, name="game-0123")["executionArn"]
        monitor = Monitor(sfn, None, "vidflow", "out", None)  # type: ignore[arg-type]
        # GIVEN a job pushed out of the newest executions (by a live stream's, one a segment)
        monkeypatch.setattr(monitor, "executions", lambda status=None, limit=100: [])
        # WHEN the user asks for it by name / THEN it is found, not "no execution"
        assert terminal.resolve(monitor, "game-0123") == started
        assert terminal.resolve(monitor, "game-9999") is None


def test_a_console_port_in_use_stops_the_stack_started_for_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Engine:
        stopped = False
        endpoints = SimpleNamespace(to_dict=lambda: {})

        def stop(self) -> None:
            self.stopped = True

    engine = Engine()
    monitors = iter([None, object()])  # no stack at first; then the one started
    monkeypatch.setattr(watch, "_monitor", lambda args: next(monitors))
    monkeypatch.setattr(watch, "start_engine", lambda *args: engine)
    monkeypatch.setattr(watch, "function_log", lambda port: None)
    monkeypatch.setattr(watch, "stack_ports_free", lambda *args: True)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # WHEN the console's port is taken / THEN the usage error leaves no stack running
        assert main(["console", "--port", str(port)]) == EXIT_USAGE
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
    assert engine.stopped


def test_a_console_starts_no_stack_whose_playback_origin_port_is_taken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Any] = []
    monkeypatch.setattr(watch, "_monitor", lambda args: None)  # no stack answers
    monkeypatch.setattr(watch, "start_engine", lambda *args: started.append(args))
    with socket.socket() as busy:
        # GIVEN the port after the endpoint's taken (where `vidflow up` puts the origin)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        origin = busy.getsockname()[1]
        endpoint = f"http://127.0.0.1:{origin - 1}"
        # WHEN the console would start its own stack there / THEN it says which port is
        # taken and what for, as `vidflow up` does, and starts nothing
        assert main(["console", "--endpoint-url", endpoint]) == EXIT_USAGE
    assert f"port {origin} on 127.0.0.1 (the playback origin) is in use" in (
        capsys.readouterr().err
    )
    assert started == []
