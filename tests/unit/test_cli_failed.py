"""The line the CLI prints for an execution that failed."""

from __future__ import annotations

import json

from workflow.cli.common import failed_execution


def test_a_lambda_error_payload_as_cause_prints_its_message_not_its_stack_trace() -> None:
    # GIVEN the cause Step Functions keeps where a task's function failed (RecordFailure
    # itself, when S3 is down): the runtime's whole error payload
    payload = {
        "errorType": "TransientError",
        "errorMessage": "S3 answered 503 SlowDown three times",
        "stackTrace": ['  File "/var/runtime/bootstrap.py", line 113, in invoke\n'],
    }
    line = failed_execution("TransientError", json.dumps(payload))
    # THEN one line: the error's name and its message
    assert line == "error: TransientError: S3 answered 503 SlowDown three times"


def test_a_plain_cause_is_one_line_and_a_missing_name_is_said() -> None:
    assert failed_execution("NotAVideoError", "the file is\n text") == (
        "error: NotAVideoError: the file is text"
    )
    assert failed_execution(None, "timed_out") == "error: ExecutionFailed: timed_out"
