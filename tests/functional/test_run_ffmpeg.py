"""How an ffmpeg failure is named (the source lost: retry; the input bad: refuse), and how
far a running one says it is."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from workflow.errors import TranscodeError, TranscodeInterruptedError
from workflow.local.binaries import ffmpeg_binary
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


def test_progress_rises_to_the_length_encoded(clip: Any, tmp_path: Path) -> None:
    # GIVEN a 30 s clip
    source = clip("h264_aac_2gop")
    reports: list[float] = []
    # WHEN ffmpeg transcodes it with a progress callback
    run_ffmpeg(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(source),
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(tmp_path / "out.mp4")],
        60,
        reports.append,
    )  # fmt: skip
    # THEN the seconds encoded only rise, and end at the clip's length
    assert reports and reports == sorted(reports)
    assert reports[-1] == pytest.approx(30.0, abs=0.1)


def test_a_failing_progress_callback_does_not_fail_the_encode(tmp_path: Path) -> None:
    # GIVEN a callback that fails every time
    calls: list[float] = []

    def broken(seconds: float) -> None:
        calls.append(seconds)
        raise OSError("the report could not be written")

    # WHEN ffmpeg runs with it, THEN the encode still completes
    out = tmp_path / "out.mp4"
    run_ffmpeg(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264",
         "-preset", "ultrafast", str(out)],
        60,
        broken,
    )  # fmt: skip
    assert calls and out.stat().st_size > 0
