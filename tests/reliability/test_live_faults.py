"""Faults in every live step are retried, and each segment is still published exactly once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.test_lost_events import _reconcile
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


def _wait_for(s3: Any, bucket: str, key: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"):
        assert time.monotonic() < deadline, f"{key} never came"
        time.sleep(0.3)


def test_a_segment_that_ran_out_of_time_twice_is_tried_again_into_the_recording(
    engine: Any, clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stream whose segment 0 ran out of time on every attempt the execution gave it
    plan = arm(engine, monkeypatch, "live_transcode:timeout:2")
    s3, ep = engine.client("s3"), engine.endpoints
    paths, segment = StreamPaths("timedout"), clip("mpegts_bframes")
    s3.upload_file(str(segment), ep.ingest_bucket, "live/timedout/0.ts")
    _wait_for(s3, ep.output_bucket, f"failures/{paths.prefix}000000000.json")
    assert plan.fired == [("LiveTranscodeFunction", "timeout")] * 2
    # AND then its segments 1 and 2 and its end: it closes with 0 a gap
    for sequence in (1, 2):
        s3.upload_file(str(segment), ep.ingest_bucket, f"live/timedout/{sequence}.ts")
    s3.put_object(Bucket=ep.ingest_bucket, Key="live/timedout/END", Body=b"")
    _wait_for(s3, ep.output_bucket, paths.master_key)
    recording = f"{paths.prefix}240p/index.m3u8"

    def shown() -> list[str]:
        body = s3.get_object(Bucket=ep.output_bucket, Key=recording)["Body"].read().decode()
        return [line for line in body.splitlines() if line.startswith(("seg_", "#EXT-X-GAP"))]

    assert shown()[0] == "#EXT-X-GAP"
    # WHEN the reconciler runs
    assert "timedout/0" in _reconcile(engine)["segments"]
    # THEN segment 0 is tried again and the recording gets it: no gap left
    deadline = time.monotonic() + 300
    while shown() != ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]:
        assert time.monotonic() < deadline, shown()
        time.sleep(0.5)
    # AND, published, it is not tried again
    assert "timedout/0" not in _reconcile(engine)["segments"]
    # AND its failure record is gone: mended, the segment failed nowhere an operator looks
    failures = s3.list_objects_v2(Bucket=ep.output_bucket, Prefix=f"failures/{paths.prefix}")
    assert failures["KeyCount"] == 0, [o["Key"] for o in failures.get("Contents", [])]
