"""The simulated venue encoder's watch: it ends, with the reason, whatever the playlists
do. moto's in-memory S3 stands in for the stack; nothing processes the uploads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.cli import venue
from workflow.live.paths import StreamPaths

INGEST, OUTPUT = "ingest", "output"
MASTER = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n360p/live.m3u8\n"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="u", aws_secret_access_key="u"
        )
        client.create_bucket(Bucket=INGEST)
        client.create_bucket(Bucket=OUTPUT)
        yield client


@pytest.fixture
def segments(tmp_path: Path) -> list[Path]:
    files = [tmp_path / f"{n}.ts" for n in range(3)]
    for file in files:
        file.write_bytes(b"\x47" * 188)
    return files


def publish(s3: Any, playlist: str, *, master: bool = True) -> None:
    paths = StreamPaths("game")
    if master:
        s3.put_object(Bucket=OUTPUT, Key=paths.master_key, Body=b"")
        s3.put_object(Bucket=OUTPUT, Key=paths.live_master_key, Body=MASTER.encode())
    s3.put_object(Bucket=OUTPUT, Key=paths.live_playlist_key("360p"), Body=playlist.encode())


def push(s3: Any, segments: list[Path], timeout: float, **buckets: str) -> venue.Report:
    return venue.push(
        s3,
        ingest_bucket=buckets.get("ingest", INGEST),
        output_bucket=buckets.get("output", OUTPUT),
        stream="game",
        segments=segments,
        order=[0, 1, 2],
        segment_seconds=4.0,
        realtime=False,
        timeout=timeout,
    )


def test_playlists_closed_without_a_segment_end_the_watch_at_once_naming_it(
    s3: Any, segments: list[Path]
) -> None:
    # GIVEN a stream whose playlists closed showing 1 and 2 but never 0
    publish(s3, "#EXTM3U\n#EXTINF:4.0,\nseg_00001.ts\n#EXTINF:4.0,\nseg_00002.ts\n"
                "#EXT-X-ENDLIST\n")  # fmt: skip
    # WHEN the encoder pushes and watches
    report = push(s3, segments, timeout=60)
    # THEN the watch ends on its own, not at its timeout (which names what it waited
    # for), naming the missing segment
    assert report.problem is None
    assert sorted(report.latencies) == [1, 2] and report.missing == [0] and report.ended


def test_a_segment_that_never_shows_ends_the_watch_at_its_timeout(
    s3: Any, segments: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(s3, "#EXTM3U\n#EXT-X-GAP\n#EXTINF:4.0,\nseg_00000.ts\n#EXTINF:4.0,\nseg_00001.ts\n")
    given: list[float] = []
    real_wait_for = venue._wait_for

    def wait_for(condition: Any, timeout: float) -> bool:
        given.append(timeout)
        return real_wait_for(condition, timeout)

    monkeypatch.setattr(venue, "_wait_for", wait_for)
    report = push(s3, segments, timeout=1.5)
    # one bound for the segments and the recording together: the wait for the
    # recording has only what the segments' wait left of it, which it used up (0 or
    # less; a bound set afresh, or after the segments' wait, leaves it ~1.5 s)
    assert len(given) == 1 and given[0] < 0.75
    assert report.gaps == [0] and sorted(report.latencies) == [1]
    assert report.problem is not None and "segments [2]" in report.problem


class FailingReads:
    """An S3 client whose every object read fails, as a broken endpoint's would."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_object(self, **_: Any) -> Any:
        raise ConnectionError("the endpoint went away")


def test_a_watcher_that_fails_says_why_and_ends_the_watch(s3: Any, segments: list[Path]) -> None:
    report = push(FailingReads(s3), segments, timeout=1.5)
    # (the watch ended with its watcher: else its problem would be the timeout's)
    assert report.problem == "the playlist watcher failed: ConnectionError: the endpoint went away"
