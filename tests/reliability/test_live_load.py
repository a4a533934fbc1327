"""Eight live streams at once, thirty segments each, out of order and duplicated.

The scale model of a Friday night: many venues push at once to one stack. Every
stream's playlists must only ever grow, in order, with nothing lost or shown twice,
and every stream must close into a complete recording.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.asset import read_rendition
from workflow.cli import venue
from workflow.live.paths import StreamPaths
from workflow.local.binaries import ffmpeg_binary

STREAMS = 8
SEGMENTS = 30


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 30 s 360p clip with audio, cut into 1 s segments like a venue encoder."""
    folder = tmp_path_factory.mktemp("load")
    clip = folder / "venue.mp4"
    subprocess.run(
        [
            ffmpeg_binary(), "-nostdin", "-v", "error",
            "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=30:duration={SEGMENTS}",
            "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={SEGMENTS}",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(clip),
        ],
        check=True,
    )  # fmt: skip
    return venue.cut_segments(clip, folder / "segments", 1.0, binary=ffmpeg_binary())


def test_eight_streams_of_thirty_segments_lose_and_misorder_nothing(
    engine: Any, segments: list[Path]
) -> None:
    # GIVEN eight streams, each pushed by its own encoder, out of order with duplicates
    assert len(segments) == SEGMENTS
    s3 = engine.client("s3")
    ep = engine.endpoints
    streams = [f"load-{n}" for n in range(STREAMS)]
    seen: dict[str, list[int]] = {stream: [] for stream in streams}
    problems: list[str] = []
    done = threading.Event()

    def watch() -> None:
        # Every playlist ever read must be 0..k-1, with k never shrinking.
        while not done.is_set():
            for stream in streams:
                try:
                    body = s3.get_object(
                        Bucket=ep.output_bucket, Key=StreamPaths(stream).live_playlist_key("360p")
                    )["Body"].read()
                except s3.exceptions.NoSuchKey:
                    continue
                shown = [int(x[4:9]) for x in body.decode().splitlines() if x.startswith("seg_")]
                if shown != list(range(len(shown))) or "#EXT-X-GAP" in body.decode():
                    problems.append(f"{stream}: {shown}")
                if seen[stream] and len(shown) < seen[stream][-1]:
                    problems.append(f"{stream} shrank to {len(shown)}")
                seen[stream].append(len(shown))
            time.sleep(0.2)

    def push(n: int) -> None:
        stream = streams[n]
        s3.put_object(
            Bucket=ep.ingest_bucket,
            Key=f"live/{stream}/stream.json",
            Body=json.dumps({"segment_seconds": 1, "gap_seconds": 600}).encode(),
        )
        for sequence in venue.delivery_order(SEGMENTS, shuffle=True, duplicates=True, seed=n):
            s3.upload_file(
                str(segments[sequence]), ep.ingest_bucket, f"live/{stream}/{sequence}.ts"
            )
        s3.put_object(Bucket=ep.ingest_bucket, Key=f"live/{stream}/END", Body=b"")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    began = time.monotonic()
    # WHEN they all push at once
    with ThreadPoolExecutor(max_workers=STREAMS) as pool:
        list(pool.map(push, range(STREAMS)))
    deadline = time.monotonic() + 900
    masters = {stream: StreamPaths(stream).master_key for stream in streams}
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=ep.output_bucket, Prefix="live/load-")
        keys = {item["Key"] for item in listed.get("Contents", [])}
        if set(masters.values()) <= keys:
            break
        time.sleep(1)
    elapsed = time.monotonic() - began
    done.set()
    watcher.join()

    # THEN no playlist ever showed a segment out of order, a gap, or shrank
    assert problems == []
    for stream in streams:
        assert seen[stream] and seen[stream][-1] == SEGMENTS, stream
    # AND every stream closed into a complete recording, each segment once, that plays
    for stream in streams:
        prefix = StreamPaths(stream).prefix
        manifest = json.loads(
            s3.get_object(Bucket=ep.output_bucket, Key=f"{prefix}manifest.json")["Body"].read()
        )
        assert manifest["source"]["gaps"] == 0, stream
        assert [r["segments"] for r in manifest["renditions"]] == [SEGMENTS], stream
        assert manifest["audio"]["segments"] == SEGMENTS, stream
    out = Path(str(segments[0].parent.parent)) / "downloaded"
    prefix = StreamPaths(streams[-1]).prefix
    for key in [f"{prefix}360p/index.m3u8"] + [
        f"{prefix}360p/seg_{n:05d}.ts" for n in range(SEGMENTS)
    ]:
        target = out / key
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(ep.output_bucket, key, str(target))
    rung = read_rendition(out / prefix / "360p" / "index.m3u8", "video")
    assert rung.frames == SEGMENTS * 30 and rung.duplicates == 0 and rung.decode_errors == ""
    print(
        f"\nlive load: {STREAMS} streams x {SEGMENTS} segments in {elapsed:.1f} s "
        f"({STREAMS * SEGMENTS / elapsed:.1f} segments/s)"
    )
