"""Live streams end to end: real footage pushed like a venue encoder, checked every step."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import m3u8
import numpy as np
import pytest

from tests.asset import read_asset, read_manifest, read_rendition, strict_parse
from tests.media import synth
from tests.outcomes import check, logged, types
from tests.source_facts import decode_video
from tests.webhook import Webhook
from workflow.cli import venue as encoder
from workflow.live.paths import ClipPaths, StreamPaths
from workflow.local.binaries import ffmpeg_binary

LADDER = "360:800,240:400"
RUNGS = ("360p", "240p", "audio")


@pytest.fixture(scope="module")
def real_segments(
    real_media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    """Real footage (gradio's 1080p sample, 7 s) cut into 1 s MPEG-TS segments at 360p."""
    return encoder.cut_segments(
        real_media["h264_aac_1080p_gop6s"],
        tmp_path_factory.mktemp("venue"),
        1.0,
        binary=ffmpeg_binary(),
        height=360,
    )


def frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.pts is not None and p.size)


@dataclass
class Venue:
    """One stream on the session's local stack, pushed and read back like any client."""

    engine: Any
    stream: str
    workdir: Path
    # (sequence, content hash) of each segment version pushed: one execution each.
    versions: set[tuple[int, str]] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)

    @property
    def s3(self) -> Any:
        return self.engine.client("s3")

    def configure(self, **settings: Any) -> None:
        self.s3.put_object(
            Bucket=self.engine.endpoints.ingest_bucket,
            Key=f"live/{self.stream}/stream.json",
            Body=json.dumps(settings).encode(),
        )

    def push(self, sequence: int, path: Path, suffix: str = ".ts") -> None:
        self.s3.upload_file(
            str(path), self.engine.endpoints.ingest_bucket, f"live/{self.stream}/{sequence}{suffix}"
        )
        self.versions.add((sequence, hashlib.md5(path.read_bytes()).hexdigest()))

    def end(self) -> None:
        self.s3.put_object(
            Bucket=self.engine.endpoints.ingest_bucket, Key=f"live/{self.stream}/END", Body=b""
        )

    def read(self, key: str) -> str | None:
        try:
            body = self.s3.get_object(Bucket=self.engine.endpoints.output_bucket, Key=key)["Body"]
        except self.s3.exceptions.NoSuchKey:
            return None
        return str(body.read().decode())

    def recording(self, rung: str) -> str:
        """The rung's playlist in the stream's VOD asset, once the stream has closed."""
        paths = StreamPaths(self.stream)
        self.wait(lambda: self.read(paths.master_key) is not None)
        return self.read(f"{paths.prefix}{rung}/index.m3u8") or ""

    def playlist(self, rung: str) -> str:
        return self.read(StreamPaths(self.stream).live_playlist_key(rung)) or ""

    def sweep_after(self, seconds: float) -> None:
        """Run the sweep (EventBridge's every minute) as though ``seconds`` had passed
        since every segment so far arrived: their arrivals are dated back by that much,
        since a sweep runs as of its schedule's time and never as of a time to come."""
        table = self.engine.client("dynamodb")
        name = self.engine.endpoints.live_table
        pages = table.get_paginator("query").paginate(
            TableName=name,
            KeyConditionExpression="stream = :s AND begins_with(item, :seg)",
            ExpressionAttributeValues={":s": {"S": self.stream}, ":seg": {"S": "seg#"}},
        )
        for item in (item for page in pages for item in page["Items"] if "arrival" in item):
            arrival = json.loads(item["arrival"]["S"])
            arrival["at"] -= seconds
            table.update_item(
                TableName=name, Key={"stream": item["stream"], "item": item["item"]},
                UpdateExpression="SET arrival = :a",
                ExpressionAttributeValues={":a": {"S": json.dumps(arrival)}},
            )  # fmt: skip
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self.engine.invoke("LiveSweepFunction", {"time": now})

    def wait(self, condition: Any, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out; playlists now: {self.playlist(RUNGS[0])!r}")

    def wait_for_executions(self) -> None:
        """Until every pushed segment's execution has started and finished (an upload
        starts its execution a moment later, through its S3 event)."""
        sfn = self.engine.client("stepfunctions")
        arn = self.engine.endpoints.live_state_machine_arn

        def settled() -> bool:
            mine = [
                e
                for e in sfn.list_executions(stateMachineArn=arn)["executions"]
                if e["name"].startswith(f"{self.stream}-")
            ]
            started = len(mine) >= max(1, len(self.versions))
            return started and all(e["status"] != "RUNNING" for e in mine)

        self.wait(settled)

    def executions_of(self, sequence: int) -> list[dict[str, Any]]:
        """Every execution of one segment of the stream, described."""
        sfn = self.engine.client("stepfunctions")
        arn = self.engine.endpoints.live_state_machine_arn
        return [
            sfn.describe_execution(executionArn=e["executionArn"])
            for e in sfn.list_executions(stateMachineArn=arn)["executions"]
            if e["name"].startswith(f"{self.stream}-{sequence:09d}-")
        ]

    def download(self, out: Path) -> Path:
        """Copy the stream's output folder to ``out``, as a CDN or player would see it."""
        prefix = StreamPaths(self.stream).prefix
        bucket = self.engine.endpoints.output_bucket
        listing = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in listing:
            for item in page.get("Contents", []):
                target = out / item["Key"][len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, item["Key"], str(target))
        return out


@pytest.fixture
def venue(engine: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Venue]:
    yield Venue(engine, request.node.name.replace("_", "-")[:48], tmp_path)


def shown(playlist: str) -> list[tuple[int, bool]]:
    """(sequence, is_gap) for every segment line of a media playlist, in order."""
    entries, gap = [], False
    for line in playlist.splitlines():
        if line == "#EXT-X-GAP":
            gap = True
        elif line.startswith("seg_"):
            entries.append((int(line[4:].split(".")[0]), gap))
            gap = False
    return entries


def assert_plays(venue: Venue, segments: list[Path], count: int, step: int) -> None:
    """Every rung shows exactly segments 0..count-1, in order, no gaps, and decodes whole."""
    out = venue.download(venue.workdir / f"step-{step:02d}")
    if count == 0:
        # nothing to play yet: no playlist at all, rather than one that lies
        assert not list(out.rglob("*.m3u8")), step
        return
    for rung in RUNGS:
        text = (out / rung / "live.m3u8").read_text()
        assert shown(text) == [(n, False) for n in range(count)], (step, rung, text)
        assert "#EXT-X-MEDIA-SEQUENCE:0\n" in text and "#EXT-X-PLAYLIST-TYPE:EVENT" in text
    expected = sum(frames_in(s) for s in segments[:count])
    for rung in ("360p", "240p"):
        stream = read_rendition(out / rung / "live.m3u8", "video")
        assert stream.frames == expected, (step, rung)
        assert stream.duplicates == 0 and stream.decode_errors == "", (step, rung)
        assert stream.keyframes_at_segment_starts, (step, rung)
    audio = read_rendition(out / "audio" / "live.m3u8", "audio")
    assert audio.duplicates == 0 and audio.decode_errors == ""
    assert strict_parse(out).returncode == 0, strict_parse(out).stderr


def test_real_segments_out_of_order_duplicated_and_late_play_gap_free_after_every_step(
    venue: Venue, real_segments: list[Path]
) -> None:
    # GIVEN a stream of real footage in 1 s segments, with a patient gap timeout
    assert len(real_segments) >= 7
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    last = len(real_segments) - 1
    # WHEN the segments arrive out of order, some twice, and segment 3 long after 4..last
    deliveries = [1, 0, 0, 2, 1, *range(4, last + 1), 5, 3]
    for step, sequence in enumerate(deliveries):
        venue.push(sequence, real_segments[sequence])
        venue.wait_for_executions()
        contiguous = 0
        while contiguous in deliveries[: step + 1]:
            contiguous += 1
        # THEN after every step each rung shows exactly the contiguous run, and plays
        venue.wait(lambda n=contiguous: len(shown(venue.playlist("240p"))) >= n)
        assert_plays(venue, real_segments, contiguous, step)

    # WHEN the encoder says END
    venue.end()
    paths = StreamPaths(venue.stream)
    venue.wait(lambda: venue.read(paths.master_key) is not None)

    # THEN every live playlist is closed, and a VOD asset of the VOD pipeline's shape is there
    out = venue.download(venue.workdir / "ended")
    for rung in RUNGS:
        assert (out / rung / "live.m3u8").read_text().endswith("#EXT-X-ENDLIST\n")
        assert (out / rung / "index.m3u8").read_text().endswith("#EXT-X-ENDLIST\n")
    manifest = read_manifest(out)
    assert manifest["master"] == "master.m3u8" and manifest["packaging"] == "hls-ts"
    assert [r["name"] for r in manifest["renditions"]] == ["360p", "240p"]
    assert manifest["source"]["gaps"] == 0
    # AND the whole recording decodes, every frame once, lasting as long as what was pushed
    asset = read_asset(out)
    pushed = sum(decode_video(s).duration for s in real_segments)
    frames = sum(frames_in(s) for s in real_segments)
    for rung, stream in asset.video.items():
        assert stream.frames == frames, rung
        assert stream.decode_errors == "" and stream.duplicates == 0, rung
        assert abs(stream.duration - pushed) <= 0.03 * pushed, (rung, stream.duration, pushed)
    assert asset.audio is not None and asset.audio.decode_errors == ""
    assert abs(asset.audio.duration - pushed) <= 0.03 * pushed
    assert strict_parse(out).returncode == 0
    # AND the live master, every segment made, declares their measured rates, as the
    # recording's does (not the rungs' targets, which the segments exceed)
    rates = [
        (p.uri.replace("index.m3u8", "live.m3u8"), p.stream_info.bandwidth,
         p.stream_info.average_bandwidth)
        for p in m3u8.load(str(out / "master.m3u8")).playlists
    ]  # fmt: skip
    live_master = m3u8.load(str(out / "live.m3u8"))
    assert [
        (p.uri, p.stream_info.bandwidth, p.stream_info.average_bandwidth)
        for p in live_master.playlists
    ] == rates
    # AND a player reading over HTTP from the playback origin sees every frame, live or VOD
    base = f"{venue.engine.endpoints.playback_url}{paths.prefix}"
    for playlist in ("live.m3u8", "master.m3u8"):
        assert frames_over_http(base + playlist) == frames, playlist


def frames_over_http(url: str, options: dict[str, str] | None = None) -> int:
    """Play a playlist as a player would (ffmpeg's HLS demuxer over HTTP, with ``options``
    such as ``headers``); count frames. A live playlist with nothing new on two reloads
    ends the read (``m3u8_hold_counters``), where ffmpeg's own 1,000 held a test's read
    of an open stream for minutes (180 s) past its last frame."""
    options = {"live_start_index": "0", "m3u8_hold_counters": "2", **(options or {})}
    with av.open(url, format="hls", options=options, timeout=30) as player:
        stream = player.streams.video[0]
        return sum(1 for frame in player.decode(stream))


def test_a_segment_that_never_comes_becomes_a_gap_and_the_stream_goes_on(
    engine: Any, venue: Venue, real_segments: list[Path], webhook: Webhook
) -> None:
    # GIVEN a stream that waits 60 s for a missing segment (longer than its segments can
    # take to publish on a loaded machine: a later one's own publish must not be the one
    # that declares the gap here)
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=60)
    # WHEN segment 1 never arrives
    for sequence in (0, 2, 3):
        venue.push(sequence, real_segments[sequence])
    venue.wait_for_executions()
    assert shown(venue.playlist("360p")) == [(0, False)]
    # AND the sweep runs 61 s later (EventBridge calls it every minute)
    venue.sweep_after(61)
    # THEN segment 1 is a gap, and the stream went on past it, in every rung
    for rung in RUNGS:
        assert shown(venue.playlist(rung)) == [(0, False), (1, True), (2, False), (3, False)]
    # AND a late arrival after the gap is shown changes nothing live
    venue.push(1, real_segments[1])
    venue.wait_for_executions()
    assert shown(venue.playlist("360p"))[1] == (1, True)
    # AND the recording keeps it, since it came before the end
    venue.end()
    recording = venue.recording("360p")
    assert shown(recording) == [(0, False), (1, False), (2, False), (3, False)]
    # AND the stream announced its start, the gap and its end, in that order, once each,
    # to the event log and to the webhook (the end is announced after the recording is
    # written, by the same writer: wait for it)
    venue.wait(lambda: len(logged(engine, stream=venue.stream)) >= 3)
    announced = [check(e) for e in logged(engine, stream=venue.stream)]
    assert types(announced) == ["Live Stream Started", "Live Stream Gap", "Live Stream Ended"]
    assert announced[1]["detail"]["sequence"] == 1 and announced[1]["detail"]["reason"] == "missing"
    assert announced[2]["detail"]["segments"] == 4 and announced[2]["detail"]["gaps"] == 0
    posted = webhook.delivered(stream=venue.stream)
    assert sorted(types(posted)) == sorted(types(announced))


