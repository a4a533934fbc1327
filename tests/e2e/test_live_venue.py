"""A venue's encoder as it really behaves: restarts, changes, drop-outs and an outage.

Real footage pushed out of order and twice, checked after every step: every rung
passes the strict HLS parser, each run of continuous timestamps (and settings) starts
with ``EXT-X-DISCONTINUITY`` and nowhere else, and in the end every run decodes with
every pushed frame.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.asset import read_manifest, read_rendition, strict_parse
from tests.e2e.test_live import LADDER, RUNGS, Venue, frames_in, shown
from tests.e2e.test_packaging import player_site
from workflow.cli import venue as encoder
from workflow.live.paths import StreamPaths
from workflow.local.binaries import ffmpeg_binary
from workflow.media.probe import probe
from workflow.settings import Settings

GAP_SECONDS = 300
OUTAGE = 30  # seconds, 1 s segments: 30 sequence numbers never uploaded


@dataclass(frozen=True)
class Pushed:
    sequence: int
    path: Path
    run: str


def _span(path: Path) -> tuple[float, float]:
    """A segment's first and last instants, as LiveProbe reads them."""
    data = path.read_bytes()
    facts = probe(str(path), head=data[:65536], size=len(data), limits=Settings().limits).facts
    return facts.start_time, facts.start_time + facts.duration


@pytest.fixture(scope="module")
def venue_day(
    real_media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> list[Pushed]:
    """One afternoon at a venue, in 1 s MPEG-TS segments of real footage (gradio's 1080p
    sample): the encoder restarts twice (the second time at 4:3 and 240p), drops to 25
    fps, loses its microphone and gets it back, then loses its uplink for 30 s."""
    clip = real_media["h264_aac_1080p_gop6s"]
    root = tmp_path_factory.mktemp("venue-day")

    def cut(name: str, settings: list[str], count: int, height: int | None = 360) -> list[Path]:
        segments = encoder.cut_segments(
            clip, root / name, 1.0, binary=ffmpeg_binary(), height=height, settings=settings
        )
        return segments[:count]

    def continuing(name: str, settings: list[str], after: Path, later: float = 0.0) -> list[Path]:
        """Two segments whose clock carries on from ``after`` (``later`` s after it)."""
        own_start = _span(cut(f"{name}-probe", settings, 1)[0])[0]
        offset = _span(after)[1] + later - own_start
        return cut(name, [*settings, "-output_ts_offset", f"{offset:.6f}"], 2)

    runs = {
        "first": cut("first", [], 3),
        "restart": cut("restart", ["-ss", "3"], 2),  # its timestamps start again
        "smaller": cut("smaller", ["-vf", "crop=ih*4/3:ih,scale=-2:240"], 2, height=None),
    }
    runs["slower"] = continuing("slower", ["-r", "25"], runs["smaller"][-1])
    runs["mute"] = continuing("mute", ["-an"], runs["slower"][-1])
    runs["unmuted"] = continuing("unmuted", [], runs["mute"][-1])
    runs["outage"] = continuing("outage", [], runs["unmuted"][-1], later=OUTAGE)
    pushed, sequence = [], 0
    for run, segments in runs.items():
        if run == "outage":
            sequence += OUTAGE
        for path in segments:
            pushed.append(Pushed(sequence, path, run))
            sequence += 1
    return pushed


def runs_of(playlist: str) -> list[list[int]]:
    """The sequence numbers of each discontinuity run of a media playlist, gaps left out."""
    runs: list[list[int]] = [[]]
    for line in playlist.splitlines():
        if line == "#EXT-X-DISCONTINUITY":
            runs.append([])
        elif line.startswith("seg_"):
            runs[-1].append(int(line[4:].split(".")[0]))
    gaps = {n for n, gap in shown(playlist) if gap}
    return [[n for n in run if n not in gaps] for run in runs]


def contiguous_pieces(run: list[int]) -> list[list[int]]:
    """A run cut where gaps interrupt it: each piece plays with no hole."""
    pieces: list[list[int]] = []
    for n in run:
        if pieces and pieces[-1][-1] == n - 1:
            pieces[-1].append(n)
        else:
            pieces.append([n])
    return pieces


def run_playlist(folder: Path, rung: str, playlist: str, sequences: list[int]) -> Path:
    """A VOD playlist of just these segments of the rung, to read one run alone."""
    text = "".join(f"#EXTINF:1.0,\nseg_{n:05d}.ts\n" for n in sequences)
    path = folder / rung / f"run-{sequences[0]}.m3u8"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n{text}#EXT-X-ENDLIST\n")
    return path


def unbuffered(report: dict[str, Any], playlist: str) -> list[int]:
    """The segments of ``playlist`` (gaps aside) whose span on the player's timeline the
    player's buffer does not cover, give or take a frame at either end."""
    missing, at, gap = [], 0.0, False
    for line in playlist.splitlines():
        if line == "#EXT-X-GAP":
            gap = True
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].rstrip(","))
        elif line.startswith("seg_"):
            covered = any(
                start <= at + 0.1 and at + duration - 0.1 <= end
                for start, end in report["buffered"]
            )
            if not gap and not covered:
                missing.append(int(line[4:9]))
            at, gap = at + duration, False
    return missing


