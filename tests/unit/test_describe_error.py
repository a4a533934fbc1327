"""describe_error: one line a user can read from a Catch result."""

from __future__ import annotations

import json

from workflow.failures import describe_error


def test_a_lambda_error_cause_gives_its_message() -> None:
    # GIVEN a Catch result for a Lambda that raised NotAVideoError
    cause = json.dumps(
        {
            "errorMessage": "the file is text, not a video",
            "errorType": "NotAVideoError",
            "requestId": "6b2a0c1e",
            "stackTrace": ['  File "/var/task/app.py", line 20, in handler\n'],
        }
    )

    # WHEN it is described
    name, line = describe_error({"Error": "NotAVideoError", "Cause": cause})

    # THEN the name is the error and the line is the message, without the trace
    assert name == "NotAVideoError"
    assert line == "the file is text, not a video"


def test_a_nested_step_functions_cause_gives_its_cause() -> None:
    # GIVEN a Map failure whose cause is itself a JSON object with a Cause
    cause = json.dumps(
        {"Cause": "a child execution failed", "Error": "States.ExceedToleratedFailureThreshold"}
    )

    # WHEN it is described
    _, line = describe_error({"Error": "States.ExceedToleratedFailureThreshold", "Cause": cause})

    # THEN the inner cause is the line
    assert line == "a child execution failed"


def test_a_plain_text_cause_is_kept() -> None:
    # GIVEN a cause that is plain text, as Step Functions writes for its own errors
    error = {"Error": "States.Timeout", "Cause": "Task timed out after 900.00 seconds"}

    # WHEN / THEN it is kept as it is
    assert describe_error(error) == ("States.Timeout", "Task timed out after 900.00 seconds")


def test_whitespace_is_collapsed_to_one_line() -> None:
    # GIVEN a message spread over lines with tabs and runs of spaces
    cause = json.dumps(
        {"errorMessage": "ffmpeg failed:\n\n  Invalid data\tfound   when\r\nprocessing input "}
    )

    # WHEN it is described
    _, line = describe_error({"Error": "TranscodeError", "Cause": cause})

    # THEN it is one line with single spaces and no edges
    assert line == "ffmpeg failed: Invalid data found when processing input"
    assert "\n" not in line


def test_a_plain_text_cause_is_collapsed_too() -> None:
    # GIVEN a multi-line plain text cause
    # WHEN / THEN it is one line
    _, line = describe_error({"Error": "X", "Cause": "first\n   second\n"})
    assert line == "first second"


def test_json_that_is_not_an_object_is_kept_as_text() -> None:
    # GIVEN causes that parse as JSON but are not objects
    # WHEN / THEN they are kept as written
    assert describe_error({"Error": "E", "Cause": '"quoted"'})[1] == '"quoted"'
    assert describe_error({"Error": "E", "Cause": "[1, 2]"})[1] == "[1, 2]"


def test_a_missing_error_and_cause_still_give_a_name_and_a_line() -> None:
    # GIVEN an empty Catch result
    # WHEN / THEN the name is Step Functions' unknown error and the line is not empty
    assert describe_error({}) == ("States.Unknown", "States.Unknown")
    # and an error with no cause uses its name as the line
    assert describe_error({"Error": "TransientError", "Cause": ""}) == (
        "TransientError",
        "TransientError",
    )


def test_a_huge_cause_is_cut_to_a_readable_length() -> None:
    # GIVEN a 10 000-character message
    cause = json.dumps({"errorMessage": "x" * 10_000})

    # WHEN it is described
    _, line = describe_error({"Error": "E", "Cause": cause})

    # THEN it is cut, keeping its start
    assert 0 < len(line) <= 500
    assert line == "x" * len(line)