def test_a_bad_segment_is_recorded_and_becomes_a_gap_once_the_next_is_there(
    engine: Any, venue: Venue, real_segments: list[Path]
) -> None:
    # GIVEN a stream with a long gap timeout
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    bad = venue.workdir / "bad.ts"
    bad.write_bytes(b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n")
    # WHEN segment 1 is not a video
    venue.push(0, real_segments[0])
    venue.push(1, bad)
    venue.push(2, real_segments[2])
    venue.wait_for_executions()
    # THEN its execution failed with the named error, its failure is recorded, and the
    # playlists go on past it without waiting gap_seconds (2 came)
    _failed_as_gap(venue, "UnsafeInputError")
    # AND the gap was announced as a failed segment
    gaps = [check(e)["detail"] for e in logged(engine, stream=venue.stream, sequence=1)]
    assert [(g["sequence"], g["reason"]) for g in gaps] == [(1, "failed")]


def test_a_segment_under_a_kms_key_the_stack_may_not_use_is_named_and_becomes_a_gap(
    engine: Any, venue: Venue, real_segments: list[Path]
) -> None:
    # GIVEN a stream whose segment 1 the venue uploads under its own KMS key, which no
    # role of the stack may decrypt with
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    theirs = engine.client("kms").create_key(Description="a venue's own key")["KeyMetadata"]
    venue.push(0, real_segments[0])
    venue.s3.upload_file(
        str(real_segments[1]), engine.endpoints.ingest_bucket, f"live/{venue.stream}/1.ts",
        ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": theirs["Arn"]},
    )  # fmt: skip
    venue.versions.add((1, "kms"))
    venue.push(2, real_segments[2])
    venue.wait_for_executions()
    # THEN its execution failed with the named error, naming the key and what to grant;
    # its failure is recorded, and the playlists go on past it, nothing of it published
    cause = _failed_as_gap(venue, "EncryptedInputError")
    assert theirs["Arn"] in cause and "kms:Decrypt" in cause


def _failed_as_gap(venue: Venue, error: str) -> str:
    """Assert segment 1 of 0 to 2 failed once with ``error``, recorded, shown as a gap in
    every rung with nothing of it published; its execution's cause."""
    failed = venue.executions_of(1)
    assert [(f["status"], f["error"]) for f in failed] == [("FAILED", error)], failed
    record = json.loads(venue.read(f"failures/live/{venue.stream}/000000001.json") or "{}")
    assert record["error"] == error and record["sequence"] == 1
    venue.wait(lambda: len(shown(venue.playlist("360p"))) == 3)
    for rung in RUNGS:
        assert shown(venue.playlist(rung)) == [(0, False), (1, True), (2, False)]
        assert venue.read(f"{StreamPaths(venue.stream).prefix}{rung}/seg_00001.ts") is None
    return str(failed[0]["cause"])


def _push_with_segment_1_empty(venue: Venue, real_segments: list[Path]) -> None:
    """Segments 0 and 2, and 1 as 0 bytes: shown as a gap once 2 is there."""
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    empty = venue.workdir / "empty.ts"
    empty.write_bytes(b"")
    venue.push(0, real_segments[0])
    venue.push(1, empty)
    venue.push(2, real_segments[2])
    venue.wait(lambda: shown(venue.playlist("360p")) == [(0, False), (1, True), (2, False)])


def test_a_failed_segment_uploaded_again_fills_its_gap_and_one_after_the_end_is_refused(
    engine: Any, venue: Venue, real_segments: list[Path]
) -> None:
    # GIVEN a stream whose gateway first writes segment 1 as 0 bytes (as s3fs and FTP
    # gateways do when the encoder opens the file), shown as a gap once 2 is there
    _push_with_segment_1_empty(venue, real_segments)
    # WHEN the real bytes of segment 1 follow, and then the stream ends
    venue.push(1, real_segments[1])
    venue.wait_for_executions()
    venue.end()
    # THEN that upload is published: the recording has every segment, no gap
    assert sorted(e["status"] for e in venue.executions_of(1)) == ["FAILED", "SUCCEEDED"]
    for rung in RUNGS:
        assert shown(venue.recording(rung)) == [(0, False), (1, False), (2, False)], rung
        # (the live playlist never takes back a gap it showed)
        assert shown(venue.playlist(rung)) == [(0, False), (1, True), (2, False)], rung
    # AND a segment uploaded after the end fails by name, recorded, encoding nothing
    venue.push(3, real_segments[3])
    venue.wait_for_executions()
    (late,) = venue.executions_of(3)
    assert (late["status"], late["error"]) == ("FAILED", "StreamEndedError")
    record = json.loads(venue.read(f"failures/live/{venue.stream}/000000003.json") or "{}")
    assert "came after the stream ended at segment 2" in record["cause"]
    assert venue.read(f"{StreamPaths(venue.stream).prefix}360p/seg_00003.ts") is None
    # (the recording stays as it was)
    assert shown(venue.recording("360p")) == [(0, False), (1, False), (2, False)]
    # AND other bytes under a published segment's number (an encoder counting from 0
    # again) fail by name, and the segment shown stays the one published
    segment = {
        "Bucket": engine.endpoints.output_bucket,
        "Key": f"{StreamPaths(venue.stream).prefix}360p/seg_00000.ts",
    }
    published = venue.s3.get_object(**segment)["ETag"]
    venue.push(0, real_segments[3])
    venue.wait_for_executions()
    reused = [e for e in venue.executions_of(0) if e["status"] == "FAILED"]
    assert [e["error"] for e in reused] == ["SegmentReusedError"]
    record = json.loads(venue.read(f"failures/live/{venue.stream}/000000000.json") or "{}")
    assert "segment 0 was published already from another upload" in record["cause"]
    assert venue.s3.get_object(**segment)["ETag"] == published


def test_a_reused_stream_name_does_not_fill_last_weeks_gap_but_a_mend_does(
    engine: Any, venue: Venue, real_segments: list[Path]
) -> None:
    # GIVEN a stream whose segment 1 failed (0 bytes), ended at segment 2: recorded, announced
    _push_with_segment_1_empty(venue, real_segments)
    venue.wait_for_executions()
    venue.end()
    gap = [(0, False), (1, True), (2, False)]
    assert shown(venue.recording("360p")) == gap
    recorded = {rung: venue.recording(rung) for rung in RUNGS}
    table, key = engine.client("dynamodb"), {
        "stream": {"S": venue.stream}, "item": {"S": "stream"}
    }  # fmt: skip

    def end_at(at: float) -> None:
        item = table.get_item(TableName=engine.endpoints.live_table, Key=key)["Item"]
        ending = {**json.loads(item["ending"]["S"]), "at": at}
        table.update_item(
            TableName=engine.endpoints.live_table, Key=key, UpdateExpression="SET ending = :e",
            ExpressionAttributeValues={":e": {"S": json.dumps(ending)}},
        )  # fmt: skip

    # WHEN that end was two days ago, and next week's game is pushed under the same name:
    # its segment 1 is another broadcast's, not a mend
    end_at(time.time() - 2 * 86_400)
    venue.push(1, real_segments[3])
    venue.wait_for_executions()
    # THEN it fails by name, saying when the stream ended, and nothing is published
    failed = [e["error"] for e in venue.executions_of(1) if e["status"] == "FAILED"]
    assert len(failed) == 2 and "StreamEndedError" in failed
    record = json.loads(venue.read(f"failures/live/{venue.stream}/000000001.json") or "{}")
    assert record["error"] == "StreamEndedError"
    assert "after the stream ended at " in record["cause"] and ", segment 2 " in record["cause"]
    assert "a new broadcast needs a new stream name" in record["cause"]
    prefix = StreamPaths(venue.stream).prefix
    assert venue.read(f"{prefix}360p/seg_00001.ts") is None
    assert {rung: venue.recording(rung) for rung in RUNGS} == recorded
    assert shown(venue.playlist("360p")) == gap
    ended = types(logged(engine, stream=venue.stream)).count
    assert ended("Live Stream Ended") == 1  # (not announced again)
    # AND a mend uploaded within a day of the end still fills the gap in the recording
    end_at(time.time() - 3600)
    venue.push(1, real_segments[1])
    venue.wait_for_executions()
    assert sorted(e["status"] for e in venue.executions_of(1)) == ["FAILED", "FAILED", "SUCCEEDED"]
    venue.wait(lambda: shown(venue.recording("360p")) == [(0, False), (1, False), (2, False)])
    assert venue.read(f"failures/live/{venue.stream}/000000001.json") is None
    venue.wait(lambda: types(logged(engine, stream=venue.stream)).count("Live Stream Ended") == 2)


def loudest(path: Path) -> float:
    """The largest sample of the audio in an MPEG-TS segment (0 for silence)."""
    with av.open(str(path), format="mpegts") as container:
        return max(
            (float(abs(frame.to_ndarray()).max()) for frame in container.decode(audio=0)),
            default=0.0,
        )


def test_a_stream_whose_microphone_comes_on_late_keeps_its_sound(venue: Venue, clip: Any) -> None:
    # GIVEN an encoder started before its microphone: of 1 s segments of a clip with a
    # tone, the first two have no audio
    toned = encoder.cut_segments(
        clip("h264_aac_2gop"), venue.workdir / "cut", 1.0, binary=ffmpeg_binary(), height=360
    )
    mute = []
    for n in (0, 1):
        mute.append(venue.workdir / f"mute{n}.ts")
        subprocess.run(
            [ffmpeg_binary(), "-nostdin", "-v", "error", "-i", str(toned[n]),
             "-c", "copy", "-an", "-copyts", "-muxdelay", "0", str(mute[-1])],
            check=True,
        )  # fmt: skip
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    # WHEN they are pushed (and published), then two with sound, and the stream ends
    for n, path in enumerate(mute):
        venue.push(n, path)
    venue.wait_for_executions()
    for n in (2, 3):
        venue.push(n, toned[n])
    venue.wait_for_executions()
    venue.end()
    # THEN the stream has an audio rendition from its start: silence, then the sound
    venue.recording("audio")
    out = venue.download(venue.workdir / "out")
    assert "TYPE=AUDIO" in (out / "live.m3u8").read_text()
    assert shown((out / "audio" / "live.m3u8").read_text()) == [(n, False) for n in range(4)]
    levels = [loudest(out / "audio" / f"seg_{n:05d}.ts") for n in range(4)]
    assert levels[0] == levels[1] == 0.0 and min(levels[2:]) > 0.01, levels


def _two_commentaries(out: Path, english_from: float) -> list[Path]:
    """A venue's 1 s MPEG-TS segments of 4 s with two audio tracks: English commentary
    (a 440 Hz tone) from ``english_from`` s, Spanish (880 Hz) throughout."""
    out.mkdir()
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error",
         "-f", "lavfi", "-i", "color=black:s=320x180:r=25:d=4",
         "-itsoffset", str(english_from), "-f", "lavfi", "-i", "sine=frequency=440:d=4",
         "-f", "lavfi", "-i", "sine=frequency=880:d=4",
         "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-t", "4",
         "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa",
         "-f", "segment", "-segment_time", "1", "-segment_format", "mpegts",
         "-reset_timestamps", "0", str(out / "%d.ts")],
        check=True,
    )  # fmt: skip
    return [out / f"{n}.ts" for n in range(4)]


