"""Clips of a live stream: frame-accurate at both ends, the rest copied, while it is live."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.asset import read_manifest, strict_parse
from tests.e2e.test_live import LADDER, Venue, real_segments, shown
from tests.e2e.test_live_venue import watch
from tests.e2e.test_packaging import player_site
from tests.outcomes import check, logged
from workflow.live.paths import ClipPaths

Picture = np.ndarray[Any, Any]
__all__ = ["real_segments"]  # the fixture: real footage in 1 s segments


def pictures(segment: Path) -> list[tuple[float, Picture]]:
    """Every frame of a TS segment: its time after the segment's first frame, and a small
    grey picture of it to tell frames apart."""
    with av.open(str(segment)) as container:
        frames = [
            (float(f.pts * f.time_base), f.reformat(64, 36, "gray").to_ndarray().astype(float))
            for f in container.decode(video=0)
        ]
    first = min(t for t, _ in frames)
    return sorted(((t - first, p) for t, p in frames), key=lambda tp: tp[0])


def expected_frames(segments: list[Path], playlist: str, start: float, end: float) -> list[Picture]:
    """The pushed frames whose stream time is in ``[start, end)``: each segment's frames
    from its place on the timeline, where the live ``playlist`` puts it."""
    durations = [float(d) for d in re.findall(r"#EXTINF:([0-9.]+),", playlist)]
    chosen, position = [], 0.0
    for path, duration in zip(segments, durations, strict=True):
        chosen += [p for t, p in pictures(path) if start - 1e-3 <= position + t < end - 1e-3]
        position += duration
    return chosen


def closest(picture: Picture, candidates: list[Picture]) -> int:
    return int(np.argmin([np.abs(picture - c).mean() for c in candidates]))


def ask_for_clip(engine: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflow.cli.main", "clip", *args,
         "--endpoint-url", engine.endpoints.endpoint_url],
        capture_output=True, text=True, timeout=360,  # past the CLI's own 300 s
    )  # fmt: skip


def test_a_clip_from_mid_segment_has_exactly_the_sources_frames_and_plays(
    engine: Any, browser: Any, tmp_path: Path, real_segments: list[Path]
) -> None:
    # GIVEN a live stream of real footage in 1 s segments whose encoder restarted once
    venue = Venue(engine, "clip-game", tmp_path)
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    pushed = real_segments + real_segments
    for sequence, path in enumerate(pushed):
        venue.push(sequence, path)
    venue.wait_for_executions()
    venue.wait(lambda: len(shown(venue.playlist("240p"))) == len(pushed))
    # WHEN, while it is still live, a 7.3 s clip from 2.5 s (mid-segment) is asked for
    done = ask_for_clip(engine, venue.stream, "--from", "2.5", "--to", "9.8", "--name", "dunk")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # THEN only the two segments it cuts into were re-encoded, across the restart
    assert result["segments"] == 8 and result["recut"] == 2, result
    paths = ClipPaths(venue.stream, "dunk")
    clip_dir = tmp_path / "clip"
    listing = venue.s3.list_objects_v2(Bucket=engine.endpoints.output_bucket, Prefix=paths.prefix)
    for item in listing["Contents"]:
        target = clip_dir / item["Key"][len(paths.prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        venue.s3.download_file(engine.endpoints.output_bucket, item["Key"], str(target))
    # AND each rung has exactly the pushed frames of [2.5, 9.8): as many, and the first
    # and last the very frames the source has there
    expected = expected_frames(pushed, venue.playlist("360p"), 2.5, 9.8)
    assert len(expected) == 219  # 7.3 s at 30 fps
    named = (clip_dir / "master.m3u8").read_text()
    for rung in ("360p", "240p"):
        # (each version of a clip has playlists of its own, which its master names)
        uri = next(line for line in named.splitlines() if line.startswith(f"{rung}/"))
        playlist = (clip_dir / uri).read_text()
        assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1
        segments = [
            clip_dir / rung / line for line in playlist.splitlines() if line.startswith("seg_")
        ]
        frames = [p for segment in segments for _, p in pictures(segment)]
        assert len(frames) == len(expected), rung
        if rung == "360p":  # the source's size: its pictures compare directly
            assert closest(frames[0], expected[:5]) == 0
            assert closest(frames[-1], expected[-5:]) == 4
    # AND it is an asset of an upload's shape, images included, that plays to its end
    assert strict_parse(clip_dir).returncode == 0, strict_parse(clip_dir).stderr
    manifest = read_manifest(clip_dir)
    assert manifest["duration"] == pytest.approx(7.3, abs=1e-3)
    assert manifest["images"]["thumbnails"]["count"] == 4
    # (each version of a clip has images of its own, which its manifest names)
    assert manifest["images"]["poster"].startswith("images/")
    assert (clip_dir / manifest["images"]["poster"]).stat().st_size > 0
    with player_site(clip_dir) as site:
        report = watch(browser, f"{site}/player.html?lib=hls&src=/master.m3u8&rate=2&level=0",
                       lambda r: r["ended"])  # fmt: skip
    assert report["error"] is None and report["ended"], report
    assert report["appendedFrames"] == len(expected), report
    # AND the clip was announced once, with URLs that name its objects
    [event] = [e for e in logged(engine, clip="dunk") if e["detail-type"] == "Clip Published"]
    detail = check(event)["detail"]
    assert (detail["stream"], detail["from"], detail["to"]) == (venue.stream, 2.5, 9.8)
    assert detail["urls"]["master"].endswith(f"{paths.prefix}master.m3u8")
    assert (clip_dir / "master.m3u8").is_file() and (clip_dir / "manifest.json").is_file()


def three_segments_published(
    engine: Any, stream: str, tmp_path: Path, real_segments: list[Path]
) -> Venue:
    """A stream of 1 s segments whose first three are published."""
    venue = Venue(engine, stream, tmp_path)
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    for sequence, path in enumerate(real_segments[:3]):
        venue.push(sequence, path)
    venue.wait_for_executions()
    venue.wait(lambda: len(shown(venue.playlist("240p"))) == 3)
    return venue


def test_a_clip_past_the_live_edge_fails_by_name_and_publishes_nothing(
    engine: Any, tmp_path: Path, real_segments: list[Path]
) -> None:
    venue = three_segments_published(engine, "clip-early", tmp_path, real_segments)
    # WHEN a clip asks for more than is published
    done = ask_for_clip(engine, venue.stream, "--from", "1", "--to", "5", "--name", "later")
    # THEN it fails with the named error, says why, and publishes no asset
    assert done.returncode == 1
    assert "ClipRangeError" in done.stderr and "3.000 s of the stream is published" in done.stderr
    assert "Traceback" not in done.stderr
    listing = venue.s3.list_objects_v2(
        Bucket=engine.endpoints.output_bucket, Prefix=ClipPaths(venue.stream, "later").prefix
    )
    assert listing.get("KeyCount", 0) == 0
    record = json.loads(venue.read(ClipPaths(venue.stream, "later").failure_key) or "{}")
    assert record["error"] == "ClipRangeError"
    # AND its failure was announced once, by name
    [event] = [check(e) for e in logged(engine, stream=venue.stream, clip="later")]
    assert (event["detail-type"], event["detail"]["error"]) == ("Clip Failed", "ClipRangeError")
    # AND a request that is not one is refused before anything is asked
    bad = ask_for_clip(engine, venue.stream, "--from", "5", "--to", "1")
    assert bad.returncode == 2 and "clip runs from" in bad.stderr


def test_a_span_asked_for_again_after_another_is_published_again(
    engine: Any, tmp_path: Path, real_segments: list[Path]
) -> None:
    venue = three_segments_published(engine, "clip-again", tmp_path, real_segments)
    paths = ClipPaths(venue.stream, "replay")
    # GIVEN a clip asked for with one span, then another under the same name
    for start, end in (("0", "2"), ("1", "3"), ("0", "2")):
        # WHEN the first span is asked for again (the same body, so the same ETag)
        done = ask_for_clip(engine, venue.stream, "--from", start, "--to", end, "--name", "replay")
        assert done.returncode == 0, done.stderr
    # THEN the clip is that span again, and its master names the request that wrote it
    manifest = json.loads(venue.read(f"{paths.prefix}manifest.json") or "{}")
    assert (manifest["source"]["from"], manifest["source"]["to"]) == (0, 2)
    head = venue.s3.head_object(
        Bucket=engine.endpoints.output_bucket, Key=f"{paths.prefix}master.m3u8"
    )
    assert head["Metadata"]["vidflow-request"]
    # AND each of the three was announced
    published = [
        e for e in logged(engine, stream=venue.stream) if e["detail-type"] == "Clip Published"
    ]
    assert sorted(check(e)["detail"]["from"] for e in published) == [0, 0, 1]
