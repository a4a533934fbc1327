"""Live segments as cheap uploaders cut them: by the clock, not at the encoder's keyframes.

An uploader that cuts an encoder's MPEG-TS every 2 s of wall clock (or every N MB) hands
in segments whose first frames are P/B frames referring to the previous file: each
LiveTranscode decodes its file alone, so those frames cannot be shown. They must never be
lost without a word.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.test_live import Venue, frames_in, shown
from workflow.local.binaries import ffmpeg_binary

LADDER = "180:300"


def _clock_cut(out: Path, gop: int) -> list[Path]:
    """A 25 fps 180p stream with a keyframe every ``gop`` frames, cut into 2 s MPEG-TS
    files by time alone (``break_non_keyframes``), as an uploader that ignores the
    encoder's keyframes cuts it."""
    out.mkdir(parents=True, exist_ok=True)
    whole = out / "encoder.ts"
    binary = ffmpeg_binary()
    subprocess.run(
        [binary, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25:duration=8", "-f", "lavfi", "-i", "sine=duration=8",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), "-keyint_min", str(gop),
         "-sc_threshold", "0", "-c:a", "aac", "-f", "mpegts", str(whole)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [binary, "-nostdin", "-loglevel", "error", "-i", str(whole), "-c", "copy", "-f",
         "segment", "-segment_time", "2", "-break_non_keyframes", "1", "-segment_format",
         "mpegts", "-reset_timestamps", "0", str(out / "%d.ts")],
        check=True,
    )  # fmt: skip
    return sorted(out.glob("[0-9]*.ts"), key=lambda p: int(p.stem))


def test_segments_cut_between_keyframes_lose_no_frame_unsaid(engine: Any, tmp_path: Path) -> None:
    # GIVEN an encoder keying every 2.4 s whose uploader cuts its stream every 2 s:
    # segments 1, 2 and 3 start 0.4, 0.8 and 1.2 s before their first keyframe
    segments = _clock_cut(tmp_path / "cut", gop=60)
    venue = Venue(engine, "venue-clock-cut", tmp_path)
    venue.configure(segment_seconds=2, ladder=LADDER, gap_seconds=300)
    # WHEN every segment is pushed, in order
    for sequence, path in enumerate(segments):
        venue.push(sequence, path)
    venue.wait_for_executions()
    # THEN each segment that would lose frames fails by name, saying why, and is recorded
    assert len(segments) == 4
    for sequence in (1, 2, 3):
        assert [e.get("error") for e in venue.executions_of(sequence)] == [
            "SegmentStartsMidGopError"
        ], sequence
        record = json.loads(venue.read(f"failures/live/{venue.stream}/{sequence:09d}.json") or "{}")
        assert record["error"] == "SegmentStartsMidGopError", sequence
        assert "before its first keyframe" in record["cause"], record
    # AND the one cut at a keyframe plays every frame; no segment lost a frame unsaid
    out = venue.download(tmp_path / "out")
    entries = shown((out / "180p" / "live.m3u8").read_text())
    assert entries[0] == (0, False), entries
    for sequence, gap in entries:
        if not gap:
            published = frames_in(out / "180p" / f"seg_{sequence:05d}.ts")
            assert published == frames_in(segments[sequence]), sequence
