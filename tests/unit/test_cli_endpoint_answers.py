"""What ``vidflow`` says when something other than a running stack answers at its
endpoint: a web server (the playback origin, another local service), or a stack that
stops answering mid-command."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from workflow.cli import watch
from workflow.cli.common import EXIT_FAILED, EXIT_USAGE
from workflow.cli.main import main


@pytest.fixture(autouse=True)
def _environment_kept() -> Iterator[None]:
    """The commands point this process's AWS clients at their endpoint (use_local_stack
    sets AWS_ENDPOINT_URL and keys): put the environment back, or every later test's
    clients would call the web server, gone by then."""
    kept = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(kept)


@pytest.fixture
def web_server() -> Iterator[str]:
    """A plain web server on a free port: it answers the AWS APIs' POSTs with 501 pages."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "command", [["executions", "list"], ["events"], ["clip", "game", "--from", "0", "--to", "1"]]
)
def test_a_web_server_at_the_endpoint_is_said_to_be_no_stack(
    web_server: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN a command is pointed at a web server / THEN it is a usage error that says to
    # give `vidflow up`'s endpoint, not an internal ClientError with an HTML page in it
    assert main([*command, "--endpoint-url", web_server]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"error: {web_server} answered HTTP 501, not as a vidflow stack does" in err, err
    assert "<" not in err and "ClientError" not in err, err


def test_a_head_of_a_missing_object_is_not_taken_for_a_web_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # S3 answers a HEAD with no body, so botocore names its errors by status as well
    def missing(args: object) -> None:
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")

    monkeypatch.setattr(watch, "_monitor", missing)
    assert main(["executions", "list"]) != EXIT_USAGE
    assert "not as a vidflow stack does" not in capsys.readouterr().err


def test_a_stack_that_stops_answering_mid_command_is_said_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def gone(args: object) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/")

    monkeypatch.setattr(watch, "_monitor", gone)
    assert main(["executions", "list"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("error: Could not connect to the endpoint URL") and (
        "is the stack still running?" in err
    ), err
