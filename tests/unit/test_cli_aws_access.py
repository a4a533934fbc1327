"""A command against a deployed stack on a machine with no AWS access set up: a usage
error that says what to set up, not an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.aws_env import without_aws_credentials
from workflow.cli.common import EXIT_USAGE
from workflow.cli.main import main


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["executions", "list", "--aws", "--profile", "prod"], "ProfileNotFound"),
        (["events", "--aws", "--stack-name", "vidflow", "--region", "eu-west-1"],
         "NoCredentialsError"),
    ],
)  # fmt: skip
def test_no_aws_access_is_a_usage_error_that_says_what_to_set_up(
    argv: list[str],
    error: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a fresh laptop: no keys, no ~/.aws, no instance to ask
    without_aws_credentials(monkeypatch, tmp_path)
    monkeypatch.delenv("VIDFLOW_DEBUG", raising=False)
    # WHEN a command reads the deployed stack / THEN one line says what to set up
    assert main(argv) == EXIT_USAGE
    said = capsys.readouterr().err.strip()
    assert said.startswith(f"error: {error}: ") and "aws configure" in said, said
    assert "VIDFLOW_DEBUG" not in said
