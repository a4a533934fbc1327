"""Run ffmpeg jobs and report what they produced."""

from __future__ import annotations

import csv
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workflow.errors import (
    ConfigurationError,
    InputTooLargeError,
    TranscodeError,
    TranscodeInterruptedError,
)
from workflow.tracing import subsegment

_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# ffmpeg failing to reach its source (S3) says nothing about the file: retry those.
_NETWORK_TROUBLE = re.compile(
    r"Connection refused|Connection reset|Connection timed out|timed out|"
    r"Server returned 5\d\d|Network is unreachable|Broken pipe",
    re.IGNORECASE,
)

# A read that failed mid-way (its reconnects too), which ffmpeg treats as the input's end.
_SOURCE_LOST = re.compile(
    r"Error during demuxing: (Input/output error|" + _NETWORK_TROUBLE.pattern + r")",
    re.IGNORECASE,
)

# A picture past the decoder's ``max_pixels`` (a source that grows mid-way past the bound
# its first picture met): the decoder drops each such frame and ffmpeg exits 0.
_TOO_LARGE = re.compile(r"Picture size (\d+x\d+) exceeds specified max pixel count (\d+)")
# ffmpeg opens an encoder at its first frame; one that will not open (a size x264 refuses)
# ends the run with "Nothing was written into output file", as a run that decoded no
# frame does: the encoder's own line says what happened. ("Could not open encoder before
# EOF" is the other case: no frame ever reached it.)
_ENCODER_REFUSED = re.compile(r"Error while opening encoder")
_LOG_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)+")


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


def cpus() -> int:
    """The CPUs this process may run on: on Lambda its environment's vCPUs (up to 6, as
    its memory allows)."""
    return len(os.sched_getaffinity(0))


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


# Called with the seconds of output an ffmpeg has encoded so far.
ProgressCallback = Callable[[float], None]

# ffmpeg writes a block of ``key=value`` lines to stdout about twice a second, each ending
# in ``progress=continue`` (or ``=end``); nothing else of it goes to stdout.
PROGRESS_ARGS = ("-progress", "pipe:1", "-nostats")
_CLOCK = re.compile(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)")
# ffmpeg prints an unset time as one overflowed to about 2**63 us: nothing real lasts a week.
_MOST_SECONDS = 7 * 24 * 3600.0

log = logging.getLogger("vidflow.ffmpeg")


# Signals a process raises on itself when it crashes; the others (SIGKILL, SIGTERM) come
# from outside: the memory limit, the function's end, an operator.
_CRASHES = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT"}


def run_ffmpeg(
    args: Sequence[str], timeout: float, on_progress: ProgressCallback | None = None
) -> str:
    """Run one ffmpeg command (never through a shell) within ``timeout`` seconds; return
    what it logged (its errors: every command here logs at that level).

    With ``on_progress``, ffmpeg reports as it goes and each report's seconds encoded are
    passed on, from another thread; every call has returned by the time this does. The run
    is a subsegment of the invocation's trace.
    """
    with subsegment("ffmpeg"):
        return _run(args, timeout, on_progress)


# What H.264's decoder logs, at the error level the commands run at, of a frame whose data
# is cut short or damaged, before it shows the frame with the missing part concealed
# (guessed from its neighbours) and goes on. (HEVC's logs nothing of it.)
_DAMAGED_FRAME = re.compile(r"error while decoding MB[^\n]*")


def damaged_frame(log: str) -> str | None:
    """What ffmpeg's ``log`` says of the first frame it could not decode whole, if any."""
    found = _DAMAGED_FRAME.search(log)
    return found.group(0).strip() if found else None


def _run(args: Sequence[str], timeout: float, on_progress: ProgressCallback | None) -> str:
    command = list(args)
    if on_progress is not None:
        command[1:1] = PROGRESS_ARGS
    reading, writing = os.pipe()
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=writing, stderr=subprocess.PIPE
        )
    except BaseException:
        os.close(reading)
        raise
    finally:
        os.close(writing)  # ffmpeg has its own: its stdout ends when it does
    reader = threading.Thread(target=_read_progress, args=(reading, on_progress), daemon=True)
    reader.start()
    with process:
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            reader.join()
            raise TranscodeInterruptedError(f"ffmpeg ran past its {timeout:.0f} s limit") from None
    reader.join()
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        if name in _CRASHES:
            # ffmpeg crashed on this input: trying again crashes again.
            raise TranscodeError(f"ffmpeg crashed ({name}) on this input")
        raise TranscodeInterruptedError(f"ffmpeg was killed by {name}")
    if large := _TOO_LARGE.search(stderr.decode("utf-8", "replace")):
        size, limit = large.groups()
        raise InputTooLargeError(
            f"the video changes to {size} mid-way; the limit is {limit} pixels"
        )
    if process.returncode != 0:
        reason = _encoder_refusal(stderr) or last_error_line(stderr)
        if _NETWORK_TROUBLE.search(reason):
            raise TranscodeInterruptedError(f"ffmpeg lost its source: {reason}")
        raise TranscodeError(f"ffmpeg failed: {reason}")
    log = stderr.decode("utf-8", "replace")
    lost = _SOURCE_LOST.search(log)
    if lost:
        # ffmpeg ends its outputs where the reading stopped and exits 0: they would pass
        # for the whole span.
        raise TranscodeInterruptedError(f"ffmpeg lost its source mid-read: {lost.group(1)}")
    return log


