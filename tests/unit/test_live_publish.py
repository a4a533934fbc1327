"""The live publisher with a clock the test steps: gaps, the sweep's scheduled time and
the lease follow the clock, never the wall's. moto's in-memory S3 and DynamoDB."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from tests import iam_policy
from tests.media import synth
from tests.records import stream_settings
from tests.unit.tables import create_table
from workflow import metrics
from workflow.errors import (
    ConfigurationError,
    SegmentClaimedError,
    SegmentReusedError,
    StreamEndedError,
    TransientError,
)
from workflow.keys import segments as aes128
from workflow.keys.store import KeyStore
from workflow.live import publish, rules, store
from workflow.live.config import IDLE_SECONDS
from workflow.live.ingest import MAX_ON_ITS_WAY, _ladder_within, end_stream, on_ingest, on_its_way
from workflow.live.paths import MAX_RECORD_BYTES, StreamPaths
from workflow.live.probe import probe_segment
from workflow.live.publish import LEASE_SECONDS, advance_stream, publish_segment
from workflow.live.rules import Entry, LivePlaylist
from workflow.live.segment import _claimed, transcode_segment
from workflow.live.store import CLAIM_SECONDS, TRIED_AGAIN, Saved, StreamTable, _packed
from workflow.live.sweep import sweep
from workflow.local.template import Stack
from workflow.media.ladder import build_ladder
from workflow.runtime import Clients
from workflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = "out"
INGEST = "ingest"
T0 = 1_800_000_000.0


class SteppedClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def live(clock: SteppedClock) -> Iterator[tuple[Settings, Clients]]:
    with mock_aws():
        options = {
            "region_name": "us-east-1",
            "aws_access_key_id": "u",
            "aws_secret_access_key": "u",
        }
        dynamodb, s3 = boto3.client("dynamodb", **options), boto3.client("s3", **options)
        name = create_table(dynamodb, Stack(ROOT), "LiveTable")
        s3.create_bucket(Bucket=OUTPUT)
        settings = Settings(output_bucket=OUTPUT, live_table=name)
        clients = Clients(s3=s3, dynamodb=dynamodb, clock=clock)
        table = StreamTable(dynamodb, name)
        table.create("game")
        stream = stream_settings()
        table.configure("game", stream.to_dict())
        yield settings, clients


def arrive(sequence: int, settings: Settings, clients: Clients) -> dict[str, Any]:
    result = {"duration": 2.0, "bytes": {"360p": 1000}}
    return publish_segment(
        {"stream": "game", "sequence": sequence, "result": result}, settings, clients
    )


def entries(clients: Clients, key: str) -> list[str]:
    """A playlist's segment and gap lines."""
    body = clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read().decode()
    return [line for line in body.splitlines() if line.startswith(("seg_", "#EXT-X-GAP"))]


def shown(clients: Clients) -> list[str]:
    return entries(clients, StreamPaths("game").live_playlist_key("360p"))


