"""A venue whose MPEG-TS clock passes its 33-bit wrap (every 26.5 h) mid-stream.

ffmpeg reads a segment whose clock begins within 60 s of the wrap as starting before
zero, and the segments before and after it as near 26.5 h and near 0: one stream, three
readings of its clock. Every rung's segments must still carry one clock that runs on.
"""

from __future__ import annotations

import subprocess
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import pytest

from tests.asset import read_rendition, strict_parse
from tests.e2e.test_live import Venue, frames_in, shown
from workflow.cli import venue as encoder
from workflow.local.binaries import ffmpeg_binary
from workflow.media import encode

WRAP = 2**33  # 90 kHz ticks
SECONDS_BEFORE_WRAP = 63
FRAME_TICKS = 90_000 // 30


def first_tick_and_duration(path: Path) -> tuple[int, float]:
    """A segment's first 90 kHz video timestamp as written (modulo the wrap), and its
    length."""
    with av.open(str(path)) as container:
        ticks = [p.pts for p in container.demux(container.streams.video[0]) if p.pts is not None]
    return min(ticks) % WRAP, (max(ticks) - min(ticks) + FRAME_TICKS) / 90_000


def test_a_clock_that_wraps_mid_stream_runs_on_in_every_rung(
    real_media: dict[str, Path], engine: Any, tmp_path: Path
) -> None:
    venue = Venue(engine, "venue-clock-wrap", tmp_path)
    # GIVEN real footage looped to 70 s, cut into 1 s segments by an encoder whose clock
    # begins 63 s before the wrap
    looped = tmp_path / "looped.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-stream_loop", "9", "-i"]
        + [str(real_media["h264_aac_1080p_gop6s"]), "-c", "copy", str(looped)],
        check=True,
    )
    offset = encode.MPEGTS_WRAP - SECONDS_BEFORE_WRAP
    segments = encoder.cut_segments(
        looped, tmp_path / "cut", 1.0, binary=ffmpeg_binary(), height=180,
        settings=["-r", "30", "-output_ts_offset", f"{offset:.6f}"],
    )  # fmt: skip
    assert len(segments) > SECONDS_BEFORE_WRAP + 3
    # WHEN they are pushed and the stream ends
    venue.configure(segment_seconds=1, ladder="180:300", gap_seconds=300)
    for sequence, path in enumerate(segments):
        venue.push(sequence, path)
    venue.wait_for_executions()
    assert venue.failures == []
    out = venue.download(tmp_path / "out")

    # THEN every rung shows every segment, in order, none a gap (a discontinuity where
    # ffmpeg's reading of the clock jumps is allowed, once)
    for rung in ("180p", "audio"):
        playlist = (out / rung / "live.m3u8").read_text()
        assert shown(playlist) == [(n, False) for n in range(len(segments))], rung
        assert playlist.count("#EXT-X-DISCONTINUITY") <= 1, rung
    # AND each video segment's clock carries on from where the one before it ended,
    # through the wrap, as the encoder's did
    names = [f"seg_{n:05d}.ts" for n in range(len(segments))]
    ticks = [first_tick_and_duration(out / "180p" / name) for name in names]
    for n, ((tick, length), (following, _)) in enumerate(pairwise(ticks)):
        carried = (following - tick) % WRAP / 90_000
        assert carried == pytest.approx(length, abs=0.01), (n, carried, length)
    # AND both tracks, read as one, decode with every pushed frame, none on another's time
    video = read_rendition(out / "180p" / "live.m3u8", "video")
    assert video.frames == sum(frames_in(s) for s in segments)
    audio = read_rendition(out / "audio" / "live.m3u8", "audio")
    for track in (video, audio):
        assert track.decode_errors == "" and track.duplicates == 0
        assert track.largest_gap < 0.1
    assert strict_parse(out).returncode == 0