def _read_progress(descriptor: int, on_progress: ProgressCallback | None) -> None:
    """Read ffmpeg's stdout to its end, passing on the seconds of each progress report.

    Reading goes on whatever the callback does: ffmpeg stalls once its stdout is full.
    """
    with open(descriptor, encoding="utf-8", errors="replace") as stdout:
        for block in progress_blocks(stdout):
            seconds = encoded_seconds(block)
            if on_progress is None or seconds is None:
                continue
            try:
                on_progress(seconds)
            except Exception:
                # A progress report is only a report: the encode goes on without it.
                log.warning("a progress report failed", exc_info=True)


def progress_blocks(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """The reports in ffmpeg's ``-progress`` output: each block of ``key=value`` lines up
    to its ``progress=`` line, as a dict."""
    block: dict[str, str] = {}
    for line in lines:
        key, equals, value = line.strip().partition("=")
        if not equals:
            continue
        block[key] = value
        if key == "progress":
            yield block
            block = {}


def encoded_seconds(report: Mapping[str, str]) -> float | None:
    """Seconds of output encoded, from one ``-progress`` report; None where it gives none.

    ``out_time_us`` and ``out_time_ms`` are both microseconds (the latter misnamed, and
    the only one older ffmpeg writes); ``out_time`` is ``HH:MM:SS.ffffff``. A time not
    yet known reads ``N/A``, or overflowed.
    """
    micros = report.get("out_time_us") or report.get("out_time_ms") or ""
    if micros.isdigit():
        seconds = int(micros) / 1e6
    elif clock := _CLOCK.fullmatch(report.get("out_time", "")):
        hours, minutes, rest = clock.groups()
        seconds = int(hours) * 3600 + int(minutes) * 60 + float(rest)
    else:
        return None
    return seconds if seconds <= _MOST_SECONDS else None


def _encoder_refusal(stderr: bytes) -> str | None:
    """Why an encoder would not open, from the line its library logged before ffmpeg's
    "Error while opening encoder"; None if every encoder opened."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    for at, line in enumerate(lines):
        if _ENCODER_REFUSED.search(line):
            said = lines[at - 1] if at else line
            said = _URL.sub("<source>", _LOG_PREFIX.sub("", said))
            return f"the encoder would not open: {said[:300]}"
    return None


def last_error_line(stderr: bytes) -> str:
    """The last non-empty line ffmpeg printed, with any URL (and its signature) removed."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return _URL.sub("<source>", lines[-1])[:300] if lines else "no message"


def _listing(directory: Path) -> list[list[str]]:
    """The rows of ``directory/segments.csv`` (name, start, end); none if it is missing."""
    listing = directory / "segments.csv"
    if not listing.exists():
        return []
    with listing.open(newline="") as handle:
        return [row for row in csv.reader(handle) if row]


def listed_end(directory: Path) -> float | None:
    """Where the media ffmpeg wrote to ``directory`` ends on the output timeline: the last
    segment's end in ``segments.csv`` (None if it listed none)."""
    rows = _listing(directory)
    return float(rows[-1][2]) if rows else None


def listed_segments(directory: Path, timeline_start: float, timeline_end: float) -> list[Segment]:
    """The segments ffmpeg listed in ``directory/segments.csv``, with their durations.

    A segment lasts until the next one starts (the last, until ``timeline_end``), so
    the durations add up to the presentation timeline even across holes in a
    variable-rate source. The segment muxer lists starts on the output timeline, except
    that the first reads 0: it is ``timeline_start``. Where a requested boundary has no
    frame after it, ffmpeg writes one segment fewer; the list is the truth.
    """
    rows = _listing(directory)
    if not rows:
        raise TranscodeError(f"ffmpeg wrote no segments for {directory.name}")
    starts = [timeline_start] + [float(row[1]) for row in rows[1:]]
    ends = [*starts[1:], timeline_end]
    if any(end <= start for start, end in zip(starts, ends, strict=True)):
        # Timestamps ffmpeg had to move (a source whose start lies before the output
        # offset can hold): a playlist of these would run backwards.
        raise TranscodeError(
            f"ffmpeg's {directory.name} segments do not follow each other within "
            f"{timeline_start:.6f}-{timeline_end:.6f} s: they start at "
            f"{', '.join(f'{t:.6f}' for t in starts[:6])}"
        )
    return [
        Segment(directory / row[0], round(end - start, 6))
        for row, start, end in zip(rows, starts, ends, strict=True)
    ]