def test_a_segment_whose_commentary_track_carries_no_sound_is_silent_not_another_track(
    venue: Venue,
) -> None:
    # GIVEN a venue sending English and Spanish commentary in every segment, whose English
    # input is lost for its third: that segment lists the track, without a packet of it
    # (an encoder that never got the input, with the same picture and Spanish)
    segments = _two_commentaries(venue.workdir / "both", 0)
    segments[2] = _two_commentaries(venue.workdir / "lost", 1000)[2]
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    # WHEN they are pushed and the stream ends
    for n, path in enumerate(segments):
        venue.push(n, path)
    venue.wait_for_executions()
    venue.end()
    venue.recording("audio")
    out = venue.download(venue.workdir / "out")
    # THEN the audio rendition is the English track throughout, silent where it was lost,
    # never the Spanish one (the next track, which the segment's probe had taken)
    tones = []
    for n in range(4):
        with av.open(str(out / "audio" / f"seg_{n:05d}.ts"), format="mpegts") as container:
            rate = container.streams.audio[0].sample_rate
            samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
        spectrum = np.abs(np.fft.rfft(samples))
        loud = float(np.abs(samples).max()) > 0.01
        tones.append(round(np.argmax(spectrum) * rate / len(samples), -1) if loud else None)
    assert tones == [440, 440, None, 440], tones