def test_a_missing_segment_becomes_a_gap_once_the_clock_passes_its_timeout(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    # GIVEN segments 0 and 2 arrived, 1 did not
    arrive(0, settings, clients)
    arrive(2, settings, clients)
    assert shown(clients) == ["seg_00000.ts"]
    # WHEN the clock stands just short of the gap timeout, the stream waits for 1
    clock.now += 5.9
    advance_stream("game", settings, clients)
    assert shown(clients) == ["seg_00000.ts"]
    # THEN past it, 1 is a gap and the stream goes on
    clock.now += 0.2
    advance_stream("game", settings, clients)
    assert shown(clients) == ["seg_00000.ts", "#EXT-X-GAP", "seg_00001.ts", "seg_00002.ts"]


def test_playlists_written_by_a_writer_that_outlived_its_lease_are_written_again(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN segment 0 shown, and 1 published while another writer held the lease
    arrive(0, settings, clients)
    assert table.acquire("game", "other", clock(), LEASE_SECONDS)
    arrive(1, settings, clients)
    table.release("game", "other")
    write = publish._write_live_playlists

    def slow(output: Any, paths: Any, config: Any, playlist: Any, **kw: Any) -> None:
        if len(playlist.entries) == 2 and not playlist.ended:
            # WHEN a writer's write of [0, 1] stalls past its lease, meanwhile END comes
            # and 2's publisher takes the lease and closes the playlists at [0, 1, 2]
            clock.now += LEASE_SECONDS + 1
            table.mark_ended("game", {"last_sequence": 2, "at": clock()})
            assert arrive(2, settings, clients)["ended"] is True
        write(output, paths, config, playlist, **kw)

    monkeypatch.setattr(publish, "_write_live_playlists", slow)
    advance_stream("game", settings, clients)
    monkeypatch.setattr(publish, "_write_live_playlists", write)
    # (its [0, 1] landed last: the playlists show less than the closed state)
    assert shown(clients) == ["seg_00000.ts", "seg_00001.ts"]
    # THEN the stream is open to the sweep again, which writes them from the state
    assert "game" in table.open_streams()
    clock.now += 60
    sweep(settings, clients)
    closed = ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]
    assert shown(clients) == closed and recording(clients) == closed
    key = StreamPaths("game").live_playlist_key("360p")
    assert clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read().endswith(b"ENDLIST\n")
    # AND, written again, it is closed for the sweep
    assert "game" not in table.open_streams() and table.require("game").stale is None


def test_the_sweep_advances_as_of_its_scheduled_time(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    arrive(0, settings, clients)
    arrive(2, settings, clients)
    # GIVEN a sweep whose schedule fell due before the gap timeout, delivered after it
    clock.now += 60
    due = "2027-01-15T08:00:03+00:00"  # T0 + 3 s
    assert sweep(settings, clients, due)["streams"]["game"]["writer"] is True
    # THEN it declares nothing early
    assert shown(clients) == ["seg_00000.ts"]
    # AND the next one, due after the timeout, does
    sweep(settings, clients, "2027-01-15T08:00:07+00:00")
    assert shown(clients)[:2] == ["seg_00000.ts", "#EXT-X-GAP"]


def test_a_sweep_dated_in_the_future_declares_nothing_early(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    arrive(0, settings, clients)
    arrive(2, settings, clients)
    # GIVEN a sweep invoked by hand with a time to come (a schedule's is never ahead)
    clock.now += 1
    sweep(settings, clients, "2099-01-01T00:00:00Z")
    # THEN it advances as of now: 1 may still arrive, and does
    assert shown(clients) == ["seg_00000.ts"]
    arrive(1, settings, clients)
    assert shown(clients) == ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]


def test_a_late_sweep_never_shrinks_what_a_writer_that_died_had_written(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN segment 0 shown, then 1 and 3 stored while another writer held the lease
    arrive(0, settings, clients)
    clock.now = T0 + 1
    assert table.acquire("game", "other", clock(), LEASE_SECONDS)
    arrive(1, settings, clients)
    arrive(3, settings, clients)
    table.release("game", "other")
    # AND segment 4's publish at T0 + 8 wrote the playlists (2 a gap by then) and died
    # before it stored them
    clock.now = T0 + 8

    def dies(self: StreamTable, *args: Any) -> Any:
        raise RuntimeError("the writer's Lambda timed out")

    with monkeypatch.context() as patched:
        patched.setattr(StreamTable, "save", dies)
        with pytest.raises(RuntimeError):
            arrive(4, settings, clients)
    written = shown(clients)
    assert written == ["seg_00000.ts", "seg_00001.ts", "#EXT-X-GAP", "seg_00002.ts",
                       "seg_00003.ts", "seg_00004.ts"]  # fmt: skip
    # WHEN a sweep due at T0 + 4 (before 2's gap was due) comes at T0 + 9
    clock.now = T0 + 9
    sweep(settings, clients, "2027-01-15T08:00:04+00:00")
    # THEN the playlists show at least what players were shown: they never shrink
    assert shown(clients)[: len(written)] == written


def test_a_lease_outlives_no_writer_by_the_clock(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN a writer that took the lease and died
    assert table.acquire("game", "dead", clock(), LEASE_SECONDS)
    arrive(0, settings, clients)
    assert advance_stream("game", settings, clients) == {"writer": False}
    # WHEN the clock passes the lease, THEN the next writer takes over and publishes
    clock.now += LEASE_SECONDS + 1
    assert advance_stream("game", settings, clients)["writer"] is True
    assert shown(clients) == ["seg_00000.ts"]


def test_a_first_segment_published_after_its_gap_timeout_is_a_gap_never_left_out(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN segments 0, 1, 2 uploaded, and 1 and 2 published while 0 is still encoding
    for sequence in (0, 2, 1):
        table.note_upload("game", sequence)
    arrive(2, settings, clients)
    arrive(1, settings, clients)
    assert not clients.s3.list_objects_v2(Bucket=OUTPUT).get("Contents")
    # WHEN the gap timeout passes without 0
    clock.now += 6.1
    advance_stream("game", settings, clients)
    # THEN the playlist starts at 0, as a gap: it does not start at 1 and leave 0 out
    assert shown(clients) == ["#EXT-X-GAP", "seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]
    # AND 0, published late, changes the live playlist no more than any late segment
    arrive(0, settings, clients)
    assert shown(clients)[:2] == ["#EXT-X-GAP", "seg_00000.ts"]
    # AND when the stream ends, the recording has it
    table.mark_ended("game", {"last_sequence": 2, "at": clock()})
    table.count_change("game")
    assert advance_stream("game", settings, clients)["ended"] is True
    key = f"{StreamPaths('game').prefix}360p/index.m3u8"
    recording = clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read().decode()
    assert "#EXT-X-GAP" not in recording and "seg_00000.ts" in recording


def recording(clients: Clients) -> list[str]:
    return entries(clients, f"{StreamPaths('game').prefix}360p/index.m3u8")


def test_a_segment_that_comes_after_the_stream_closed_goes_into_its_recording(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN a stream that closed with segment 1 a gap (0 and 2 came, then the end marker)
    arrive(0, settings, clients)
    arrive(2, settings, clients)
    table.mark_ended("game", {"last_sequence": 2, "at": clock()})
    table.count_change("game")
    clock.now += 6.1
    assert advance_stream("game", settings, clients)["ended"] is True
    assert recording(clients) == ["seg_00000.ts", "#EXT-X-GAP", "seg_00001.ts", "seg_00002.ts"]
    live_before = shown(clients)
    manifest_key = StreamPaths("game").manifest_key
    # WHEN segment 1 is published after all (late, or started by Reconcile)
    assert arrive(1, settings, clients)["ended"] is True
    # THEN the recording and its manifest have it; the closed live playlist is unchanged
    assert recording(clients) == ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]
    manifest = json.loads(clients.s3.get_object(Bucket=OUTPUT, Key=manifest_key)["Body"].read())
    assert manifest["source"]["gaps"] == 0
    assert shown(clients) == live_before
    # AND a duplicate of it, or a segment refused after the end (a venue pushing on),
    # leaves the recording as it is: nothing of the stream's is written again
    written: list[str] = []
    clients.s3.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: written.append(params["Key"])
    )
    assert arrive(1, settings, clients)["duplicate"] is True
    refused = {"Error": "StreamEndedError", "Cause": "segment 3 came after the stream ended"}
    publish_segment({"stream": "game", "sequence": 3, "error": refused}, settings, clients)
    assert [key for key in written if key.startswith(StreamPaths("game").prefix)] == []
    assert recording(clients) == ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]


def test_a_second_end_marker_reports_the_end_the_first_one_set(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket="ingest")
    for name in ("0.ts", "1.ts", "2.ts", "END"):
        clients.s3.put_object(Bucket="ingest", Key=f"live/game/{name}", Body=b"")
    assert end_stream("game", "ingest", settings, clients)["last_sequence"] == 2
    # GIVEN a segment after the end, then the marker uploaded again
    clients.s3.put_object(Bucket="ingest", Key="live/game/3.ts", Body=b"")
    clients.s3.put_object(Bucket="ingest", Key="live/game/END", Body=b"")
    # WHEN it is read / THEN it says where the stream ended: the first marker's segment
    assert end_stream("game", "ingest", settings, clients)["last_sequence"] == 2


def test_an_end_marker_before_any_segment_refuses_the_first_by_name_not_a_minus_one(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket="ingest")
    # GIVEN a venue whose script sends END before its first segment (an empty body)
    clients.s3.put_object(Bucket="ingest", Key="live/game/END", Body=b"")
    assert end_stream("game", "ingest", settings, clients)["last_sequence"] == -1
    # WHEN its first segment comes
    record = StreamTable(clients.dynamodb, settings.live_table).require("game")
    with pytest.raises(StreamEndedError) as refused:
        record.refuse_past_the_end(0)
    # THEN the refusal says the stream ended before any segment, never "at segment -1"
    assert "-1" not in str(refused.value)
    assert "segment 0 came after the stream ended before its first segment" in str(refused.value)


def test_an_end_marker_whose_body_is_past_its_bound_ends_at_the_highest_upload(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket="ingest")
    for name in ("0.ts", "1.ts", "2.ts"):
        clients.s3.put_object(Bucket="ingest", Key=f"live/game/{name}", Body=b"")
    # GIVEN an END whose body names segment 1 but is padded past what a record may hold
    # (one of gigabytes would end LiveIngest out of memory, on every retry)
    body = b'{"last_sequence": 1}' + b" " * MAX_RECORD_BYTES
    clients.s3.put_object(Bucket="ingest", Key="live/game/END", Body=body)
    # WHEN it is read / THEN its body is ignored: the stream ends at its highest upload
    assert end_stream("game", "ingest", settings, clients)["last_sequence"] == 2


def _idle_stream(sequences: tuple[int, ...], settings: Settings, clients: Clients) -> StreamTable:
    """Stream ``idle`` (idle_seconds 600) with ``sequences`` published."""
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create("idle")
    table.configure("idle", stream_settings(idle_seconds=600.0).to_dict())
    for sequence in sequences:
        publish_segment(
            {"stream": "idle", "sequence": sequence,
             "result": {"duration": 2.0, "bytes": {"360p": 1000}}},
            settings, clients,
        )  # fmt: skip
    return table


def test_a_stream_whose_encoder_never_comes_back_is_ended_after_its_idle_seconds(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    # GIVEN a stream that showed segments 0 and 2 (1 a gap), then heard nothing more
    table = _idle_stream((0, 2), settings, clients)
    clock.now += 7
    assert advance_stream("idle", settings, clients)["next_sequence"] == 3
    # WHEN the sweep looks just short of idle_seconds after that, it stays open
    clock.now += 599
    assert advance_stream("idle", settings, clients)["ended"] is False
    # THEN once idle_seconds have passed, it is ended at its last segment, as END would
    clock.now += 2
    assert advance_stream("idle", settings, clients)["ended"] is True
    record = table.get("idle")
    assert record is not None and record.closed and record.ending is not None
    assert record.ending["last_sequence"] == 2
    key = f"{StreamPaths('idle').prefix}360p/index.m3u8"
    body = clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read().decode()
    assert body.count("seg_") == 3 and "#EXT-X-ENDLIST" in body
    # AND a stream that never sets idle_seconds (the dataclass's 0) is never ended so
    clock.now += 10**6
    assert advance_stream("game", settings, clients)["ended"] is False


def test_a_segment_uploaded_within_idle_seconds_and_still_encoding_keeps_the_stream_open(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    # GIVEN a stream that showed 0, then lost its uplink; 1 is uploaded 595 s later
    table = _idle_stream((0,), settings, clients)
    clock.now += 595
    table.note_upload("idle", 1, clock())
    # WHEN the sweep looks 601 s after 0 came, while 1 is still encoding
    clock.now += 6
    assert advance_stream("idle", settings, clients)["ended"] is False
    # THEN 1 is shown when it comes, not refused as past an idle end
    clock.now += 10
    publish_segment(
        {"stream": "idle", "sequence": 1, "result": {"duration": 2.0, "bytes": {"360p": 1000}}},
        settings, clients,
    )  # fmt: skip
    assert advance_stream("idle", settings, clients)["next_sequence"] == 2
    # AND idle_seconds after it came, with nothing more, the stream ends at it
    clock.now += 600
    assert advance_stream("idle", settings, clients)["ended"] is True
    assert table.require("idle").ending["last_sequence"] == 1


def test_the_lowest_upload_is_kept_whatever_order_segments_are_uploaded_in(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    for sequence in (3, 1, 2, 1, 4):
        table.note_upload("game", sequence)
    assert table.require("game").lowest_upload == 1
    table.note_upload("other", 7)
    assert table.require("other").lowest_upload == 7


def test_an_encrypted_streams_playlists_name_its_key_and_each_segments_iv(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    # GIVEN a stream declared encrypted, its key made (as LiveProbe makes it)
    keys_table = create_table(clients.dynamodb, Stack(ROOT), "KeysTable")
    clients = replace(clients, kms=boto3.client("kms", region_name="us-east-1"))
    master = clients.kms.create_key()["KeyMetadata"]["KeyId"]
    settings = replace(
        settings,
        keys_table=keys_table,
        content_key_kms_key=master,
        key_service_url="https://keys.example/",
    )
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create("cam")
    table.configure("cam", stream_settings(encryption="aes-128").to_dict())
    KeyStore.of(settings, clients).make_once(StreamPaths("cam").asset)
    # WHEN segments 0 and 2 arrive and 1 becomes a gap
    for sequence in (0, 2):
        result = {"duration": 2.0, "bytes": {"360p": 1000}}
        publish_segment(
            {"stream": "cam", "sequence": sequence, "result": result}, settings, clients
        )
    clock.now += 6.1
    advance_stream("cam", settings, clients)
    # THEN each segment follows the key service's URI for the stream and its own IV
    paths = StreamPaths("cam")
    body = clients.s3.get_object(Bucket=OUTPUT, Key=paths.live_playlist_key("360p"))["Body"]
    lines = body.read().decode().splitlines()
    uri = "https://keys.example/keys/live.cam"
    for name in ("seg_00000.ts", "seg_00002.ts"):
        iv = aes128.segment_iv(f"360p/{name}")
        assert lines[lines.index(name) - 2] == aes128.key_line(uri, iv), lines
    # AND a gap has no key of its own
    gap = lines.index("#EXT-X-GAP")
    assert not lines[gap - 1].startswith("#EXT-X-KEY") and "#EXT-X-KEY" not in lines[gap + 1]
    # AND the recording, when the stream ends, says how it is protected
    table.mark_ended("cam", {"last_sequence": 2, "at": clock()})
    table.count_change("cam")
    assert advance_stream("cam", settings, clients)["ended"] is True
    manifest = json.loads(
        clients.s3.get_object(Bucket=OUTPUT, Key=paths.manifest_key)["Body"].read()
    )
    key_id = KeyStore.of(settings, clients).key_id(StreamPaths("cam").asset)
    assert manifest["encryption"] == {"method": "aes-128", "key_id": key_id, "key_uri": uri}
    recording = clients.s3.get_object(Bucket=OUTPUT, Key=f"{paths.prefix}360p/index.m3u8")
    assert recording["Body"].read().decode().count("#EXT-X-KEY") == 2


def test_an_encrypted_stream_without_a_key_service_is_a_named_error(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create("cam")
    table.configure("cam", stream_settings(encryption="aes-128").to_dict())
    result = {"duration": 2.0, "bytes": {"360p": 1000}}
    with pytest.raises(ConfigurationError, match="KEY_SERVICE_URL"):
        publish_segment({"stream": "cam", "sequence": 0, "result": result}, settings, clients)
    # AND nothing was published in the clear
    assert not clients.s3.list_objects_v2(Bucket=OUTPUT).get("Contents")


def test_a_rotating_streams_segments_name_their_periods_keys(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    settings = replace(settings, key_service_url="https://keys.example")
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create("cam")
    table.configure("cam", stream_settings(encryption="aes-128", key_rotation=2).to_dict())
    for sequence in range(5):
        result = {"duration": 2.0, "bytes": {"360p": 1000}}
        publish_segment(
            {"stream": "cam", "sequence": sequence, "result": result}, settings, clients
        )
    body = clients.s3.get_object(Bucket=OUTPUT, Key=StreamPaths("cam").live_playlist_key("360p"))
    keys = [line for line in body["Body"].read().decode().splitlines() if "EXT-X-KEY" in line]
    periods = [line.split('URI="')[1].split('"')[0].rsplit("/", 1)[1] for line in keys]
    assert periods == ["0", "0", "1", "1", "2"]


def test_one_stream_that_fails_to_advance_holds_up_no_other(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    # GIVEN a second open stream whose advance fails, listed before the first
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create("broken")
    arrive(0, settings, clients)
    arrive(2, settings, clients)
    monkeypatch.setattr(table.__class__, "open_streams", lambda self: ["broken", "game"])
    real = advance_stream

    def advance(stream: str, *args: Any) -> dict[str, Any]:
        if stream == "broken":
            raise ValueError("its record is unreadable")
        return real(stream, *args)

    monkeypatch.setattr("workflow.live.sweep.advance_stream", advance)
    # WHEN the sweep runs past the gap timeout
    clock.now += 60
    # THEN it fails, naming the broken stream's error, but the other stream was advanced
    with pytest.raises(ValueError, match="unreadable"):
        sweep(settings, clients)
    assert shown(clients) == ["seg_00000.ts", "#EXT-X-GAP", "seg_00001.ts", "seg_00002.ts"]


@pytest.fixture(scope="module")
def two_uploads(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, bytes]]:
    """Two fMP4 encoders' first segments of other pictures (init, segment): one number's
    segment from two encoder runs, as a restarted encoder that counts from 0 again
    uploads. (fMP4 is read through the S3 client, which moto serves in this process.)"""
    root = tmp_path_factory.mktemp("uploads")
    made = []
    for pattern in ("testsrc", "testsrc2"):
        first = synth.fmp4_stream(
            root / pattern, "-f", "lavfi", "-i", f"{pattern}=size=160x90:rate=30", "-t", "1",
            "-c:v", "libx264", "-preset", "ultrafast",
        )[0]  # fmt: skip
        made.append(((root / pattern / "init.mp4").read_bytes(), first.read_bytes()))
    return made


def _upload_and_probe(
    upload: tuple[bytes, bytes], settings: Settings, clients: Clients
) -> dict[str, Any]:
    """Upload an encoder's init and its segment 0, and run LiveProbe on the segment's event."""
    clients.s3.create_bucket(Bucket="ingest")
    clients.s3.put_object(Bucket="ingest", Key="live/game/init.mp4", Body=upload[0])
    put = clients.s3.put_object(Bucket="ingest", Key="live/game/0.m4s", Body=upload[1])
    source = {"bucket": "ingest", "key": "live/game/0.m4s", "etag": put["ETag"].strip('"')}
    event = {"stream": "game", "sequence": 0, "source": source}
    return probe_segment(event, settings, clients, lambda: 60.0)


def _transcoded(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """The event as the state machine hands it to LivePublish after LiveTranscode."""
    result = transcode_segment(event, settings, clients, lambda: 60.0)
    return {**event, "result": {"duration": result["duration"], "bytes": result["bytes"]}}


def _failed(event: dict[str, Any], error: Exception, settings: Settings, clients: Clients) -> None:
    """What the state machine's RecordFailure does with a step's error."""
    caught = {"Error": type(error).__name__, "Cause": json.dumps({"errorMessage": str(error)})}
    publish_segment({**event, "error": caught}, settings, clients)


def _counted(name: str) -> float:
    """What this process's metric set holds of ``name`` (the record the handler logs)."""
    return sum(metrics.metrics.metric_set.get(name, {}).get("Value", []))


def test_a_segment_delivered_again_after_it_was_published_is_counted_a_duplicate(
    live: tuple[Settings, Clients], two_uploads: list[tuple[bytes, bytes]]
) -> None:
    settings, clients = live
    # GIVEN segment 0 uploaded, probed, encoded and published
    first = _transcoded(_upload_and_probe(two_uploads[0], settings, clients), settings, clients)
    publish_segment(first, settings, clients)
    metrics.metrics.clear_metrics()
    try:
        # WHEN its event is delivered again (S3 delivers at least once; a venue sends twice)
        again = _upload_and_probe(two_uploads[0], settings, clients)
        # THEN LiveProbe ends that execution as a duplicate, and the dashboard's
        # "duplicates" line (LiveDuplicateSegments) counts it
        assert again["duplicate"] is True
        assert _counted(metrics.LIVE_DUPLICATE_SEGMENTS) == 1
    finally:
        metrics.metrics.clear_metrics()


def test_a_duplicate_publish_reads_the_stored_arrival_from_its_refused_write(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    # GIVEN segment 0 published
    arrive(0, settings, clients)
    read: list[str] = []
    clients.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.GetItem",
        lambda params, **_: read.append(params["Key"]["item"]["S"]),
    )
    # WHEN its publish runs again (its event delivered twice)
    assert arrive(0, settings, clients)["duplicate"] is True
    # THEN whether it still needs counting comes from the refused put itself
    # (ReturnValuesOnConditionCheckFailure): the arrival is not read again
    assert [item for item in read if item.startswith("seg#")] == []


def test_another_upload_of_a_segment_being_published_never_writes_over_its_files(
    live: tuple[Settings, Clients], two_uploads: list[tuple[bytes, bytes]]
) -> None:
    settings, clients = live
    segment = {"Bucket": OUTPUT, "Key": StreamPaths("game").segment_key("360p", 0)}
    # GIVEN segment 0 encoded from its first upload (A), not yet published
    first = _transcoded(_upload_and_probe(two_uploads[0], settings, clients), settings, clients)
    written = clients.s3.get_object(**segment)["ETag"]
    # WHEN other bytes are uploaded under its number meanwhile (B: an encoder restarted)
    # and pass the probe, which finds nothing published yet
    second = _upload_and_probe(two_uploads[1], settings, clients)
    assert second["duplicate"] is False
    # THEN B's encode is refused by name and writes none of the segment's files
    with pytest.raises(SegmentReusedError, match="segment 0 is being published from another"):
        transcode_segment(second, settings, clients, lambda: 60.0)
    assert clients.s3.get_object(**segment)["ETag"] == written
    # AND B's failure, recorded, is no arrival of segment 0: it shows no gap
    _failed(second, SegmentReusedError("refused"), settings, clients)
    table = StreamTable(clients.dynamodb, settings.live_table)
    assert table.arrival("game", 0) is None
    # AND A is published, its files as A's encode wrote them
    assert publish_segment(first, settings, clients)["duplicate"] is False
    assert shown(clients) == ["seg_00000.ts"]
    assert (table.arrival("game", 0) or {})["upload"].endswith(first["source"]["etag"])
    assert clients.s3.get_object(**segment)["ETag"] == written
    # AND B uploaded again now is refused by its probe, as any other bytes after publishing
    with pytest.raises(SegmentReusedError, match="segment 0 was published already"):
        _upload_and_probe(two_uploads[1], settings, clients)


def test_a_failed_upload_leaves_its_segments_number_to_a_mended_one_once_its_claim_ran_out(
    live: tuple[Settings, Clients], two_uploads: list[tuple[bytes, bytes]], clock: SteppedClock
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN segment 0's upload A encoded, whose publishing then failed for good
    first = _transcoded(_upload_and_probe(two_uploads[0], settings, clients), settings, clients)
    _failed(first, RuntimeError("Publish gave up"), settings, clients)
    assert (table.arrival("game", 0) or {})["failed"] is True
    segment = {"Bucket": OUTPUT, "Key": StreamPaths("game").segment_key("360p", 0)}
    unpublished = clients.s3.get_object(**segment)["ETag"]
    # WHEN the venue uploads the segment again, mended (B), at once
    second = _upload_and_probe(two_uploads[1], settings, clients)
    # THEN B waits for A's claim (another execution of A may still be writing), told so
    # (and tried again by Reconcile: the error says nothing against B's bytes)
    with pytest.raises(SegmentClaimedError, match=r"by an upload whose attempt failed .*Runtime"):
        transcode_segment(second, settings, clients, lambda: 60.0)
    assert "SegmentClaimedError" in TRIED_AGAIN
    assert clients.s3.get_object(**segment)["ETag"] == unpublished
    # ...and once it ran out (as when Reconcile starts B again), B takes the number
    clock.now += CLAIM_SECONDS + 1
    second = _transcoded(second, settings, clients)
    assert clients.s3.get_object(**segment)["ETag"] != unpublished
    assert publish_segment(second, settings, clients)["duplicate"] is False
    stored = table.arrival("game", 0) or {}
    assert not stored["failed"] and stored["upload"].endswith(second["source"]["etag"])


def test_an_encode_refused_its_claim_says_which_upload_stands_in_its_way(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    first, mended = "/" + "a" * 32, "/" + "b" * 32
    # GIVEN segment 0's upload A failed, to be tried again, and a mended upload B claimed it
    failed = {"failed": True, "upload": first, "try_again": True, "at": 1.0, "duration": None}
    assert table.record_arrival("game", 0, failed)
    assert _claimed(table, "game", 0, mended, 100.0)
    # THEN A tried again is refused for B's claim, not taken for a duplicate of itself
    with pytest.raises(SegmentReusedError, match=r"segment 0 is being published .*ETag bbbb"):
        _claimed(table, "game", 0, first, 101.0)
    # AND once B is published, A is refused for what was published
    assert table.record_arrival("game", 0, {**failed, "failed": False, "upload": mended})
    with pytest.raises(SegmentReusedError, match=r"segment 0 was published already .*ETag bbbb"):
        _claimed(table, "game", 0, first, 102.0)
    # AND B's bytes again (another version of them) write nothing and are no error
    assert not _claimed(table, "game", 0, "v2" + mended, 103.0)
    # AND once the stream has ended, A's refusal asks for a new stream name: numbering on
    # would only meet StreamEndedError
    table.create("game")
    assert table.mark_ended("game", {"last_sequence": 0, "at": 104.0})
    with pytest.raises(SegmentReusedError, match="ended at segment 0: a new broadcast needs"):
        _claimed(table, "game", 0, first, 105.0)


def _stream_json_after_the_start(body: bytes, settings: Settings, clients: Clients) -> list[Any]:
    """``live/game/stream.json`` uploaded, and its event, once the stream has settings."""
    clients.s3.create_bucket(Bucket=INGEST)
    clients.s3.put_object(Bucket=INGEST, Key="live/game/stream.json", Body=body)
    obj = {"key": "live/game/stream.json", "eTag": "e1"}
    return on_ingest([{"s3": {"bucket": {"name": INGEST}, "object": obj}}], settings, clients)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"encryption": "aes-128"}', "encryption 'aes-128' (the stream runs with 'none')"),
        (b'{"window": 6, "segment_seconds": 2}', "window 6 (the stream runs with 0)"),
        (b'{"ladder": "720:2800,360:1200"}', "ladder '720:2800,360:1200'"),
        (b'{"encryption": "aes-128"', "stream.json is not JSON"),
        (b'{"windows": 6}', "unknown settings: windows"),
    ],
)
def test_a_stream_json_that_comes_too_late_to_apply_is_recorded_not_dropped(
    live: tuple[Settings, Clients], body: bytes, said: str
) -> None:
    settings, clients = live
    # GIVEN a stream whose first segment fixed its settings (one 360p rung at 800 kbps,
    # no encryption, window 0), WHEN a stream.json asking for others comes
    seen = _stream_json_after_the_start(body, settings, clients)
    # THEN it is refused by name, and kept as the stream's failure record
    assert seen == [{"key": "live/game/stream.json", "refused": "StreamConfigError"}]
    record = clients.s3.get_object(Bucket=OUTPUT, Key=StreamPaths("game").config_failure_key)
    failure = json.loads(record["Body"].read())
    assert failure["error"] == "StreamConfigError" and failure["stream"] == "game"
    assert said in failure["cause"] and "not applied" in failure["cause"]
    assert failure["input"] == {"bucket": INGEST, "key": "live/game/stream.json", "etag": "e1"}


@pytest.mark.parametrize(
    "body",
    # the settings it runs with; a ladder whose rungs above the picture the stream drops
    [b'{"window": 0, "segment_seconds": 2.0}', b'{"ladder": "1080:5000,360:800"}', b"{}"],
)
def test_a_stream_json_sent_again_as_the_stream_runs_is_no_failure(
    live: tuple[Settings, Clients], body: bytes
) -> None:
    settings, clients = live
    seen = _stream_json_after_the_start(body, settings, clients)
    assert seen == [
        {"key": "live/game/stream.json", "skipped": "the stream runs with these settings"}
    ]
    listed = clients.s3.list_objects_v2(Bucket=OUTPUT, Prefix="failures/")
    assert listed.get("KeyCount", 0) == 0


def _refused_jump(stream: str, sequence: int, settings: Settings, clients: Clients) -> None:
    """An upload numbered past the stream's reach, refused by LiveProbe."""
    error = {"Error": "SequenceJumpError", "Cause": f"segment {sequence} is past the reach"}
    publish_segment({"stream": stream, "sequence": sequence, "error": error}, settings, clients)


def test_an_upload_refused_as_a_jump_makes_no_gap_of_the_numbers_before_it(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    # GIVEN a stream at segment 99, and one upload with a broken counter: 3750
    for sequence in range(100):
        clock.now += 2
        arrive(sequence, settings, clients)
    _refused_jump("game", 3750, settings, clients)
    # WHEN the encoder carries on in order, a segment every 2 s (gap_seconds is 6)
    for sequence in range(100, 160):
        clock.now += 2
        arrive(sequence, settings, clients)
    # THEN every segment is shown, and not one gap: the refused number is not where the
    # stream is, so nothing before it counts as waited for
    assert shown(clients)[-1] == "seg_00159.ts"
    assert "#EXT-X-GAP" not in shown(clients)
    # AND once an outage brings the stream to that number, it waits for the venue's own
    # segment there, as for any other, rather than showing the refused one as a gap
    arrive(3700, settings, clients)
    clock.now += 7
    advance_stream("game", settings, clients)
    for sequence in range(3701, 3750):
        clock.now += 2
        arrive(sequence, settings, clients)
    clock.now += 5
    advance_stream("game", settings, clients)
    assert shown(clients)[-1] == "seg_03749.ts"
    arrive(3750, settings, clients)
    assert shown(clients)[-2:] == ["seg_03749.ts", "seg_03750.ts"]
    assert shown(clients).count("#EXT-X-GAP") == 3700 - 160


@pytest.mark.parametrize("window", [0, 6])
def test_an_outage_of_thousands_of_segments_is_one_gap_event(
    live: tuple[Settings, Clients], clock: SteppedClock, window: int
) -> None:
    settings, clients, put = _announcing(live)
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create("cam")
    table.configure("cam", stream_settings(window=window).to_dict())
    result = {"duration": 2.0, "bytes": {"360p": 1000}}
    # GIVEN segment 0, an uplink lost for 3,000 numbers, and a failed segment after them
    for sequence in (0, 3001):
        publish_segment({"stream": "cam", "sequence": sequence, "result": result}, settings,
                        clients)  # fmt: skip
    refused = {"Error": "SegmentTooLongError", "Cause": "segment 3002 is 9 s long"}
    publish_segment({"stream": "cam", "sequence": 3002, "error": refused}, settings, clients)
    # WHEN the wait has passed
    clock.now += 7
    advance_stream("cam", settings, clients)
    # THEN the 3,000 gaps are announced as one run, whatever window the playlists slide,
    # and the failed one as another
    gaps = [e for e in put if e["type"] == "Live Stream Gap"]
    assert [(g["sequence"], g["last_sequence"], g["gaps"], g["reason"]) for g in gaps] == [
        (1, 3000, 3000, "missing"),
        (3002, 3002, 1, "failed"),
    ]
    body = clients.s3.get_object(Bucket=OUTPUT, Key=StreamPaths("cam").live_playlist_key("360p"))
    shown = [line for line in body["Body"].read().decode().splitlines() if line.startswith("seg_")]
    assert len(shown) == (window or 3003) and shown[-1] == "seg_03002.ts"


def _a_writer_died_after_announcing_a_gap(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, Clients, list[dict[str, Any]]]:
    """A stream whose segments 1 and 2 failed, a second apart, with nothing after them,
    whose writer (the sweep) announced 1's gap once it had waited ``gap_seconds`` (6 s;
    2 still waiting) and died before it saved: the settings, clients and events put."""
    settings, clients, put = _announcing(live)
    arrive(0, settings, clients)
    too_long = {"Error": "SegmentTooLongError", "Cause": "9 s long"}
    publish_segment({"stream": "game", "sequence": 1, "error": too_long}, settings, clients)
    clock.now += 1
    publish_segment({"stream": "game", "sequence": 2, "error": too_long}, settings, clients)
    clock.now += 5.5
    save = StreamTable.save
    died: list[bool] = []

    def dies_once(self: StreamTable, *args: Any) -> Any:
        if not died:
            died.append(True)
            raise RuntimeError("the writer's Lambda timed out")
        return save(self, *args)

    monkeypatch.setattr(StreamTable, "save", dies_once)
    with pytest.raises(RuntimeError):
        advance_stream("game", settings, clients)
    gaps = [e for e in put if e["type"] == "Live Stream Gap"]
    assert [(g["sequence"], g["last_sequence"]) for g in gaps] == [(1, 1)]
    return settings, clients, put


def test_a_gap_run_a_dead_writer_announced_is_never_announced_twice(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a writer that announces segment 1's gap (it failed) and dies before it saves
    settings, clients, put = _a_writer_died_after_announcing_a_gap(live, clock, monkeypatch)
    # WHEN the next writer (segment 3's publish) finds the run grown (1 and 2, as 3
    # came) and announces it
    clock.now += 2
    arrive(3, settings, clients)
    # THEN each gap was announced once: 1 by the writer that died, 2 by the next
    gaps = [e for e in put if e["type"] == "Live Stream Gap"]
    assert [(g["sequence"], g["last_sequence"]) for g in gaps] == [(1, 1), (2, 2)]
    assert len({g["event_id"] for g in gaps}) == 2
    assert shown(clients)[-3:] == ["#EXT-X-GAP", "seg_00002.ts", "seg_00003.ts"]


def test_an_idle_stream_ends_at_its_last_segment_not_at_an_upload_refused_as_a_jump(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    table = _idle_stream((0, 1, 2), settings, clients)
    # GIVEN a broken counter's upload, then an encoder that died without END
    _refused_jump("idle", 50000, settings, clients)
    # WHEN idle_seconds pass
    clock.now += 601
    advance_stream("idle", settings, clients)
    # THEN the stream is ended and closed at segment 2, as END would have
    record = table.get("idle")
    assert record is not None and record.ending is not None and record.closed
    assert record.ending["last_sequence"] == 2
    key = f"{StreamPaths('idle').prefix}360p/index.m3u8"
    body = clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read().decode()
    assert body.count("seg_") == 3 and "#EXT-X-ENDLIST" in body


@pytest.mark.parametrize("ended_by", ["END", "idle"])
def test_a_stray_published_far_ahead_before_the_playlists_began_does_not_keep_the_stream_open(
    live: tuple[Settings, Clients], clock: SteppedClock, ended_by: str
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket=INGEST)
    # GIVEN a stray 123456789.ts, published beside segment 0 before the playlists began
    # (nothing shown yet to refuse it as a jump from), then segments 1 to 4
    table = _idle_stream((), settings, clients)
    for sequence in (0, 123456789, 1, 2, 3, 4):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/idle/{sequence}.ts", Body=b"x")
        clock.now += 2
        _idle_stream((sequence,), settings, clients)
    # WHEN the stream ends, by END (which ends at a published segment: the stray) or by
    # its idle timeout (at the last segment it has: the stray)
    if ended_by == "END":
        clients.s3.put_object(Bucket=INGEST, Key="live/idle/END", Body=b"")
        assert end_stream("idle", INGEST, settings, clients)["last_sequence"] == 123456789
    else:
        clock.now += 601
        advance_stream("idle", settings, clients)
        assert table.require("idle").ending == {"last_sequence": 123456789, "at": clock()}
    # THEN once nothing within the playlists' reach has come for the gap timeout, the
    # stream ends at what it shows and closes, its playlists ended and recorded (they
    # waited for the stray for good, the stream open, swept every minute)
    clock.now += 3600
    advance_stream("idle", settings, clients)
    record = table.require("idle")
    assert record.closed and record.ending is not None and record.ending["last_sequence"] == 4
    key = f"{StreamPaths('idle').prefix}360p/index.m3u8"
    body = clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read().decode()
    assert body.count("seg_") == 5 and "#EXT-X-ENDLIST" in body


def test_end_without_a_number_ends_at_the_highest_upload_from_the_streams_first(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket=INGEST)
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create("venue")
    table.configure("venue", stream_settings(first_sequence=10000).to_dict())
    # GIVEN a stream from 10000 on, 10008 and 10009 still being encoded, and a restarted
    # encoder's 0.ts (refused: below the stream's first segment)
    for sequence in range(10000, 10010):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/venue/{sequence}.ts", Body=b"x")
        if sequence < 10008:
            clock.now += 2
            publish_segment(
                {"stream": "venue", "sequence": sequence,
                 "result": {"duration": 2.0, "bytes": {"360p": 1000}}},
                settings, clients,
            )  # fmt: skip
    clients.s3.put_object(Bucket=INGEST, Key="live/venue/0.ts", Body=b"x")
    error = {"Error": "SequenceBeforeStartError", "Cause": "segment 0 is below 10000"}
    publish_segment({"stream": "venue", "sequence": 0, "error": error}, settings, clients)
    # WHEN an END with an empty body lands
    clients.s3.put_object(Bucket=INGEST, Key="live/venue/END", Body=b"")
    ended = end_stream("venue", INGEST, settings, clients)
    # THEN the stream ends at its highest upload, and waits for the two on their way
    assert ended["last_sequence"] == 10009 and ended["ended"] is False


def test_an_end_naming_a_sequence_below_one_published_ends_at_that_one(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients, put = _announcing(live)
    clients.s3.create_bucket(Bucket=INGEST)
    # GIVEN segments 0 to 5 uploaded and published but 3, still on its way
    for sequence in range(6):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"x")
        if sequence != 3:
            arrive(sequence, settings, clients)
    assert len(shown(clients)) == 3
    # WHEN an END naming segment 3 lands, then 3 is published
    clients.s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b'{"last_sequence": 3}')
    assert end_stream("game", INGEST, settings, clients)["last_sequence"] == 5
    arrive(3, settings, clients)
    # THEN 4 and 5, published already, are shown and recorded, as they would have been
    # had 3 come before the marker; the end is announced once with all six
    every = [f"seg_{sequence:05d}.ts" for sequence in range(6)]
    assert shown(clients) == every and recording(clients) == every
    ended = [e for e in put if e["type"] == "Live Stream Ended"]
    assert [(e["segments"], e["gaps"]) for e in ended] == [(6, 0)]


def test_an_end_waits_for_segments_still_encoding_not_for_ones_never_uploaded(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket=INGEST)
    # GIVEN 0 to 6 uploaded but 3 (the venue lost it), 0, 1 and 6 published, 2, 4 and 5
    # still encoding (a cold start, a throttled account) when END lands
    for sequence in (0, 1, 2, 4, 5, 6):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"x")
    for sequence in (0, 1, 6):
        arrive(sequence, settings, clients)
    clients.s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b"")
    assert end_stream("game", INGEST, settings, clients)["last_sequence"] == 6
    table = StreamTable(clients.dynamodb, settings.live_table)
    assert table.require("game").ending["on_its_way"] == [[2, 2], [4, 5]]
    # WHEN the marker and 6 have waited past gap_seconds (6 s) with none of them published
    clock.now += 60
    assert advance_stream("game", settings, clients)["ended"] is False
    # THEN nothing still encoding is a gap; once 2 is published, 3 (never uploaded) is
    assert shown(clients) == ["seg_00000.ts", "seg_00001.ts"]
    arrive(2, settings, clients)
    assert shown(clients)[2:] == ["seg_00002.ts", "#EXT-X-GAP", "seg_00003.ts"]
    # AND 4 is shown when it comes; 5, whose job died unheard, is a gap once an execution
    # could no longer be publishing it, and the stream closes
    arrive(4, settings, clients)
    clock.now += rules.IN_FLIGHT_SECONDS - 60 - 0.1
    assert advance_stream("game", settings, clients)["ended"] is False
    clock.now += 0.2
    assert advance_stream("game", settings, clients)["ended"] is True
    assert shown(clients)[-4:] == ["seg_00004.ts", "#EXT-X-GAP", "seg_00005.ts", "seg_00006.ts"]


def test_the_numbers_an_ending_waits_for_are_ranges_within_the_stream_and_bounded() -> None:
    # GIVEN uploads from 0 to 999, every other one arrived, and some outside the stream
    uploaded, arrived = [*range(1000), 5000, 3, 3], set(range(0, 1000, 2))
    # THEN the ranges are the missing ones from the first to the last, lowest first...
    assert on_its_way([4, 5, 6, 9, 2, 12], {5}, 3, 10) == [[4, 4], [6, 6], [9, 9]]
    # ...and at most MAX_ON_ITS_WAY of them (the record holds them)
    waiting = on_its_way(uploaded, arrived, 0, 1000)
    assert len(waiting) == MAX_ON_ITS_WAY and waiting[:2] == [[1, 1], [3, 3]]


def test_an_end_handled_late_ends_where_the_marker_was_uploaded_not_where_it_ran(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket=INGEST)
    # GIVEN 0 and 1 published, then END, then the venue pushing on (2)
    for sequence in (0, 1):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"x")
        arrive(sequence, settings, clients)
    clients.s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b"")
    time.sleep(1.1)  # (S3 dates objects to the second)
    clients.s3.put_object(Bucket=INGEST, Key="live/game/2.ts", Body=b"x")
    # WHEN END's event is handled only now (a throttled or retried LiveIngest)
    clock.now += 10
    # THEN the stream ends at 1, as it would have on time: 2 fails as past the end
    assert end_stream("game", INGEST, settings, clients)["last_sequence"] == 1
    with pytest.raises(StreamEndedError):
        arrive(2, settings, clients)


def test_a_segment_encoded_while_the_end_landed_below_it_fails_by_name(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket=INGEST)
    # GIVEN a stream ended at segment 2, with 3 past its probe (encoded) when END landed
    for sequence in range(3):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"x")
        arrive(sequence, settings, clients)
    clients.s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b'{"last_sequence": 2}')
    assert end_stream("game", INGEST, settings, clients)["ended"] is True
    closed = shown(clients), recording(clients)
    # WHEN 3 is published / THEN it fails by name, for the failure path to record,
    # rather than succeed and be shown nowhere
    with pytest.raises(StreamEndedError, match="after the stream ended at segment 2"):
        arrive(3, settings, clients)
    refused = {"Error": "StreamEndedError", "Cause": "segment 3 came after the stream ended"}
    publish_segment({"stream": "game", "sequence": 3, "error": refused}, settings, clients)
    assert (shown(clients), recording(clients)) == closed
    # AND it is kept as the failure it is, not counted as published
    table = StreamTable(clients.dynamodb, settings.live_table)
    arrival = table.arrival("game", 3)
    assert arrival is not None and arrival["error"] == "StreamEndedError"
    assert table.published("game") == 3


def test_a_segment_past_an_end_recorded_before_end_last_was_kept_is_refused_unpublished(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket=INGEST)
    # GIVEN a stream ended at segment 2 by a version that kept no end_last (the record's
    # shape before segments were admitted), and segment 3 encoded when the new one runs
    for sequence in range(3):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"x")
        arrive(sequence, settings, clients)
    clients.s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b'{"last_sequence": 2}')
    assert end_stream("game", INGEST, settings, clients)["ended"] is True
    clients.dynamodb.update_item(
        TableName=settings.live_table,
        Key={"stream": {"S": "game"}, "item": {"S": store.STREAM_ITEM}},
        UpdateExpression="REMOVE end_last, admitted",
    )
    closed = shown(clients), recording(clients)
    # WHEN 3 is published / THEN it fails by name, as on a record the new version ended
    with pytest.raises(StreamEndedError, match="after the stream ended at segment 2"):
        arrive(3, settings, clients)
    refused = {"Error": "StreamEndedError", "Cause": "segment 3 came after the stream ended"}
    publish_segment({"stream": "game", "sequence": 3, "error": refused}, settings, clients)
    assert (shown(clients), recording(clients)) == closed
    # AND it is kept as the failure it is, not counted as published
    table = StreamTable(clients.dynamodb, settings.live_table)
    arrival = table.arrival("game", 3)
    assert arrival is not None and arrival["error"] == "StreamEndedError"
    assert table.published("game") == 3


def test_a_segment_published_while_the_end_marker_looked_is_within_the_end(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    clients.s3.create_bucket(Bucket=INGEST)
    for sequence in range(4):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"x")
        if sequence < 3:
            arrive(sequence, settings, clients)
    clients.s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b'{"last_sequence": 2}')
    # GIVEN segment 3 published just after END looked at the arrivals (it saw 0 to 2),
    # before it recorded its ending
    looked = StreamTable.each_arrival

    def then_three_is_published(self: StreamTable, stream: str, first: int = 0) -> Any:
        found = list(looked(self, stream, first))
        if 3 not in dict(found) and not getattr(clock, "published", False):
            clock.published = True  # type: ignore[attr-defined]
            arrive(3, settings, clients)
        return iter(found)

    monkeypatch.setattr(StreamTable, "each_arrival", then_three_is_published)
    # WHEN the end is recorded / THEN it takes 3 in: shown and recorded, not lost
    assert end_stream("game", INGEST, settings, clients)["last_sequence"] == 3
    every = [f"seg_{sequence:05d}.ts" for sequence in range(4)]
    assert shown(clients) == every and recording(clients) == every


def _announcing(
    live: tuple[Settings, Clients],
) -> tuple[Settings, Clients, list[dict[str, Any]]]:
    """The live stack with an event bus, whose clients' bus keeps what is put on it."""
    settings, clients = live
    put: list[dict[str, Any]] = []

    class Bus:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            put.extend(json.loads(e["Detail"]) | {"type": e["DetailType"]} for e in Entries)
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}

    return replace(settings, event_bus="bus"), replace(clients, events=Bus()), put


def test_a_stream_whose_every_segment_failed_ends_with_no_recording(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients, put = _announcing(live)
    clients.s3.create_bucket(Bucket=INGEST)
    # GIVEN a stream with settings, each of whose segments failed (too long for them)
    for sequence in range(3):
        clients.s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"x")
        refused = {"Error": "SegmentTooLongError", "Cause": f"segment {sequence} is 6 s long"}
        source = {"bucket": INGEST, "key": f"live/game/{sequence}.ts", "etag": "bad"}
        failed = {"stream": "game", "sequence": sequence, "error": refused, "source": source}
        publish_segment(failed, settings, clients)
    # WHEN it ends
    clients.s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b"")
    assert end_stream("game", INGEST, settings, clients)["ended"] is True
    # THEN no recording is published (a master of no bandwidth, playlists of gaps only)
    listed = clients.s3.list_objects_v2(Bucket=OUTPUT, Prefix=StreamPaths("game").prefix)
    keys = {o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", [])}
    assert not keys & {"master.m3u8", "manifest.json", "index.m3u8"}
    # AND its end says so: no segment, three gaps, no URLs
    ended = [e for e in put if e["type"] == "Live Stream Ended"]
    assert [(e["segments"], e["gaps"], e["urls"]) for e in ended] == [(0, 3, {})]
    # AND a segment of it mended and published after all makes one then
    source = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "mended"}
    result = {"duration": 2.0, "bytes": {"360p": 1000}}
    publish_segment({"stream": "game", "sequence": 1, "result": result, "source": source},
                    settings, clients)  # fmt: skip
    assert recording(clients) == [
        "#EXT-X-GAP", "seg_00000.ts", "seg_00001.ts", "#EXT-X-GAP", "seg_00002.ts"
    ]  # fmt: skip
    # AND subscribers are told of it: an end of its own, with its counts and URLs
    ended = [e for e in put if e["type"] == "Live Stream Ended"]
    assert [(e["event_id"], e["segments"], e["gaps"]) for e in ended] == [
        ("live/game/ended", 0, 3), ("live/game/ended-1", 1, 2)
    ]  # fmt: skip
    assert ended[1]["urls"]["master"].endswith("live/game/master.m3u8")


def test_a_segments_failure_record_says_whether_it_is_tried_again_and_goes_once_mended(
    live: tuple[Settings, Clients],
) -> None:
    settings, clients = live
    key = StreamPaths("game").failure_key(1)

    def fail(error: str, etag: str) -> dict[str, Any]:
        source = {"bucket": INGEST, "key": "live/game/1.ts", "etag": etag}
        caught = {"Error": error, "Cause": "killed"}
        publish_segment({"stream": "game", "sequence": 1, "error": caught, "source": source},
                        settings, clients)  # fmt: skip
        record: dict[str, Any] = json.loads(
            clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read()
        )
        return {k: record[k] for k in ("error", "attempt", "try_again")}

    # GIVEN a segment that ran out of time: its record says Reconcile tries it again,
    # until its last attempt
    assert fail("Sandbox.Timedout", "a") == {
        "error": "Sandbox.Timedout", "attempt": 1, "try_again": True
    }  # fmt: skip
    assert fail("Sandbox.Timedout", "a")["try_again"] is True
    assert fail("Sandbox.Timedout", "a") == {
        "error": "Sandbox.Timedout", "attempt": 3, "try_again": False
    }  # fmt: skip
    # AND another upload of it that ran out of memory is not tried again, and says so
    assert fail("Runtime.OutOfMemory", "b") == {
        "error": "Runtime.OutOfMemory", "attempt": 1, "try_again": False
    }  # fmt: skip
    # WHEN a mended upload of it is published
    source = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "mended"}
    result = {"duration": 2.0, "bytes": {"360p": 1000}}
    publish_segment({"stream": "game", "sequence": 1, "result": result, "source": source},
                    settings, clients)  # fmt: skip
    # THEN its failure record is gone: failures/ lists only segments still gaps
    assert not clients.s3.list_objects_v2(Bucket=OUTPUT, Prefix=key).get("KeyCount")
    # AND a failed upload's event delivered again after it does not bring the record back
    source = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "b"}
    caught = {"Error": "Runtime.OutOfMemory", "Cause": "killed"}
    publish_segment({"stream": "game", "sequence": 1, "error": caught, "source": source},
                    settings, clients)  # fmt: skip
    assert not clients.s3.list_objects_v2(Bucket=OUTPUT, Prefix=key).get("KeyCount")