def watch(browser: Any, url: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Load the player page and wait until ``done`` says so, or it fails (2 min at most)."""
    page = browser.new_page()
    try:
        page.goto(url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            report = page.evaluate("window.report")
            if report["error"] or done(report):
                break
            time.sleep(0.25)
        # The buffered ranges and frame counts are sampled by the page's timer, not on
        # events: wait for a sample taken after ``done`` held (a throttled page may take
        # seconds), not for half a second.
        seen = page.evaluate("window.report.refreshes")
        page.wait_for_function(f"window.report.refreshes > {seen}", timeout=60_000)
        return dict(page.evaluate("window.report"))
    finally:
        page.close()


def test_a_venue_that_restarts_changes_and_drops_out_plays_run_by_run(
    engine: Any, browser: Any, tmp_path: Path, venue_day: list[Pushed]
) -> None:
    venue = Venue(engine, "venue-afternoon", tmp_path)
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=GAP_SECONDS)
    by_sequence = {p.sequence: p for p in venue_day}
    # where the runs start: each restart, the new frame rate, the microphone lost and back
    starts = [
        p.sequence for before, p in pairwise(venue_day) if p.run != before.run and p.run != "outage"
    ]
    assert starts == [3, 5, 7, 9, 11]
    order = encoder.delivery_order(len(venue_day), shuffle=True, duplicates=True, seed=7)
    delivered: set[int] = set()
    for step, index in enumerate(order):
        pushed = venue_day[index]
        # WHEN the segments arrive out of order, some twice
        venue.push(pushed.sequence, pushed.path)
        delivered.add(pushed.sequence)
        venue.wait_for_executions()
        contiguous = 0
        while contiguous in delivered:
            contiguous += 1
        venue.wait(lambda n=contiguous: len(shown(venue.playlist("240p"))) >= n)
        # THEN after every step every rung shows the contiguous run, valid, with a
        # discontinuity before each new run shown and nowhere else
        out = venue.download(venue.workdir / f"step-{step:02d}")
        assert strict_parse(out).returncode == 0, strict_parse(out).stderr
        for rung in RUNGS:
            text = (out / rung / "live.m3u8").read_text()
            assert shown(text) == [(n, False) for n in range(contiguous)], (step, rung, text)
            assert [run[0] for run in runs_of(text)[1:]] == [s for s in starts if s < contiguous]
            assert "#EXT-X-TARGETDURATION:1\n" in text

    # WHEN the uplink's 30 s of segments never come, and the sweep runs after the gap time
    venue.sweep_after(GAP_SECONDS + 1)
    # THEN the stream goes on after 30 gaps, and the clock that ran on through the gaps
    # needs no discontinuity
    last = venue_day[-1].sequence
    out = venue.download(venue.workdir / "after-outage")
    assert strict_parse(out).returncode == 0, strict_parse(out).stderr
    for rung in RUNGS:
        text = (out / rung / "live.m3u8").read_text()
        expected = [(n, n not in by_sequence) for n in range(last + 1)]
        assert shown(text) == expected, (rung, text)
        assert sum(gap for _, gap in expected) == OUTAGE
        assert [run[0] for run in runs_of(text)[1:]] == starts
        # AND each run decodes alone with every frame pushed, in every rung, the picture
        # at the rung's size whatever the venue sent; the audio has no hole where the
        # microphone was lost
        for run in [piece for r in runs_of(text) for piece in contiguous_pieces(r)]:
            played = read_rendition(
                run_playlist(out, rung, text, run), "audio" if rung == "audio" else "video"
            )
            assert played.decode_errors == "" and played.duplicates == 0, (rung, run)
            if rung == "audio":
                pushed_seconds = sum(
                    _span(by_sequence[n].path)[1] - _span(by_sequence[n].path)[0] for n in run
                )
                assert played.end_pts - played.first_pts == pytest.approx(
                    pushed_seconds, abs=0.05
                ), run
                continue
            assert played.frames == sum(frames_in(by_sequence[n].path) for n in run), (rung, run)
            assert (played.width, played.height) == ((640, 360) if rung == "360p" else (426, 240))

    # AND hls.js in Chromium plays the live stream from its first segment across every
    # discontinuity and over the outage to the live edge, every segment's media in the
    # player's buffer at its place on the timeline and every pushed frame handed to the
    # browser once. (Chromium's own counter, totalVideoFrames, is no count of frames: 461
    # for these 440.)
    frames = sum(frames_in(p.path) for p in venue_day)
    live_seconds = sum(float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", text))
    # (waited for until the last segment is in the buffer too: a playhead held at the end
    # of the one before already reaches live_seconds - 1.1 with 1 s segments)
    with player_site(out) as site:
        report = watch(browser, f"{site}/player.html?lib=hls&src=/live.m3u8&start=0&rate=2&level=1",
                       lambda r: r["maxTime"] >= live_seconds - 1.1
                       and r.get("appendedFrames", 0) >= frames
                       and "buffered" in r and not unbuffered(r, text))  # fmt: skip
    assert report["error"] is None and report["live"] is True, report
    assert report["maxTime"] >= live_seconds - 1.1, report
    assert unbuffered(report, text) == [], report
    assert report["appendedFrames"] == frames, report

    # WHEN the encoder says END
    venue.end()
    paths = StreamPaths(venue.stream)
    venue.wait(lambda: venue.read(paths.master_key) is not None)
    out = venue.download(venue.workdir / "ended")
    # THEN the recording keeps the runs and their tags, is a valid asset, and plays in
    # hls.js to its end with every pushed frame
    assert strict_parse(out).returncode == 0, strict_parse(out).stderr
    with player_site(out) as site:
        report = watch(browser, f"{site}/player.html?lib=hls&src=/master.m3u8&rate=2&level=0",
                       lambda r: r["ended"])  # fmt: skip
    assert report["error"] is None and report["ended"] and report["live"] is False, report
    assert unbuffered(report, (out / "240p" / "index.m3u8").read_text()) == [], report
    assert report["appendedFrames"] == frames, report
    for rung in RUNGS:
        recording = (out / rung / "index.m3u8").read_text()
        assert [run[0] for run in runs_of(recording)[1:]] == starts
        assert recording.endswith("#EXT-X-ENDLIST\n")
    manifest = read_manifest(out)
    assert manifest["source"]["gaps"] == OUTAGE
    assert json.loads(json.dumps(manifest))["renditions"][0]["width"] == 640
    assert re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE", recording) is None


def test_a_segment_longer_than_the_target_is_refused_by_name(
    engine: Any, tmp_path: Path, real_media: dict[str, Path]
) -> None:
    # GIVEN a stream of 1 s segments, and an encoder that cuts one of 3 s
    segments = encoder.cut_segments(
        real_media["h264_aac_1080p_gop6s"],
        tmp_path / "cut",
        1.0,
        binary=ffmpeg_binary(),
        height=240,
    )
    long = encoder.cut_segments(
        real_media["h264_aac_1080p_gop6s"],
        tmp_path / "long",
        3.0,
        binary=ffmpeg_binary(),
        height=240,
    )[0]
    venue = Venue(engine, "venue-long-segment", tmp_path)
    venue.configure(segment_seconds=1, ladder="240:400", gap_seconds=GAP_SECONDS)
    venue.push(0, segments[0])
    venue.push(1, long)
    venue.push(2, segments[2])
    venue.wait_for_executions()
    # THEN its execution fails with the named error, and it is a gap once 2 is there: the
    # target duration stays 1 s
    failed = venue.executions_of(1)
    assert [(f["status"], f["error"]) for f in failed] == [("FAILED", "SegmentTooLongError")]
    assert "target duration is 1 s" in failed[0]["cause"]
    venue.wait(lambda: len(shown(venue.playlist("240p"))) == 3)
    text = venue.playlist("240p")
    assert shown(text) == [(0, False), (1, True), (2, False)]
    assert "#EXT-X-TARGETDURATION:1\n" in text


def test_an_encoder_whose_clock_steps_back_a_little_starts_a_run_and_plays_every_frame(
    engine: Any, browser: Any, tmp_path: Path, real_media: dict[str, Path]
) -> None:
    # GIVEN an encoder whose clock steps back ~0.37 s between two segments (within the
    # 0.5 s a segment may start from where the last ended): the two overlap in time
    clip = real_media["h264_aac_1080p_gop6s"]

    def cut(name: str, settings: list[str]) -> list[Path]:
        return encoder.cut_segments(
            clip, tmp_path / name, 1.0, binary=ffmpeg_binary(), height=240, settings=settings
        )[:2]

    first = cut("first", [])
    own_start = _span(cut("probe", ["-ss", "3"])[0])[0]
    offset = _span(first[-1])[1] - 0.37 - own_start
    stepped = cut("stepped", ["-ss", "3", "-output_ts_offset", f"{offset:.6f}"])
    overlap = _span(first[-1])[1] - _span(stepped[0])[0]
    assert 0.1 < overlap < 0.5, overlap
    pushed = [*first, *stepped]
    venue = Venue(engine, "venue-clock-steps-back", tmp_path)
    venue.configure(segment_seconds=1, ladder="240:400", gap_seconds=GAP_SECONDS)
    for sequence, path in enumerate(pushed):
        venue.push(sequence, path)
    venue.wait_for_executions()
    venue.end()
    paths = StreamPaths(venue.stream)
    venue.wait(lambda: venue.read(paths.master_key) is not None)
    out = venue.download(venue.workdir / "ended")
    # THEN every rung marks the step back as a discontinuity, and nowhere else
    assert strict_parse(out).returncode == 0, strict_parse(out).stderr
    for rung in ("240p", "audio"):
        for name in ("live.m3u8", "index.m3u8"):
            text = (out / rung / name).read_text()
            assert runs_of(text) == [[0, 1], [2, 3]], (rung, name, text)
    # AND hls.js plays the recording to its end, every pushed frame handed to the browser
    # and every segment's media at its place on the playlist's timeline
    with player_site(out) as site:
        report = watch(browser, f"{site}/player.html?lib=hls&src=/master.m3u8&rate=2&level=0",
                       lambda r: r["ended"])  # fmt: skip
    assert report["error"] is None and report["ended"], report
    assert unbuffered(report, (out / "240p" / "index.m3u8").read_text()) == [], report
    assert report["appendedFrames"] == sum(frames_in(p) for p in pushed), report
