"""How an ffmpeg failure is named: the source lost (retry) or the input bad (refuse)."""

from __future__ import annotations

import sys

import pytest

from workflow.errors import TranscodeError, TranscodeInterruptedError
from workflow.media.runner import run_ffmpeg

SIGNED = "https://bucket.s3.amazonaws.com/x.mp4?X-Amz-Signature=abc"


def pretend_ffmpeg(stderr: str) -> list[str]:
    """A process that prints what a failing ffmpeg prints and exits 1."""
    return [sys.executable, "-c", f"import sys; sys.stderr.write({stderr!r}); sys.exit(1)"]


def test_losing_the_source_is_retried() -> None:
    with pytest.raises(TranscodeInterruptedError, match="lost its source"):
        run_ffmpeg(pretend_ffmpeg(f"{SIGNED}: Connection reset by peer\n"), 30)


def test_bad_input_is_refused_and_the_signed_url_is_not_repeated() -> None:
    with pytest.raises(TranscodeError, match="Invalid data") as refused:
        run_ffmpeg(pretend_ffmpeg(f"{SIGNED}: Invalid data found when processing input\n"), 30)
    assert "Signature" not in str(refused.value)


def test_a_run_past_its_limit_is_interrupted() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(TranscodeInterruptedError, match="past its 1 s limit"):
        run_ffmpeg(sleeper, 1)