def test_a_mended_segment_whose_failure_record_cannot_be_deleted_is_still_counted(
    live: tuple[Settings, Clients], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    source = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "a"}
    caught = {"Error": "Sandbox.Timedout", "Cause": "killed"}
    publish_segment({"stream": "game", "sequence": 1, "error": caught, "source": source},
                    settings, clients)  # fmt: skip

    # GIVEN S3 refuses to delete the failure record once the segment is mended
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "SlowDown", "Message": "slow down"}}, "DeleteObjects"
        )

    monkeypatch.setattr(clients.s3, "delete_objects", refused)
    # WHEN its mended upload is published
    mended = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "mended"}
    result = {"duration": 2.0, "bytes": {"360p": 1000}}
    done = publish_segment({"stream": "game", "sequence": 1, "result": result, "source": mended},
                           settings, clients)  # fmt: skip
    # THEN it is published and counted all the same: a retry would count it no more
    assert done["duplicate"] is False
    assert table.published("game") == 1


@pytest.mark.parametrize(("upload", "last"), [("refused", 0), ("deleted", -1)])
def test_a_stream_that_never_had_settings_is_ended_after_the_default_idle_time(
    live: tuple[Settings, Clients], clock: SteppedClock, upload: str, last: int
) -> None:
    from tests.unit.test_reconcile import FakeStepFunctions

    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    if upload == "refused":
        # GIVEN a stray file under a stream's name, which failed before it could set one up
        refused = {"Error": "NotAVideoError", "Cause": "live/typo/0.ts is no video"}
        publish_segment({"stream": "typo", "sequence": 0, "error": refused}, settings, clients)
    else:
        # GIVEN an upload to a mistyped stream name, noted by LiveIngest, then deleted by
        # the venue before LiveProbe read it: its execution ends superseded, storing nothing
        clients.s3.create_bucket(Bucket=INGEST)
        key = "live/typo/0.ts"
        clients.s3.put_object(Bucket=INGEST, Key=key, Body=b"x")
        uploaded = {"bucket": {"name": INGEST}, "object": {"key": key, "eTag": "e"}}
        record = {
            "eventName": "ObjectCreated:Put",
            "eventTime": "2027-01-15T08:00:00Z",
            "s3": uploaded,
        }
        started = FakeStepFunctions()
        on_ingest([record], replace(settings, ingest_bucket=INGEST), replace(clients, sfn=started))
        assert len(started.executions) == 1
    assert "typo" in table.open_streams()
    # WHEN the sweep looks short of the default idle time, it stays open
    clock.now += IDLE_SECONDS - 1
    sweep(settings, clients)
    assert "typo" in table.open_streams()
    # THEN past it, the stream is ended where its uploads stopped, and closed empty (the
    # deleted upload's stayed open, swept every minute and counted open, for good)
    clock.now += 2
    assert sweep(settings, clients)["streams"]["typo"]["ended"] is True
    closed = table.require("typo")
    assert closed.closed and closed.ending is not None
    assert closed.ending["last_sequence"] == last
    assert "typo" not in table.open_streams()


