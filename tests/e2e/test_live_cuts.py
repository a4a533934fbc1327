"""Live segments as cheap uploaders cut and deliver them: by the clock, not at the
encoder's keyframes; held through an uplink outage, then sent all at once.

An uploader that cuts an encoder's MPEG-TS every 2 s of wall clock (or every N MB) hands
in segments whose first frames are P/B frames referring to the previous file: each
LiveTranscode decodes its file alone, so those frames cannot be shown. They must never be
lost without a word.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

from tests.asset import strict_parse
from tests.e2e.test_live import Venue, frames_in, shown
from workflow.cli import venue as encoder
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


def _torn(segment: Path, out: Path) -> Path:
    """``segment`` cut, at an MPEG-TS packet, halfway through its last video frame's data:
    an uploader rotating its files every N bytes."""
    data = segment.read_bytes()
    packets = [data[i : i + 188] for i in range(0, len(data), 188)]
    video = [
        n
        for n, p in enumerate(packets)
        if ((p[1] & 0x1F) << 8 | p[2]) == 0x100  # the video's PID, as ffmpeg muxes it
    ]
    last_start = max(n for n in video if packets[n][1] & 0x40)  # its last frame's first
    rest = [n for n in video if n >= last_start]
    assert len(rest) >= 4, "the last frame spans few packets: tear another"
    out.write_bytes(b"".join(packets[: rest[len(rest) // 2]]))
    return out


def test_a_segment_whose_last_frame_is_torn_fails_by_name(engine: Any, tmp_path: Path) -> None:
    # GIVEN a segment cut at a keyframe, then cut short halfway through its last frame's
    # data (the rest would be at the head of the next file)
    segments = _clock_cut(tmp_path / "cut", gop=50)
    torn = _torn(segments[0], tmp_path / "torn.ts")
    venue = Venue(engine, "venue-torn-frame", tmp_path)
    venue.configure(segment_seconds=2, ladder=LADDER, gap_seconds=300)
    # WHEN it is pushed, and the next one whole
    venue.push(0, torn)
    venue.push(1, segments[1])
    venue.wait_for_executions()
    # THEN it fails by name rather than show a frame half concealed, and is a gap
    assert [e.get("error") for e in venue.executions_of(0)] == ["TruncatedInputError"]
    record = json.loads(venue.read(f"failures/live/{venue.stream}/000000000.json") or "{}")
    assert "does not decode whole" in record["cause"], record
    venue.wait(lambda: shown(venue.playlist("180p")) == [(0, True), (1, False)])


def test_an_uplink_outage_then_a_burst_only_grows_the_playlists(
    engine: Any, tmp_path: Path
) -> None:
    # GIVEN a stream of 1 s segments whose 5 and 6 were lost, gaps once 7 had waited
    source = tmp_path / "game.ts"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25:duration=50", "-c:v", "libx264", "-preset",
         "ultrafast", str(source)],
        check=True,
    )  # fmt: skip
    segments = encoder.cut_segments(source, tmp_path / "cut", 1.0, binary=ffmpeg_binary())
    assert len(segments) == 50
    venue = Venue(engine, "venue-outage-burst", tmp_path)
    # (a gap timeout longer than a burst of 43 takes to encode on this machine)
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=120)
    for sequence in (0, 1, 2, 3, 4, 7):
        venue.push(sequence, segments[sequence])
    venue.wait_for_executions()
    venue.sweep_after(121)
    before = [(n, n in (5, 6)) for n in range(8)]
    assert shown(venue.playlist("180p")) == before
    # WHEN the uplink is out for 3 minutes (the sweep sees nothing new) and then the
    # encoder's backlog lands at once, out of order: the two lost ones among 43 new
    venue.sweep_after(180)
    assert shown(venue.playlist("180p")) == before
    burst = [5, 6, *range(8, 49)]
    random.Random(3).shuffle(burst)
    seen: list[list[tuple[int, bool]]] = []
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: venue.push(n, segments[n]), burst))
        # THEN every look at the live playlist only grows it: never a segment reordered,
        # dropped, or a gap turned into a segment
        deadline = time.monotonic() + 240
        while len(seen) == 0 or len(seen[-1]) < 49:
            assert time.monotonic() < deadline, seen[-1]
            seen.append(shown(venue.playlist("180p")))
            time.sleep(0.1)
    for earlier, later in pairwise(seen):
        assert later[: len(earlier)] == earlier, (earlier, later)
    assert seen[-1] == [(n, n in (5, 6)) for n in range(49)]
    venue.wait_for_executions()
    out = venue.download(tmp_path / "live")
    assert strict_parse(out).returncode == 0, strict_parse(out).stderr
    # AND the mended segments are in the recording only
    venue.end()
    assert shown(venue.recording("180p")) == [(n, False) for n in range(49)]
    assert shown(venue.playlist("180p")) == [(n, n in (5, 6)) for n in range(49)]
