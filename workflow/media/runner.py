"""Run ffmpeg jobs and report what they produced."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workflow.errors import ConfigurationError, TranscodeError, TranscodeInterruptedError

_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# ffmpeg failing to reach its source (S3) says nothing about the file: retry those.
_NETWORK_TROUBLE = re.compile(
    r"Connection refused|Connection reset|Connection timed out|timed out|"
    r"Server returned 5\d\d|Network is unreachable|Broken pipe",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Segment:
    """One media segment file and its duration in seconds."""

    path: Path
    duration: float


# Where the Ffmpeg layer puts its binary on Lambda.
LAYER_FFMPEG = Path("/opt/bin/ffmpeg")


def ffmpeg_binary() -> str:
    """The ffmpeg to run: ``$FFMPEG_BINARY`` if set, else the Ffmpeg layer's.

    The local engine sets ``FFMPEG_BINARY`` to the built layer's binary for the functions
    that have the layer, and to nothing for those that do not, as Lambda would.
    """
    configured = os.environ.get("FFMPEG_BINARY")
    if configured:
        return configured
    if LAYER_FFMPEG.exists():
        return str(LAYER_FFMPEG)
    raise ConfigurationError(
        f"no ffmpeg: this function needs the Ffmpeg layer ({LAYER_FFMPEG}) or FFMPEG_BINARY"
    )


# Seconds left for reporting a failure after ffmpeg gives up, and the allowance per
# second of output video: generous (a 6-vCPU Lambda encodes 1080p at ~5x real time per
# rung), so only a stuck or pathological encode reaches it.
REPORTING_RESERVE = 15.0
SECONDS_PER_OUTPUT_SECOND = 10.0


def time_limit(remaining: float, output_seconds: float) -> float:
    """How long one ffmpeg may run: bounded by its work and by the function's time left.

    ``output_seconds`` is the media it must write (chunk length times rungs).
    """
    by_work = 60.0 + SECONDS_PER_OUTPUT_SECOND * output_seconds
    return max(1.0, min(by_work, remaining - REPORTING_RESERVE))


def run_ffmpeg(args: Sequence[str], timeout: float) -> None:
    """Run one ffmpeg command (never through a shell) within ``timeout`` seconds."""
    with subprocess.Popen(
        list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise TranscodeInterruptedError(f"ffmpeg ran past its {timeout:.0f} s limit") from None
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        raise TranscodeInterruptedError(f"ffmpeg was killed by {name}")
    if process.returncode != 0:
        reason = last_error_line(stderr)
        if _NETWORK_TROUBLE.search(reason):
            raise TranscodeInterruptedError(f"ffmpeg lost its source: {reason}")
        raise TranscodeError(f"ffmpeg failed: {reason}")


def last_error_line(stderr: bytes) -> str:
    """The last non-empty line ffmpeg printed, with any URL (and its signature) removed."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return _URL.sub("<source>", lines[-1])[:300] if lines else "no message"


def listed_segments(directory: Path, timeline_start: float, timeline_end: float) -> list[Segment]:
    """The segments ffmpeg listed in ``directory/segments.csv``, with their durations.

    A segment lasts until the next one starts (the last, until ``timeline_end``), so
    the durations add up to the presentation timeline even across holes in a
    variable-rate source. The segment muxer lists starts on the output timeline, except
    that the first reads 0: it is ``timeline_start``. Where a requested boundary has no
    frame after it, ffmpeg writes one segment fewer; the list is the truth.
    """
    listing = directory / "segments.csv"
    rows = []
    if listing.exists():
        with listing.open(newline="") as handle:
            rows = [row for row in csv.reader(handle) if row]
    if not rows:
        raise TranscodeError(f"ffmpeg wrote no segments for {directory.name}")
    starts = [timeline_start] + [float(row[1]) for row in rows[1:]]
    ends = [*starts[1:], timeline_end]
    return [
        Segment(directory / row[0], round(end - start, 6))
        for row, start, end in zip(rows, starts, ends, strict=True)
    ]