def test_an_end_naming_segments_never_uploaded_closes_a_stream_without_settings(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients, put = _announcing(live)
    clients.s3.create_bucket(Bucket=INGEST)
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN an END naming segment 5 for a stream none of whose segments was ever uploaded
    clients.s3.put_object(Bucket=INGEST, Key="live/ghost/END", Body=b'{"last_sequence": 5}')
    assert end_stream("ghost", INGEST, settings, clients)["ended"] is False
    # WHEN nothing comes for the default idle time after it
    clock.now += IDLE_SECONDS - 1
    sweep(settings, clients)
    assert "ghost" in table.open_streams()
    clock.now += 2
    sweep(settings, clients)
    # THEN the stream is closed empty (not swept every minute for good), announced once
    assert "ghost" not in table.open_streams()
    clock.now += 120
    sweep(settings, clients)
    ended = [e for e in put if e["type"] == "Live Stream Ended" and e["stream"] == "ghost"]
    assert [(e["segments"], e["urls"]) for e in ended] == [(0, {})]


def _held_to(clients: Clients, function: str, table: str) -> Clients:
    """``clients`` whose S3 and DynamoDB calls ``function``'s template policy must allow."""
    options = {"region_name": "us-east-1", "aws_access_key_id": "u", "aws_secret_access_key": "u"}
    s3, dynamodb = boto3.client("s3", **options), boto3.client("dynamodb", **options)
    names = {OUTPUT: "OutputBucket", INGEST: "IngestBucket", table: "LiveTable"}
    iam_policy.enforce(s3, function, names)
    iam_policy.enforce(dynamodb, function, names)
    return replace(clients, s3=s3, dynamodb=dynamodb)


@pytest.mark.parametrize(
    "function", ["LivePublishFunction", "LiveSweepFunction", "LiveIngestFunction"]
)
def test_the_writer_after_a_dead_one_resumes_its_gap_run_within_its_role(
    live: tuple[Settings, Clients],
    clock: SteppedClock,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
) -> None:
    # GIVEN a writer that announced segment 1's gap (it failed) and died before it saved
    settings, clients, put = _a_writer_died_after_announcing_a_gap(live, clock, monkeypatch)
    # WHEN the next writer (a segment's publish, the sweep, or an END marker's ingest)
    # finds that run again, with only what its function's role allows on AWS
    held = _held_to(clients, function, settings.live_table)
    clock.now += 2
    if function == "LivePublishFunction":
        result = {"duration": 2.0, "bytes": {"360p": 1000}}
        publish_segment({"stream": "game", "sequence": 3, "result": result}, settings, held)
    else:
        advance_stream("game", settings, held)
    # THEN it announced the gap once and carried on: the dead writer's marker is read
    gaps = [e for e in put if e["type"] == "Live Stream Gap"]
    assert [(g["sequence"], g["last_sequence"]) for g in gaps][:1] == [(1, 1)]
    assert "#EXT-X-GAP" in shown(clients)


class NearlyFull:
    """A long EVENT stream of 2 s segments, every length different (a variable frame
    rate), whose state all but fills a stream record of 20 KB, 1 KB of it kept in hand
    (standing for DynamoDB's 400 KB), to 200 bytes (some 75 entries) short of that 1 KB:
    ``low`` entries, the next sequence. (``beyond`` says how many more outgrow it.)"""

    def __init__(
        self, settings: Settings, clients: Clients, clock: SteppedClock, monkeypatch: Any
    ) -> None:
        monkeypatch.setattr(store, "MAX_STATE_BYTES", 20_000, raising=False)
        monkeypatch.setattr(store, "STATE_HEADROOM", 1_000, raising=False)
        self.settings, self.clients = settings, clients
        self.table = StreamTable(clients.dynamodb, settings.live_table)
        self.lengths = random.Random(7)
        seeded = [Entry(n, round(self.lengths.uniform(1.0, 2.4), 6)) for n in range(8_000)]
        low, high = 0, len(seeded)
        while low < high:  # the most entries whose state packs into 18.8 KB
            middle = (low + high + 1) // 2
            state = LivePlaylist(0, tuple(seeded[:middle])).to_dict() | {"active": clock()}
            low, high = (middle, high) if len(_packed(state)) <= 18_800 else (low, middle - 1)
        assert self.table.acquire("game", "seed", clock(), LEASE_SECONDS)
        state = LivePlaylist(0, tuple(seeded[:low])).to_dict() | {"active": clock()}
        pending = self.table.require("game").pending
        assert self.table.save("game", "seed", state, pending) is Saved.RELEASED
        self.low, self.seeded, self.active = low, seeded[:low], clock()

    def publish(self, sequence: int) -> dict[str, Any]:
        """Publish a segment of its own length."""
        result = {"duration": round(self.lengths.uniform(1.0, 2.4), 6), "bytes": {"360p": 1000}}
        event = {"stream": "game", "sequence": sequence, "result": result}
        return publish_segment(event, self.settings, self.clients)

    def beyond(self, room: int) -> int:
        """How many segments published from ``low`` on (of the lengths ``publish`` gives
        them next) take the state, with the ``low`` entries it holds, past ``room`` bytes
        packed: bisected (xz grows some 2.6 bytes an entry, not strictly), so as few as a
        test needs, give or take one or two, each publish being a round of moto calls. Too
        few, and the stream does not outgrow its record: the test fails, it never passes
        having shown nothing."""
        lengths = random.Random()
        lengths.setstate(self.lengths.getstate())
        coming: list[Entry] = []

        def packs(count: int) -> int:
            while len(coming) < count:
                coming.append(Entry(self.low + len(coming), round(lengths.uniform(1.0, 2.4), 6)))
            entries = tuple(self.seeded + coming[:count])
            return len(_packed(LivePlaylist(0, entries).to_dict() | {"active": self.active}))

        low, high = 0, 1
        while packs(high) <= room:
            low, high = high, high * 2
        while low + 1 < high:  # packs(low) <= room < packs(high)
            middle = (low + high) // 2
            low, high = (middle, high) if packs(middle) <= room else (low, middle)
        return high

    def publish_unseen(self, count: int) -> None:
        """Publish ``count`` segments from ``low`` on while another writer holds the lease."""
        assert self.table.acquire("game", "other", self.clients.clock(), LEASE_SECONDS)
        for sequence in range(self.low, self.low + count):
            assert self.publish(sequence)["writer"] is False
        self.table.release("game", "other")


def test_a_stream_whose_state_outgrows_its_record_is_ended_by_name(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    # GIVEN a stream whose state all but fills its record
    full = NearlyFull(settings, clients, clock, monkeypatch)
    low = full.low
    # WHEN more segments are published than it can hold (past the room it keeps in hand),
    # while another writer works
    count = full.beyond(store.MAX_STATE_BYTES - store.STATE_HEADROOM)
    full.publish_unseen(count)
    # THEN the stream ends at the last segment it has, rather than fail to save its state
    # (DynamoDB's ValidationException) on this and every later segment and sweep; its
    # playlists close, never shrinking, with every segment published
    last = low + count
    assert full.publish(last)["ended"] is True
    live_playlist = shown(clients)
    assert len(live_playlist) == last + 1 and live_playlist[-1] == f"seg_{last:05d}.ts"
    assert full.table.require("game").ending == {"last_sequence": last, "at": clock()}
    # AND a segment after it fails by name
    with pytest.raises(StreamEndedError):
        arrive(last + 1, settings, clients)


def test_a_stream_that_outgrows_its_record_as_segments_keep_coming_is_ended(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    full = NearlyFull(settings, clients, clock, monkeypatch)
    count = full.beyond(store.MAX_STATE_BYTES - store.STATE_HEADROOM)
    full.publish_unseen(count)
    # GIVEN a look at the state that outlasts a segment: one is admitted (its publisher
    # refused the lease) each time the writer packs it
    coming = iter(range(full.low + count, full.low + count + 100))
    packs = StreamTable.fits

    def as_a_segment_comes(self: StreamTable, state: dict[str, Any], margin: Any = None) -> bool:
        with contextlib.suppress(StreamEndedError):  # (once it ended: refused)
            self.admit("game", next(coming))
        return packs(self, state, margin)

    monkeypatch.setattr(StreamTable, "fits", as_a_segment_comes)
    # WHEN the writer advances / THEN the stream ends (at a segment admitted as it looked),
    # rather than its playlists stand still while segments come
    advance_stream("game", settings, clients)
    ending = full.table.require("game").ending
    assert ending is not None and ending["last_sequence"] >= full.low + count


def test_an_end_further_than_the_record_holds_ends_the_stream_at_what_it_shows(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    full = NearlyFull(settings, clients, clock, monkeypatch)
    # GIVEN an encoder's backlog of more segments than the record's room, none of it kept
    # in hand, published while another writer worked, then END at its last
    count = full.beyond(store.MAX_STATE_BYTES)
    full.publish_unseen(count)
    full.table.mark_ended("game", {"last_sequence": full.low + count - 1, "at": clock()})
    # WHEN the writer advances / THEN the stream ends at what it shows, its state saved,
    # rather than fail every save for good
    assert advance_stream("game", settings, clients)["ended"] is True
    assert len(shown(clients)) == full.low
    assert full.table.require("game").ending == {"last_sequence": full.low - 1, "at": clock()}


def test_an_advance_with_nothing_new_leaves_the_state_unwritten(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    arrive(0, settings, clients)
    stored = table.require("game").state
    packed: list[dict[str, Any]] = []
    monkeypatch.setattr(store, "_packed", lambda state: packed.append(state) or b"")
    # WHEN the sweep finds nothing new (every minute, for every open stream)
    clock.now += 1
    assert advance_stream("game", settings, clients)["writer"] is True
    # THEN the record keeps its state: not packed and written again (at 36 h of 1 s
    # segments, 343 KB and as many write units, each minute)
    assert packed == []
    assert table.require("game").state == stored
    # AND a change is still stored
    arrive(1, settings, clients)
    assert len(packed) == 1 and packed[0]["durations"] == [2.0, 2.0]


def test_a_writer_whose_look_outlasts_a_segment_lets_go_in_time(
    live: tuple[Settings, Clients], clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    arrive(0, settings, clients)
    # GIVEN a stream so long that each look of its writer takes longer than a segment
    # (36 h of 1 s segments: 1.4 CPU-seconds of a core), so a segment always comes
    # (its publisher refused the lease) while the writer looks
    saves = []
    real_save = StreamTable.save

    def save_as_a_segment_comes(self: StreamTable, *args: Any) -> Saved:
        saves.append(args)
        assert len(saves) < 100, "the writer never let go: its function would time out"
        clock.now += 1.5
        sequence = len(saves) + 1
        arrival = {"duration": 2.0, "at": clock(), "failed": False, "bytes": {"360p": 1000}}
        assert table.record_arrival("game", sequence, arrival)
        assert table.count_published("game", sequence, "")
        table.count_change("game")
        return real_save(self, *args)

    monkeypatch.setattr(StreamTable, "save", save_as_a_segment_comes)
    # WHEN the next segment's publish becomes the writer
    outcome = arrive(1, settings, clients)
    # THEN it lets go within its time (LivePublish's 30 s), leaving the lease free for the
    # next writer rather than run until its function times out, holding it for a minute
    assert outcome["writer"] is True and outcome["behind"] is True
    assert clock.now - T0 < 30
    assert table.acquire("game", "next", clock(), LEASE_SECONDS)
    # AND it kept up while it looked: every segment but the one that came last is shown
    assert shown(clients) == [f"seg_{n:05d}.ts" for n in range(len(saves) + 1)]


def test_a_sweep_on_its_scheduled_time_counts_idle_from_the_segment_it_showed(
    live: tuple[Settings, Clients], clock: SteppedClock
) -> None:
    settings, clients = live
    # GIVEN a stream that showed segment 0; the sweep due 5 s later reaches it 95 s late
    # (many streams before it), while segment 1 arrives and its writer, refused the lease
    # the sweep holds, leaves it to the sweep
    table = _idle_stream((0,), settings, clients)
    clock.now += 100
    table.acquire("idle", "sweep", clock.now, LEASE_SECONDS)
    assert publish_segment(
        {"stream": "idle", "sequence": 1,
         "result": {"duration": 2.0, "bytes": {"360p": 1000}}},
        settings, clients,
    )["writer"] is False  # fmt: skip
    table.release("idle", "sweep")
    sweep(settings, clients, "2027-01-15T08:00:05+00:00")  # T0 + 5 s
    assert table.require("idle").state is not None
    assert advance_stream("idle", settings, clients)["next_sequence"] == 2
    # WHEN the encoder then dies: 590 s after segment 1 came, short of idle_seconds (600)
    clock.now += 590
    # THEN the stream is still open: its idle time counts from segment 1's arrival, not
    # from the schedule of the sweep that showed it
    assert advance_stream("idle", settings, clients)["ended"] is False
    clock.now += 11
    assert advance_stream("idle", settings, clients)["ended"] is True


@pytest.mark.parametrize(
    ("uploaded_at", "uploaded"),
    [("2027-01-15T07:59:58", T0 - 2), ("2027-01-15T07:59:58.000Z", T0 - 2), ("not a time", None)],
)
def test_a_segment_s_upload_time_is_read_in_utc_and_never_fails_its_publish(
    live: tuple[Settings, Clients], monkeypatch: pytest.MonkeyPatch, uploaded_at: str,
    uploaded: float | None,
) -> None:  # fmt: skip
    settings, clients = live
    # GIVEN a publisher on a machine in America/Chicago, and a segment whose event (written
    # by hand) gives its upload time without an offset, or in no form of time at all
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    try:
        publish_segment(
            {"stream": "game", "sequence": 0,
             "result": {"duration": 2.0, "bytes": {"360p": 1000}},
             "source": {"bucket": INGEST, "key": "live/game/0.ts", "etag": "e",
                        "uploaded_at": uploaded_at}},
            settings, clients,
        )  # fmt: skip
    finally:
        monkeypatch.undo()
        time.tzset()
    # THEN it is published, its latency counted from the upload's UTC time where it has one
    arrival = StreamTable(clients.dynamodb, settings.live_table).arrival("game", 0)
    assert arrival is not None and arrival.get("uploaded") == uploaded
    assert shown(clients) == ["seg_00000.ts"]


@pytest.mark.parametrize("then", ["run again", "its failure recorded"])
@pytest.mark.parametrize("stopped", ["cut off", "throttled"])
def test_a_publish_stopped_after_storing_its_arrival_counts_it_when_run_again(
    live: tuple[Settings, Clients],
    clock: SteppedClock,
    monkeypatch: pytest.MonkeyPatch,
    stopped: str,
    then: str,
) -> None:
    settings, clients = live
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN a stream that closed with segment 1 a gap, and 1's failure on record
    arrive(0, settings, clients)
    arrive(2, settings, clients)
    source = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "a"}
    caught = {"Error": "Sandbox.Timedout", "Cause": "killed"}
    publish_segment({"stream": "game", "sequence": 1, "error": caught, "source": source},
                    settings, clients)  # fmt: skip
    table.mark_ended("game", {"last_sequence": 2, "at": clock()})
    table.count_change("game")
    clock.now += 6.1
    assert advance_stream("game", settings, clients)["ended"] is True
    assert recording(clients) == ["seg_00000.ts", "#EXT-X-GAP", "seg_00001.ts", "seg_00002.ts"]
    # WHEN 1's mended upload is published by a function stopped just after it stored the
    # arrival (cut off by its timeout, or the stream record throttled as it counts), and
    # Step Functions runs the publish again with the same input, or (Publish has no Retry
    # on its timeout, and its retries may run out) its Catch records the failure
    mended = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "mended"}
    event = {"stream": "game", "sequence": 1, "source": mended,
             "result": {"duration": 2.0, "bytes": {"360p": 1000}}}  # fmt: skip
    stored = StreamTable.store_arrival

    def cut_off(self: StreamTable, *args: Any) -> Any:
        stored(self, *args)
        raise TimeoutError("Task timed out")

    def throttled(self: StreamTable, *args: Any, **kwargs: Any) -> Any:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
            "UpdateItem",
        )

    if stopped == "cut off":
        monkeypatch.setattr(StreamTable, "store_arrival", cut_off)
    else:
        monkeypatch.setattr(StreamTable, "count_published", throttled)
    with pytest.raises((TimeoutError, TransientError)):
        publish_segment(event, settings, clients)
    monkeypatch.undo()
    if then == "run again":
        assert publish_segment(event, settings, clients)["duplicate"] is False
    else:
        caught = {"Error": "Sandbox.Timedout", "Cause": "Task timed out"}
        assert publish_segment({**event, "error": caught}, settings, clients)["error"]
    # THEN it is counted once, as one clean run counts it: in the recording, and its
    # failure record gone
    assert table.published("game") == 3
    assert recording(clients) == ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]
    key = StreamPaths("game").failure_key(1)
    assert not clients.s3.list_objects_v2(Bucket=OUTPUT, Prefix=key).get("KeyCount")
    # AND a third run (a duplicate event) counts nothing
    assert publish_segment(event, settings, clients)["duplicate"] is True
    assert table.published("game") == 3


@pytest.mark.parametrize("counts_first", ["the one that stored it", "its duplicate"])
def test_two_runs_of_one_upload_at_once_count_it_once(
    live: tuple[Settings, Clients],
    clock: SteppedClock,
    monkeypatch: pytest.MonkeyPatch,
    counts_first: str,
) -> None:
    settings, clients, put = _announcing(live)
    table = StreamTable(clients.dynamodb, settings.live_table)
    # GIVEN a stream that closed with segment 1 a gap (its upload failed), its end announced
    source = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "a"}
    arrive(0, settings, clients)
    arrive(2, settings, clients)
    caught = {"Error": "Sandbox.Timedout", "Cause": "killed"}
    publish_segment({"stream": "game", "sequence": 1, "error": caught, "source": source},
                    settings, clients)  # fmt: skip
    table.mark_ended("game", {"last_sequence": 2, "at": clock()})
    table.count_change("game")
    clock.now += 6.1
    assert advance_stream("game", settings, clients)["ended"] is True
    assert [e["type"] for e in put if e["type"] == "Live Stream Ended"] == ["Live Stream Ended"]
    # WHEN 1's mended upload is published by two executions at once (S3 delivered its
    # event twice): the second finds the arrival the first stored, not yet counted, and
    # either counts it before the first does or after
    mended = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "mended"}
    event = {"stream": "game", "sequence": 1, "source": mended,
             "result": {"duration": 2.0, "bytes": {"360p": 1000}}}  # fmt: skip
    outcomes: list[dict[str, Any]] = []
    store_arrival, count_change = StreamTable.store_arrival, StreamTable.count_change

    def then_the_duplicate(self: StreamTable, *args: Any) -> Any:
        stored = store_arrival(self, *args)
        if not outcomes:
            outcomes.append({})
            outcomes.append(publish_segment(event, settings, clients))
        return stored

    def the_duplicate_after_the_count(self: StreamTable, *args: Any, **kwargs: Any) -> Any:
        record = count_change(self, *args, **kwargs)
        if not outcomes:
            outcomes.append({})
            outcomes.append(publish_segment(event, settings, clients))
        return record

    if counts_first == "its duplicate":
        monkeypatch.setattr(StreamTable, "store_arrival", then_the_duplicate)
    else:
        monkeypatch.setattr(StreamTable, "count_change", the_duplicate_after_the_count)
    outcomes[0] = publish_segment(event, settings, clients)
    monkeypatch.undo()
    # THEN it is counted once, and subscribers are told once that the recording was made
    # again, with 3 segments
    assert table.published("game") == 3
    assert recording(clients) == ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]
    ended = [e for e in put if e["type"] == "Live Stream Ended"]
    assert [e["segments"] for e in ended] == [2, 3]
    # AND one run published it, the other was a duplicate
    assert sorted(o["duplicate"] for o in outcomes) == [False, True]
    # AND a third delivery changes nothing
    assert publish_segment(event, settings, clients)["duplicate"] is True
    assert table.published("game") == 3
    assert len([e for e in put if e["type"] == "Live Stream Ended"]) == 2


