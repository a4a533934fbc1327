"""A venue encoder, simulated: cut a file into live segments and push them to a stack.

``cut_segments`` encodes a file the way a venue encoder (ffmpeg, OBS) is set up for
vidflow: H.264 and AAC in MPEG-TS, a keyframe at every segment start, continuous
timestamps. ``push`` uploads the segments to ``live/<stream>/`` (in real time if
asked, out of order and with duplicates if asked), then the ``END`` marker, and
measures each segment's latency: from its upload to its presence in every rung's
live playlist.
"""

from __future__ import annotations

import functools
import random
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflow.live.paths import END_MARKER, LIVE_PREFIX, StreamPaths
from workflow.storage import Bucket

_SEGMENT_LINE = re.compile(r"^seg_(\d+)\.ts$")
_VARIANT = re.compile(r"^([^#\s][^/\s]*)/live\.m3u8$", re.MULTILINE)


def cut_segments(
    source: Path,
    out_dir: Path,
    segment_seconds: float,
    *,
    binary: str,
    height: int | None = None,
    settings: Sequence[str] = (),
) -> list[Path]:
    """Encode ``source`` into MPEG-TS segments ``0.ts, 1.ts, ...`` of ``segment_seconds``.

    ``settings`` are more ffmpeg output options, as a venue's encoder might be set
    differently: another picture (``-vf``, in place of ``height``), frame rate (``-r``),
    no audio (``-an``), a clock that does not start at zero (``-output_ts_offset``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    scale = ["-vf", f"scale=-2:{height}"] if height else []
    subprocess.run(
        [
            binary,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(source),
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            *scale,
            *settings,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-force_key_frames",
            f"expr:gte(t,n_forced*{segment_seconds})",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-ac",
            "2",
            "-b:a",
            "128k",
            "-f",
            "segment",
            "-segment_time",
            str(segment_seconds),
            # Without it the muxer misses the first forced keyframe: a double first segment.
            "-segment_time_delta",
            "0.05",
            "-segment_format",
            "mpegts",
            "-reset_timestamps",
            "0",
            str(out_dir / "%d.ts"),
        ],
        check=True,
        capture_output=True,
    )
    return sorted(out_dir.glob("*.ts"), key=lambda p: int(p.stem))


def delivery_order(count: int, *, shuffle: bool, duplicates: bool, seed: int = 0) -> list[int]:
    """The order segments are uploaded in: in sequence, or locally shuffled (each up to
    about two places late, as parallel uploads finish), with some sent twice. Asked for,
    a shuffle moves at least one segment and duplicates send at least one twice."""
    rng = random.Random(seed)
    order = list(range(count))
    if shuffle:
        order.sort(key=lambda n: n + rng.uniform(0, 2.5))
        if count > 1 and order == sorted(order):
            late = rng.randrange(count - 1)
            order[late], order[late + 1] = order[late + 1], order[late]
    if duplicates and count:
        twice = [n for n in range(count) if rng.random() < 0.3] or [rng.randrange(count)]
        for n in twice:
            order.insert(min(len(order), order.index(n) + rng.randint(1, 3)), n)
    return order


@dataclass
class Report:
    """What one simulated stream saw: per-segment latency in seconds, and the outcome.

    ``missing``: segments the closed playlists neither showed nor marked a gap;
    ``problem``: why watching stopped before every segment was accounted for, if it did.
    """

    segment_seconds: float
    latencies: dict[int, float] = field(default_factory=dict)
    ended: bool = False
    gaps: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    problem: str | None = None

    def percentile(self, p: float) -> float:
        values = sorted(self.latencies.values())
        if not values:
            return float("nan")
        return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


def push(
    s3: Any,
    *,
    ingest_bucket: str,
    output_bucket: str,
    stream: str,
    segments: list[Path],
    order: list[int],
    segment_seconds: float,
    realtime: bool,
    end: bool = True,
    timeout: float = 180.0,
    on_segment: Callable[[int, float], None] | None = None,
) -> Report:
    """Upload ``segments`` in ``order`` and watch the live playlists until all are shown.

    ``on_segment(sequence, latency)`` is called as each segment reaches every rung. The
    watch ends when every segment is shown or a gap, when the playlists close, or
    ``timeout`` seconds after the last upload (which also bounds the wait for the
    recording); ``Report.problem`` says why if not every segment was accounted for.
    """
    report = Report(segment_seconds)
    uploaded: dict[int, float] = {}
    done = threading.Event()
    watch = functools.partial(
        _watch_playlists, s3, output_bucket, stream, len(segments), uploaded, report, done,
        on_segment,
    )  # fmt: skip
    watcher = threading.Thread(target=_watch, args=(watch, report), daemon=True)
    watcher.start()
    began = time.monotonic()
    for slot, sequence in enumerate(order):
        if realtime:
            time.sleep(max(0.0, began + slot * segment_seconds - time.monotonic()))
        s3.upload_file(
            str(segments[sequence]), ingest_bucket, f"{LIVE_PREFIX}{stream}/{sequence}.ts"
        )
        uploaded.setdefault(sequence, time.monotonic())
    if end:
        s3.put_object(Bucket=ingest_bucket, Key=f"{LIVE_PREFIX}{stream}/{END_MARKER}", Body=b"")
    deadline = time.monotonic() + timeout
    watcher.join(timeout)
    done.set()
    if watcher.is_alive():
        waiting = sorted(set(range(len(segments))) - set(report.latencies) - set(report.gaps))
        report.problem = (
            f"segments {waiting} were in neither every playlist nor a gap "
            f"{timeout:g} s after the last upload"
        )
    if end:
        report.ended = _wait_for(
            lambda: Bucket(s3, output_bucket).exists(StreamPaths(stream).master_key),
            deadline - time.monotonic(),
        )
    return report


def _watch(watch: Callable[[], None], report: Report) -> None:
    """Run ``watch`` (the playlist poll); a failure is reported, never lost with the thread."""
    try:
        watch()
    except Exception as exc:  # any failure ends the watch; push reports it
        report.problem = f"the playlist watcher failed: {type(exc).__name__}: {exc}"


def _watch_playlists(
    s3: Any,
    bucket: str,
    stream: str,
    count: int,
    uploaded: dict[int, float],
    report: Report,
    done: threading.Event,
    on_segment: Callable[[int, float], None] | None,
) -> None:
    paths = StreamPaths(stream)
    rungs: list[str] = []
    while not done.is_set() and len(report.latencies) + len(report.gaps) < count:
        if not rungs:
            master = _read(s3, bucket, paths.live_master_key)
            rungs = _VARIANT.findall(master or "")
            if master and "audio/live.m3u8" in master:
                rungs.append("audio")
        shown: set[int] | None = None
        gaps: set[int] = set()
        closed = bool(rungs)
        for rung in rungs:
            playlist = _read(s3, bucket, paths.live_playlist_key(rung)) or ""
            present, missing = _sequences(playlist)
            shown = present if shown is None else shown & present
            gaps |= missing
            closed = closed and "#EXT-X-ENDLIST" in playlist.splitlines()
        now = time.monotonic()
        for sequence in sorted(shown or ()):
            if sequence not in report.latencies and sequence in uploaded:
                report.latencies[sequence] = now - uploaded[sequence]
                if on_segment is not None:
                    on_segment(sequence, report.latencies[sequence])
        # A sliding window drops old gaps from the playlist, not from the report.
        report.gaps = sorted(set(report.gaps) | gaps)
        # Closed playlists take nothing more; once every segment is up, what they lack
        # never comes (before then, they may be a reused stream id's).
        if closed and len(uploaded) >= count:
            accounted = set(report.latencies) | set(report.gaps)
            report.missing = [n for n in range(count) if n not in accounted]
            return
        time.sleep(0.1)


def _sequences(playlist: str) -> tuple[set[int], set[int]]:
    """The segments a media playlist shows, and the sequence numbers it marks as gaps."""
    shown: set[int] = set()
    gaps: set[int] = set()
    gap = False
    for line in playlist.splitlines():
        if line == "#EXT-X-GAP":
            gap = True
        match = _SEGMENT_LINE.match(line)
        if match:
            (gaps if gap else shown).add(int(match.group(1)))
            gap = False
    return shown, gaps


def _read(s3: Any, bucket: str, key: str) -> str | None:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return body.decode()


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether ``condition`` holds within ``timeout`` seconds; asked at least once."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True
