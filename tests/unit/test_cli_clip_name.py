"""`vidflow clip` names the clip from its span where the user gives no name."""

from __future__ import annotations

import argparse

import pytest

from workflow.cli.clip import default_name, make_clip
from workflow.cli.common import EXIT_USAGE


def test_a_span_late_in_a_long_stream_whose_default_name_is_too_long_says_to_give_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a span 11 days into a stream (a 24/7 channel), and no --name
    args = argparse.Namespace(
        stream="game", name=None, start=1_000_000.0, end=1_000_010.0,
        endpoint_url="http://127.0.0.1:9",
    )  # fmt: skip
    assert len(default_name(args.start, args.end)) > 22
    # THEN it is refused before any stack is asked, saying what to do
    assert make_clip(args) == EXIT_USAGE
    assert "t1000000_000-1000010_000, is longer: give --name" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stream", "name", "said"),
    [
        ("bad stream", None, "the stream id 'bad stream' is not one"),
        ("bad stream", "dunk", "the stream id 'bad stream' is not one"),
        ("game", "a b", "the clip name 'a b' is not one"),
    ],
)
def test_a_stream_id_or_clip_name_that_is_none_is_the_one_named(
    stream: str, name: str | None, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a stream id or a clip name that cannot be one (a stream id with a space was
    # said to be a default clip name too long, and --name the way out)
    args = argparse.Namespace(
        stream=stream, name=name, start=0.0, end=1.0, endpoint_url="http://127.0.0.1:9"
    )
    # WHEN / THEN the usage error names the one that is wrong
    assert make_clip(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert said in err and "give --name" not in err