def test_a_failed_segments_publish_run_again_is_the_same_attempt(
    live: tuple[Settings, Clients], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clients = live
    # GIVEN a segment whose first execution ran out of time (as LiveIngest starts it)
    source = {"bucket": INGEST, "key": "live/game/1.ts", "etag": "a", "execution": "game-1-a"}
    caught = {"Error": "Sandbox.Timedout", "Cause": "killed"}
    event = {"stream": "game", "sequence": 1, "error": caught, "source": source}
    # WHEN its RecordFailure stores the failure, then fails to advance the playlists twice
    # (the stream record throttled), and Step Functions runs it again each time
    advance, throttles = publish.advance_stream, [1, 2]

    def throttled(*args: Any, **kwargs: Any) -> Any:
        if throttles:
            throttles.pop()
            raise TransientError("AWS is unavailable: ProvisionedThroughputExceededException")
        return advance(*args, **kwargs)

    monkeypatch.setattr(publish, "advance_stream", throttled)
    for _ in range(2):
        with pytest.raises(TransientError):
            publish_segment(event, settings, clients)
    publish_segment(event, settings, clients)
    # THEN it is the upload's first attempt, which Reconcile tries again, not its last
    key = StreamPaths("game").failure_key(1)
    record = json.loads(clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read())
    assert (record["attempt"], record["try_again"]) == (1, True)
    # AND Reconcile's second attempt, failing alike, is the second
    again = {**event, "source": {**source, "attempt": 2, "execution": "game-1-a-2"}}
    publish_segment(again, settings, clients)
    record = json.loads(clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read())
    assert (record["attempt"], record["try_again"]) == (2, True)
    # AND the upload's event delivered again by S3 (LiveIngest starts its first
    # execution's name again), failing alike, is the third and last: the cap holds
    publish_segment(event, settings, clients)
    record = json.loads(clients.s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read())
    assert (record["attempt"], record["try_again"]) == (3, False)


def test_a_stream_json_naming_the_ladder_a_stream_between_two_rungs_runs_is_no_change() -> None:
    # GIVEN a stream of PAL's 1024x576 picture, run on a ladder whose 720p rung is above
    # it: its top rung is its own size (576p), then the 480p rung
    spec = "720:2800,480:1400"
    config = stream_settings(renditions=build_ladder(1024, 576, 25.0, spec))
    assert [r.name for r in config.renditions] == ["576p", "480p"]
    # WHEN a stream.json naming the same ladder, or another, is compared with it
    # THEN the same ladder is what it runs, and another is not
    assert _ladder_within(spec, config)
    assert not _ladder_within("720:2800,480:1000", config)
