"""``vidflow executions show|history|watch`` given an ARN that names no execution."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from workflow.cli import watch
from workflow.cli.common import EXIT_USAGE
from workflow.cli.main import main


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
