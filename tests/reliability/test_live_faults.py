"""Faults in every live step are retried, and each segment is still published exactly once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.reliability.test_faults import arm
from workflow.live.paths import StreamPaths

LIVE_SURVIVABLE = (
    "live_probe:throttle,live_transcode:kill,live_transcode:timeout,"
    "live_publish:transient,s3put:slowdown:2"
)


def test_faults_in_every_live_step_leave_the_playlists_whole(
    engine: Any, clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN throttling, a killed ffmpeg, a timeout, S3 503s and a transient publish error
    plan = arm(engine, monkeypatch, LIVE_SURVIVABLE)
    s3, ep = engine.client("s3"), engine.endpoints
    segment = clip("mpegts_bframes")
    # WHEN three segments of one stream arrive (the same clip thrice: its timestamps
    # repeat, which the playlists do not care about), then END
    for sequence in range(3):
        s3.upload_file(str(segment), ep.ingest_bucket, f"live/faulted/{sequence}.ts")
    s3.put_object(Bucket=ep.ingest_bucket, Key="live/faulted/END", Body=b"")
    paths = StreamPaths("faulted")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=ep.output_bucket, Prefix=paths.master_key)
        if listed.get("KeyCount"):
            break
        time.sleep(0.3)
    # THEN every fault fired and was survived: all three segments, once each, no gap
    assert sorted(kind for _, kind in plan.fired) == sorted(
        ["throttle", "kill", "timeout", "transient", "slowdown", "slowdown"]
    )
    body = s3.get_object(Bucket=ep.output_bucket, Key=paths.live_playlist_key("240p"))["Body"]
    playlist = body.read().decode()
    segments = [line for line in playlist.splitlines() if line.startswith("seg_")]
    assert segments == ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]
    assert "#EXT-X-GAP" not in playlist and playlist.endswith("#EXT-X-ENDLIST\n")
    failures = s3.list_objects_v2(Bucket=ep.output_bucket, Prefix="failures/live/faulted/")
    assert failures["KeyCount"] == 0
