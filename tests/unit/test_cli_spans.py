"""The spans ``vidflow events --since`` and ``vidflow sign --expires`` take, as argparse
reads them: a bad one is a usage error before anything runs."""

from __future__ import annotations

import argparse

import pytest

from workflow.cli.common import span_seconds
from workflow.cli.main import main


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200),
                                               ("7d", 604_800), (" 1.5h ", 5400)])  # fmt: skip
def test_a_span_reads_in_seconds(text: str, seconds: float) -> None:
    assert span_seconds(text) == seconds


@pytest.mark.parametrize("text", ["soon", "2x", "-1h", "", "h"])
def test_a_bad_span_is_refused_by_name(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="a number and s, m, h or d"):
        span_seconds(text)


@pytest.mark.parametrize(
    "argv", [["events", "--since", "yesterday"], ["sign", "game-1", "--expires", "2x"]]
)
def test_a_command_given_a_bad_span_stops_with_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert f"argument {argv[-2]}: takes a number" in capsys.readouterr().err
