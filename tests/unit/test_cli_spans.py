"""The spans ``vidflow events --since`` and ``vidflow sign --expires`` take, as argparse
reads them: a bad one is a usage error before anything runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from workflow.cli.common import span_seconds
from workflow.cli.main import main

# A job id as jobs.job_id makes them.
JOB = "game-0123456789abcdef"


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200),
                                               ("7d", 604_800), (" 1.5h ", 5400)])  # fmt: skip
def test_a_span_reads_in_seconds(text: str, seconds: float) -> None:
    assert span_seconds(text) == seconds


@pytest.mark.parametrize("text", ["soon", "2x", "-1h", "", "h"])
def test_a_bad_span_is_refused_by_name(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="a number and s, m, h or d"):
        span_seconds(text)


@pytest.mark.parametrize(
    "argv", [["events", "--since", "yesterday"], ["sign", JOB, "--expires", "2x"]]
)
def test_a_command_given_a_bad_span_stops_with_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert f"argument {argv[-2]}: takes a number" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["sign", JOB, "--expires", "0s"], "more than 0 s"),  # a token born expired
        (["events", "--since", "99999999999999d"], "at most 3650d"),
        (["clip", "g", "--from", "0", "--to", "1", "--timeout", "nan"], "above 0"),
        (["clip", "g", "--from", "0", "--to", "1", "--timeout", "-1"], "above 0"),
        (["live", "simulate", "x.mp4", "--timeout", "0"], "above 0"),
        (["live", "simulate", "x.mp4", "--height", "3"], "even height from 32"),
        (["live", "simulate", "x.mp4", "--height", "0"], "even height from 32"),
        (["live", "simulate", "x.mp4", "--height", "99999"], "even height from 32"),
        (["up", "--port", "65535"], "1 to 65534"),  # the origin takes the next port
        (["console", "--port", "70000"], "1 to 65535"),
        (["events", "--type", "job published"], "invalid choice"),
        # a token for a name no asset can have would open nothing
        (["sign", "no-such-job"], "is no job id"),
        (["sign", "outputs/game-0123456789abcdef"], "is no job id"),
        (["sign", "live.a/b"], "a stream's name is 1 to 48"),
        (["sign", "live."], "a stream's name is 1 to 48"),
        (["sign", JOB, "--playback-url", "https://cdn.example/?v=1"], "no query or fragment"),
        (["sign", JOB, "--playback-url", "cdn.example"], "http(s) URL"),
        # a URL urllib cannot split, or whose port no socket has, said as the rest are
        (["sign", JOB, "--playback-url", "http://[::1"], "http(s) URL"),
        (["sign", JOB, "--playback-url", "http://cdn.example:99999/"], "http(s) URL"),
        # a key id put in the query as it is: cut short, or adding a parameter of its own
        (["sign", JOB, "--cdn-key-id", "K2JCJ MDE&token=x"], "CdnPublicKeyId"),
        (["sign", JOB, "--cdn-key-id", ""], "CdnPublicKeyId"),
    ],
)
def test_a_value_no_command_could_use_is_a_usage_error_before_anything_runs(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err


def test_a_file_ffmpeg_cannot_cut_is_said_by_ffmpeg_before_any_stack_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow.cli import live

    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n")
    started: list[object] = []
    monkeypatch.setattr(live, "_live_buckets", lambda *a: started.append(a) or ("i", "o"))
    # WHEN a venue is simulated from a text file / THEN it is a usage error in ffmpeg's
    # words, not the CalledProcessError of an internal fault, and no stack was started
    assert main(["live", "simulate", str(notes), "--stream", "s"]) == 2
    err = capsys.readouterr().err
    assert f"error: cannot cut {notes} into segments: " in err, err
    assert "CalledProcessError" not in err and "Invalid data" in err, err
    assert started == []


@pytest.mark.parametrize("command", [["up"], ["demo"]])
def test_a_parameter_without_a_value_is_a_usage_error(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN a parameter is given without =VALUE / THEN it is a usage error (exit 2, as
    # every other), said before any stack starts
    assert main([*command, "--parameter", "Ladder"]) == 2
    assert capsys.readouterr().err == "error: --parameter takes NAME=VALUE, got 'Ladder'\n"


def test_a_console_that_would_start_a_stack_past_the_last_port_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN no stack at port 65535: the console starts one there, whose playback origin
    # takes the next port, of which there is none (an OverflowError from bind before)
    # WHEN / THEN it is a usage error that names the port, before anything starts
    assert main(["console", "--endpoint-url", "http://127.0.0.1:65535", "--port", "45999"]) == 2
    assert "from 1 to 65534" in capsys.readouterr().err


def test_up_on_a_port_this_user_may_not_bind_says_so_not_in_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno
    import socket

    from workflow.cli import run

    # GIVEN a port below 1024, which the kernel refuses to a user that is not root
    def refused(self: socket.socket, address: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refused)
    # WHEN `vidflow up --port 80` checks it / THEN it says why, before anything starts
    assert run.serve(80, {}) == 2
    assert "port 80 on 127.0.0.1 (the endpoint) may not be bound by this user" in (
        capsys.readouterr().err
    )


def test_demo_refuses_an_out_that_is_a_file_before_it_makes_its_clip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    # GIVEN --out naming a file, and an ffmpeg that must not be run
    taken = tmp_path / "clip.mp4"
    taken.write_bytes(b"x")

    def no_clip(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo clip was made (17 s) before --out was refused")

    monkeypatch.setattr(subprocess, "run", no_clip)
    # WHEN / THEN it is refused as a file, at once
    assert main(["demo", "--out", str(taken)]) == 2
    assert f"--out {taken} is a file" in capsys.readouterr().err
