"""A clip's images, made with real ffmpeg from its top rung's segments, across the
discontinuities a clip keeps."""

from __future__ import annotations

import subprocess
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from workflow.live import clip
from workflow.live.config import stream_config
from workflow.live.paths import ClipPaths
from workflow.local.binaries import ffmpeg_binary
from workflow.settings import Settings
from workflow.storage import Bucket

COLOURS = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}


def _segment(path: Path, colour: str, clock: float) -> Path:
    """2 s of one colour at 640x360, its first frame at ``clock`` s (MPEG-TS)."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", f"color=c={colour}:s=640x360:r=30:d=2",
         "-c:v", "libx264", "-g", "60", "-pix_fmt", "yuv420p",
         "-output_ts_offset", str(clock), "-f", "mpegts", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _colour(image: Path) -> str:
    """The colour an image shows, of ``COLOURS``: its average pixel's nearest."""
    pixel = subprocess.run(
        [ffmpeg_binary(), "-loglevel", "error", "-i", str(image),
         "-vf", "scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return min(
        COLOURS, key=lambda c: sum(abs(a - b) for a, b in zip(COLOURS[c], pixel, strict=True))
    )


@pytest.mark.parametrize(
    "clocks",
    [
        (10, 12, 0, 2),  # the encoder restarted: its clock starts again
        (10, 12, 500, 502),  # its clock jumped (an outage that skipped no number)
    ],
)
def test_a_clips_thumbnails_show_its_frames_across_a_discontinuity(
    clocks: tuple[float, ...], tmp_path: Path
) -> None:
    # GIVEN a clip of four 2 s segments, red and lime, then blue and yellow after a
    # discontinuity, in its top rung
    config = stream_config({}, 640, 360, 30.0, False, Settings(ladder="360:800"))
    event = {"request": {"etag": "abc"}}
    names, paths = clip._segment_names(event), ClipPaths("game", "span")
    cuts = [clip.Cut(n, 2.0, 0.0, 2.0, discontinuity=n == 2) for n in range(4)]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="out")
        output = Bucket(s3, "out")
        top = config.renditions[0].name
        for n, (colour, clock) in enumerate(zip(COLOURS, clocks, strict=True)):
            made = _segment(tmp_path / f"{n}.ts", colour, clock)
            output.put_bytes(f"{paths.prefix}{top}/{names(n)}", made.read_bytes())
        work = tmp_path / "work"
        work.mkdir()
        # WHEN its images are made
        summary, files = clip._images(
            paths, cuts, config, output, work, lambda: 120.0, names, clip._files_tag(event)
        )
    # THEN its thumbnails, every 2 s of the clip, show red, lime, blue, yellow (from bytes
    # joined end to end: red, then yellow or lime three times, the frames after the
    # discontinuity never), and its poster the first
    thumbnails = sorted(k for k in files if "/thumbnails/" in k and k.endswith(".jpg"))
    assert summary["thumbnails"]["count"] == len(thumbnails) == 4
    assert [_colour(files[k]) for k in thumbnails] == list(COLOURS)
    assert _colour(files[f"{paths.prefix}{summary['poster']}"]) == "red"