def test_an_event_for_a_version_no_longer_there_leaves_no_gap(
    engine: Any, venue: Venue, real_segments: list[Path]
) -> None:
    # GIVEN a stream with a long gap timeout, segment 0 shown
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    venue.push(0, real_segments[0])
    venue.wait(lambda: shown(venue.playlist("360p")) == [(0, False)])
    # WHEN segment 1's event comes for an upload that is not (or no longer) there, as
    # when the encoder uploaded it again, or deleted it, before the event was delivered
    sfn = engine.client("stepfunctions")
    key = f"live/{venue.stream}/1.ts"
    stale = sfn.start_execution(
        stateMachineArn=engine.endpoints.live_state_machine_arn,
        name=f"{venue.stream}-000000001-stale",
        input=json.dumps(
            {
                "stream": venue.stream,
                "sequence": 1,
                "source": {
                    "bucket": engine.endpoints.ingest_bucket,
                    "key": key,
                    "etag": "0123456789abcdef0123456789abcdef",
                    "uploaded_at": "2026-12-03T18:00:00Z",
                },
            }
        ),
    )
    venue.wait(
        lambda: sfn.describe_execution(executionArn=stale["executionArn"])["status"] != "RUNNING"
    )
    # THEN that execution ends without recording a failure (its version was superseded)
    assert sfn.describe_execution(executionArn=stale["executionArn"])["status"] == "SUCCEEDED"
    assert venue.read(f"failures/live/{venue.stream}/000000001.json") is None
    # AND the upload that is there is shown in its place, not a gap
    venue.push(1, real_segments[1])
    venue.push(2, real_segments[2])
    # (every rung's: Publish writes the rungs' playlists at once, one may land after another)
    venue.wait(lambda: all(len(shown(venue.playlist(rung))) == 3 for rung in RUNGS))
    for rung in RUNGS:
        assert shown(venue.playlist(rung)) == [(0, False), (1, False), (2, False)]


