"""``--endpoint-url``, as argparse reads it: one no client could reach is a usage error
before anything runs, not a ValueError from deep in a command (exit status 3)."""

from __future__ import annotations

import argparse

import pytest

from workflow.cli.common import target_options
from workflow.cli.main import main

JOB = "game-0123456789abcdef"
COMMANDS = [
    ["executions", "list"],
    ["events"],
    ["sign", JOB],
    ["redrive"],
    ["clip", "s", "--from", "1", "--to", "2"],
    ["console"],
    ["live", "simulate", "x.mp4", "--stream", "s"],
    ["invoke", "probe", "--event", "events/probe.json"],
]


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "127.0.0.1:4566", ""])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: "-".join(command[:2]))
def test_an_endpoint_url_no_client_could_reach_is_a_usage_error(
    command: list[str], url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--endpoint-url", url])
    assert stopped.value.code == 2
    assert "argument --endpoint-url: takes an http:// or https:// URL" in capsys.readouterr().err


def test_an_empty_endpoint_variable_is_the_default_not_a_bad_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a shell that exports AWS_ENDPOINT_URL empty (`export AWS_ENDPOINT_URL=`)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    parser = argparse.ArgumentParser()
    target_options(parser)
    # WHEN a command is given no --endpoint-url
    # THEN it runs against vidflow up's default, not refused for a URL nobody gave
    assert parser.parse_args([]).endpoint_url == "http://127.0.0.1:4566"