def test_a_sliding_window_keeps_the_newest_segments_and_the_recording_keeps_all(
    venue: Venue, real_segments: list[Path]
) -> None:
    venue.configure(segment_seconds=1, ladder=LADDER, window=3)
    for sequence in range(6):
        venue.push(sequence, real_segments[sequence])
    venue.wait_for_executions()
    venue.wait(lambda: [n for n, _ in shown(venue.playlist("360p"))] == [3, 4, 5])
    text = venue.playlist("360p")
    assert "#EXT-X-MEDIA-SEQUENCE:3\n" in text and "PLAYLIST-TYPE" not in text
    venue.end()
    recording = venue.recording("360p")
    assert [n for n, _ in shown(recording)] == list(range(6))


def test_fmp4_segments_behind_an_init_segment_play(
    venue: Venue, real_media: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN an encoder writing fMP4: init.mp4, then 0.m4s, 1.m4s, ...
    out = tmp_path / "fmp4"
    segments = synth.fmp4_stream(
        out, "-i", str(real_media["h264_aac_1080p_gop6s"]),
        "-t", "4", "-vf", "scale=-2:360", "-c:v", "libx264", "-preset", "veryfast",
        "-force_key_frames", "expr:gte(t,n_forced*1)", "-sc_threshold", "0", "-c:a", "aac",
    )  # fmt: skip
    assert len(segments) >= 3
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    venue.s3.upload_file(
        str(out / "init.mp4"), venue.engine.endpoints.ingest_bucket, f"live/{venue.stream}/init.mp4"
    )
    # WHEN the segments arrive, the last one first
    for sequence in [len(segments) - 1, *range(len(segments) - 1)]:
        venue.push(sequence, segments[sequence], suffix=".m4s")
    venue.wait_for_executions()
    venue.wait(lambda: len(shown(venue.playlist("360p"))) == len(segments))
    # THEN every rung shows them all in order and decodes without a gap
    downloaded = venue.download(tmp_path / "out")
    stream = read_rendition(downloaded / "360p" / "live.m3u8", "video")
    assert stream.decode_errors == "" and stream.duplicates == 0
    joined = tmp_path / "pushed.mp4"
    joined.write_bytes(b"".join(p.read_bytes() for p in [out / "init.mp4", *segments]))
    assert stream.frames == decode_video(joined).frames


def _fmp4_run(source: Path, out: Path, start: float, picture: str) -> list[Path]:
    """Three 1 s fMP4 segments of ``source`` from ``start`` and their ``init.mp4``, as an
    encoder set to ``picture`` (an ffmpeg filter) writes them."""
    return synth.fmp4_stream(
        out, "-ss", str(start), "-i", str(source), "-t", "3", "-vf", picture,
        "-c:v", "libx264", "-preset", "veryfast",
        "-force_key_frames", "expr:gte(t,n_forced*1)", "-sc_threshold", "0", "-c:a", "aac",
    )  # fmt: skip


def test_an_fmp4_encoder_restarted_with_other_settings_keeps_its_late_segment_whole(
    venue: Venue, real_media: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN an fMP4 encoder's run A (360p, 25 fps), then the encoder restarted as run B
    # (240p, 30 fps) with a new init.mp4
    footage = real_media["h264_aac_1080p_gop6s"]
    a = _fmp4_run(footage, tmp_path / "A", 0, "scale=-2:360,fps=25")
    b = _fmp4_run(footage, tmp_path / "B", 3, "scale=-2:240,fps=30")
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    init_key = f"live/{venue.stream}/init.mp4"
    ingest = venue.engine.endpoints.ingest_bucket
    venue.s3.upload_file(str(a[0].parent / "init.mp4"), ingest, init_key)
    venue.push(0, a[0], suffix=".m4s")
    venue.push(1, a[1], suffix=".m4s")
    venue.wait(lambda: len(shown(venue.playlist("360p"))) == 2)
    venue.s3.upload_file(str(b[0].parent / "init.mp4"), ingest, init_key)
    venue.push(3, b[0], suffix=".m4s")
    venue.push(4, b[1], suffix=".m4s")
    # WHEN run A's last segment is uploaded after all that
    venue.push(2, a[2], suffix=".m4s")
    venue.wait_for_executions()
    venue.wait(lambda: shown(venue.playlist("360p")) == [(n, False) for n in range(5)])
    # THEN it was read behind run A's init: published a whole second, every frame of it
    out = venue.download(tmp_path / "out")
    made = tmp_path / "a2.mp4"
    made.write_bytes((a[0].parent / "init.mp4").read_bytes() + a[2].read_bytes())
    assert frames_in(out / "360p" / "seg_00002.ts") == decode_video(made).frames == 25
    lines = (out / "360p" / "live.m3u8").read_text().splitlines()
    listed = lines[lines.index("seg_00002.ts") - 1]
    assert abs(float(listed.removeprefix("#EXTINF:").split(",")[0]) - 1.0) < 0.01, listed
    # AND every rung decodes through the restart without an error
    assert read_rendition(out / "360p" / "live.m3u8", "video").decode_errors == ""


def test_an_end_marker_that_overtakes_every_segment_still_waits_for_them(
    venue: Venue, real_segments: list[Path]
) -> None:
    # GIVEN an encoder that uploads three segments and END at once, before any is probed
    venue.configure(segment_seconds=1, ladder=LADDER, gap_seconds=300)
    for sequence in range(3):
        venue.push(sequence, real_segments[sequence])
    venue.end()
    # THEN the stream closes only after all three, into a complete recording
    recording = venue.recording("360p")
    assert shown(recording) == [(0, False), (1, False), (2, False)]
    assert venue.playlist("360p").endswith("#EXT-X-ENDLIST\n")


def test_a_stream_whose_every_segment_fails_closes_empty(engine: Any, venue: Venue) -> None:
    bad = venue.workdir / "0.ts"
    bad.write_bytes(b"\x00" * 4096)
    venue.push(0, bad)
    venue.wait_for_executions()
    venue.end()
    table = engine.client("dynamodb")
    key = {"stream": {"S": venue.stream}, "item": {"S": "stream"}}

    def closed() -> bool:
        item = table.get_item(TableName=engine.endpoints.live_table, Key=key)["Item"]
        return "open" not in item

    venue.wait(closed)
    assert venue.read(StreamPaths(venue.stream).master_key) is None
    assert venue.read(f"failures/live/{venue.stream}/000000000.json") is not None
    # AND its end is announced, with nothing to play and its one failure
    [ended] = [check(e)["detail"] for e in logged(engine, stream=venue.stream)]
    assert (ended["segments"], ended["gaps"], ended["urls"]) == (0, 1, {})


def _tone_source(out: Path) -> Path:
    """6 s of a steady 440 Hz tone under a black picture, B-frames on."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "color=black:s=320x180:r=25",
         "-f", "lavfi", "-i", "sine=f=440:r=48000",
         "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-ac", "2", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _quiet_runs(audio: Path) -> list[tuple[float, float]]:
    """(time, length) of every stretch of 10 ms or more without sound in ``audio``'s
    samples, but in its first 50 ms and at its end (the encoder's own ramp in and out)."""
    times, levels = [], []
    with av.open(str(audio), format="mpegts") as container:
        for frame in container.decode(audio=0):
            samples = np.abs(frame.to_ndarray()[0])
            first = float(frame.pts * frame.time_base)
            times.extend(first + np.arange(len(samples)) / frame.sample_rate)
            levels.extend(samples)
    rate = 48000
    loud = np.convolve(np.array(levels) > 0.05, np.ones(rate // 400), "same") > 0
    runs, begin = [], None
    for i, on in enumerate(loud):
        if not on and begin is None:
            begin = i
        elif on and begin is not None:
            if i - begin >= rate // 100 and begin > rate // 20:
                runs.append((round(times[begin], 3), round((i - begin) / rate, 3)))
            begin = None
    return runs


def _holes(audio: Path, *, overlaps: bool = False) -> list[tuple[float, float]]:
    """(time, length) of every span of ``audio``'s clock that none of its packets covers
    (``overlaps``: that two of them cover, as a negative length)."""
    with av.open(str(audio), format="mpegts") as container:
        packets = [p for p in container.demux(audio=0) if p.pts is not None and p.size]
    spans = sorted((float(p.pts * p.time_base), float(p.duration * p.time_base)) for p in packets)
    return [
        (round(end, 3), round(start - end, 3))
        for end, start in ((a + d, b) for (a, d), (b, _) in pairwise(spans))
        if start - end > 0.001 or (overlaps and start - end < -0.001)
    ]


def test_a_live_streams_audio_keeps_the_sound_muxed_beside_the_next_segments_video(
    venue: Venue,
) -> None:
    # GIVEN a venue encoder's 2 s MPEG-TS segments of a steady tone: its segment muxer
    # cuts at each video keyframe, so the last few audio frames before a keyframe's time
    # (interleaved by decode time, behind the B-frame delay) are muxed into the next file
    source = _tone_source(venue.workdir / "tone.mp4")
    segments = encoder.cut_segments(source, venue.workdir / "cut", 2.0, binary=ffmpeg_binary())
    venue.configure(segment_seconds=2, ladder="180:300", gap_seconds=300)
    # WHEN they are pushed and the stream ends
    for n, path in enumerate(segments):
        venue.push(n, path)
    venue.wait_for_executions()
    venue.end()
    venue.recording("audio")
    out = venue.download(venue.workdir / "out")
    # THEN the audio rendition plays the tone without a hole at any seam
    entries = shown((out / "audio" / "live.m3u8").read_text())
    assert entries == [(n, False) for n in range(len(segments))], entries
    joined = venue.workdir / "audio.ts"
    joined.write_bytes(
        b"".join((out / "audio" / f"seg_{n:05d}.ts").read_bytes() for n, _ in entries)
    )
    # (before each segment's audio was its file's own: 89 and 95 ms of silence, at the
    # two seams)
    assert _quiet_runs(joined) == [] and _holes(joined, overlaps=True) == []
    # AND so does a clip cut mid-segment at both ends: its audio is cut where the clip
    # cuts (at the start, where an AAC frame starts), and joins the whole segment between
    # at the segments' own seams
    done = subprocess.run(
        [sys.executable, "-m", "workflow.cli.main", "clip", venue.stream, "--from", "1.0",
         "--to", "5.0", "--name", "tone", "--endpoint-url", venue.engine.endpoints.endpoint_url],
        capture_output=True, text=True, timeout=360,  # past the CLI's own 300 s
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recut"] == 2
    prefix = ClipPaths(venue.stream, "tone").prefix
    bucket = venue.engine.endpoints.output_bucket
    master = m3u8.loads(venue.read(f"{prefix}master.m3u8") or "")
    playlist = venue.read(prefix + next(m.uri for m in master.media if m.type == "AUDIO"))
    playlist = playlist or ""
    prefix += "audio/"
    names = [line for line in playlist.splitlines() if line.startswith("seg_")]
    assert len(names) == 3, playlist
    clip = venue.workdir / "clip-audio.ts"
    clip.write_bytes(
        b"".join(venue.s3.get_object(Bucket=bucket, Key=prefix + n)["Body"].read() for n in names)
    )
    # (its first cut segment is cut at an AAC frame's start, so it ends in whole frames
    # where the next begins: cut where the clip cuts, its last frame was padded with
    # silence over the next one's first, 12-21 ms of silence and of clock covered twice)
    assert _quiet_runs(clip) == [] and _holes(clip, overlaps=True) == []


def _loud_tone(out: Path, seconds: float, *, sound: float | None = None) -> Path:
    """``seconds`` of a loud 440 Hz tone under a black picture, B-frames on; the sound
    stops after ``sound`` seconds where given (a microphone lost)."""
    length = f":d={sound}" if sound is not None else ""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"color=black:s=320x180:r=25:d={seconds}",
         "-f", "lavfi", "-i", f"aevalsrc=0.5*sin(2*PI*440*t):s=48000{length}",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _joined_audio(venue: Venue, count: int) -> Path:
    """The stream's audio rendition, its ``count`` segments joined, once it has ended."""
    venue.wait_for_executions()
    venue.end()
    venue.recording("audio")
    out = venue.download(venue.workdir / "out")
    entries = shown((out / "audio" / "live.m3u8").read_text())
    assert entries == [(n, False) for n in range(count)], entries
    joined = venue.workdir / "audio.ts"
    joined.write_bytes(
        b"".join((out / "audio" / f"seg_{n:05d}.ts").read_bytes() for n, _ in entries)
    )
    return joined


def test_venue_audio_at_44k_joins_at_every_seam_without_overlap(venue: Venue) -> None:
    # GIVEN a venue encoder's 1 s segments of a steady tone, its AAC at 44.1 kHz
    source = _loud_tone(venue.workdir / "tone.mp4", 6)
    segments = encoder.cut_segments(
        source, venue.workdir / "cut", 1.0, binary=ffmpeg_binary(), settings=["-ar", "44100"]
    )
    venue.configure(segment_seconds=1, ladder="180:300", gap_seconds=300)
    # WHEN they are pushed and the stream ends
    for n, path in enumerate(segments):
        venue.push(n, path)
    joined = _joined_audio(venue, len(segments))
    # THEN the audio rendition's clock is covered once, and the tone plays on at every seam
    # (its AAC kept at 44.1 kHz, each file's sound is whole frames; encoded at 48 kHz, 4-8
    # ms were covered twice at each seam, and 12-18 ms silent)
    assert _holes(joined, overlaps=True) == [] and _quiet_runs(joined) == []


def _venue_segments(out: Path, layout: str, channels: str, offset: float) -> list[Path]:
    """Two 1 s MPEG-TS segments of a 440 Hz tone at -6 dBFS in the ``channels`` of
    ``layout`` (a venue encoder set to it; ``cut_segments`` sends stereo), the clock from
    ``offset``."""
    out.mkdir(parents=True)
    tone = "0.5*sin(2*PI*440*t)"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error",
         "-f", "lavfi", "-i", "color=black:s=320x180:r=25:d=2",
         "-f", "lavfi", "-i", f"aevalsrc={tone}:s=48000:d=2",
         "-af", f"pan={layout}|{'|'.join(f'{c}=c0' for c in channels.split())}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-force_key_frames", "expr:gte(t,n_forced)", "-c:a", "aac", "-b:a", "256k",
         "-output_ts_offset", str(offset), "-f", "segment", "-segment_time", "1",
         "-segment_time_delta", "0.05", "-segment_format", "mpegts",
         "-reset_timestamps", "0", str(out / "%d.ts")],
        check=True,
    )  # fmt: skip
    return sorted(out.glob("*.ts"), key=lambda p: int(p.stem))


def test_a_venue_whose_channels_change_goes_on_in_stereo_at_each_ones_level(
    venue: Venue,
) -> None:
    # GIVEN a venue encoder that sends a tone in stereo (left only), then restarts in 5.1
    # (the tone in the left front, centre and left surround) and then in mono, each run's
    # clock carrying on from the last
    runs = [("stereo", "FL"), ("5.1", "FL FC BL"), ("mono", "FC")]
    segments: list[Path] = []
    for n, (layout, channels) in enumerate(runs):
        segments += _venue_segments(venue.workdir / f"run{n}", layout, channels, 2.0 * n)
    venue.configure(segment_seconds=1, ladder="180:300", gap_seconds=300)
    # WHEN they are pushed and the stream ends
    for n, path in enumerate(segments):
        venue.push(n, path)
    joined = _joined_audio(venue, len(segments))
    # THEN every segment is stereo, the tone in its left channel as loud as the source's
    # in stereo, in 5.1 too (the downmix's gains scaled to sum to 1), and mono's at -3 dB
    tones = []
    for n in range(len(segments)):
        with av.open(str(joined.parent / "out" / "audio" / f"seg_{n:05d}.ts")) as published:
            stream = published.streams.audio[0]
            frames = list(published.decode(stream))
        assert {f.layout.name for f in frames} == {"stereo"}
        left = np.concatenate([f.to_ndarray()[0] for f in frames])[12000:36000]
        tones.append(float(np.abs(np.fft.rfft(left))[220] * 2 / len(left)))
    expected = [0.5, 0.5, 0.5, 0.5, 0.5 / np.sqrt(2), 0.5 / np.sqrt(2)]
    assert tones == pytest.approx(expected, rel=0.06), tones


def test_a_streams_cea_608_captions_are_kept_in_every_rung_and_declared(
    venue: Venue, real_media: dict[str, Path]
) -> None:
    # GIVEN a venue whose encoder sends broadcast captions (CEA-608 in its H.264), cut
    # at its keyframes into two segments
    from tests.e2e.test_packaging import captions

    source = real_media["mpegts_h264_aac_captions"]
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-i", str(source), "-c", "copy", "-f", "segment",
         "-segment_time", "2", "-segment_format", "mpegts", str(venue.workdir / "%d.ts")],
        check=True,
    )  # fmt: skip
    segments = sorted(venue.workdir.glob("*.ts"))
    assert len(segments) == 2
    venue.configure(segment_seconds=8, gap_seconds=300)
    # WHEN they are pushed and the stream ends
    for n, segment in enumerate(segments):
        venue.push(n, segment)
    venue.wait_for_executions()
    venue.end()
    venue.recording(RUNGS[0])
    out = venue.download(venue.workdir / "out")
    # THEN the live master and the recording's declare the captions for every variant
    for name in ("live.m3u8", "master.m3u8"):
        master = m3u8.load(str(out / name))
        (cc,) = [m for m in master.media if m.type == "CLOSED-CAPTIONS"]
        assert cc.instream_id == "CC1", name
        assert all(p.stream_info.closed_captions == f'"{cc.group_id}"' for p in master.playlists)
    # AND each rung's recording carries the source's caption text
    expected = captions(source)
    assert expected
    for playlist in m3u8.load(str(out / "master.m3u8")).playlists:
        assert captions(out / playlist.uri) == expected, playlist.uri
