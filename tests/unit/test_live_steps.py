"""Live rules that need no stack: which keys are segments, and a stream's settings."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from tests.logs import own_log
from tests.records import FACTS
from workflow import metrics
from workflow.cli.live import stream_failures
from workflow.cli.venue import Report, delivery_order
from workflow.errors import (
    SegmentReusedError,
    SegmentStartsMidGopError,
    SequenceBeforeStartError,
    SequenceJumpError,
    StreamConfigError,
    StreamEndedError,
)
from workflow.live import ingest as ingest_module
from workflow.live.config import (
    SETTINGS_NAMES,
    StreamSettings,
    declared_config,
    stream_config,
)
from workflow.live.ingest import declared_last, highest_within_reach, on_ingest
from workflow.live.paths import (
    MAX_RECORD_BYTES,
    execution_name,
    parse_live_key,
    segment_sequence,
)
from workflow.live.probe import (
    _after_the_start,
    _keyed_at_start,
    _same_segment,
    _within_reach,
)
from workflow.live.rules import MAX_SKIPPED, Arrival, LivePlaylist, advance
from workflow.live.segment import (
    ProbedSegment,
    SegmentInput,
    _encodes,
    audio_rate,
    segment_form,
)
from workflow.live.store import StreamRecord
from workflow.media.encode import TS_OFFSET
from workflow.media.facts import AudioFacts
from workflow.media.ladder import MAX_RUNGS
from workflow.media.probe import UndecodableHead
from workflow.runtime import Clients
from workflow.settings import Settings

SETTINGS = Settings(ladder="1080:5000,720:2800,360:800", segment_seconds=4.0)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("live/game-1/42.ts", ("game-1", "42.ts")),
        ("live/game_1/END", ("game_1", "END")),
        ("live/g/stream.json", ("g", "stream.json")),
        ("live/a b/1.ts", None),
        ("live/../1.ts", None),
        ("live/game/sub/1.ts", None),
        ("uploads/game/1.ts", None),
        ("live//1.ts", None),
        (f"live/{'x' * 49}/1.ts", None),
    ],
)
def test_only_live_stream_keys_are_taken(key: str, expected: tuple[str, str] | None) -> None:
    assert parse_live_key(key) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("42.ts", 42),
        ("7.m4s", 7),
        ("999999999.ts", 999999999),
        ("1000000000.ts", None),
        ("\u0663.ts", None),  # ARABIC-INDIC DIGIT THREE: int() reads it as 3
        ("\uff13.ts", None),  # FULLWIDTH DIGIT THREE
        ("3.mp4", None),
        ("-3.ts", None),
    ],
)
def test_a_segments_sequence_is_ascii_digits_only(name: str, expected: int | None) -> None:
    assert segment_sequence(name) == expected


def test_execution_names_are_one_per_segment_version_and_legal() -> None:
    name = execution_name("game-1", 42, '"0123456789abcdef"')
    assert name == "game-1-000000042-01234567"
    assert execution_name("game-1", 42, "fedcba98") != name
    assert len(execution_name("x" * 48, 10**9 - 1, "e" * 32)) <= 80


def test_a_streams_settings_come_from_stream_json_over_the_defaults() -> None:
    config = stream_config(
        {"window": 6, "ladder": "720:2800,360:800"}, 1920, 1080, 30.0, True, SETTINGS
    )
    assert [r.name for r in config.renditions] == ["720p", "360p"]
    assert config.window == 6 and config.segment_seconds == 4.0
    # the gap timeout defaults to three segment durations
    assert config.gap_seconds == 12.0 and config.first_sequence is None
    # and it survives the stream table's JSON whole
    assert StreamSettings.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    # and the ladder never upscales a small source
    small = stream_config({}, 640, 360, 30.0, False, SETTINGS)
    assert [r.name for r in small.renditions] == ["360p"]


def test_a_stream_is_ended_after_an_hour_without_segments_unless_it_says_otherwise() -> None:
    def idle(declared: dict[str, object]) -> float:
        return stream_config(declared, 1920, 1080, 30.0, True, SETTINGS).idle_seconds

    assert idle({}) == 3600
    assert idle({"gap_seconds": 7200}) == 14_400  # twice a gap it may have to wait for
    assert idle({"idle_seconds": 0}) == 0  # never
    assert idle({"idle_seconds": 900}) == 900


def test_an_undeclared_target_duration_holds_the_first_segment() -> None:
    # GIVEN no declared segment length, and a venue that cuts 6 s segments
    config = stream_config({}, 640, 360, 30.0, True, SETTINGS, first_duration=6.02)
    # THEN the stream's target is 6 s, for its life; shorter first segments keep the default
    assert config.segment_seconds == 6.0
    assert (
        stream_config({}, 640, 360, 30.0, True, SETTINGS, first_duration=2.0).segment_seconds == 4
    )
    # AND a declared one wins, whatever the first segment
    declared = stream_config(
        {"segment_seconds": 2}, 640, 360, 30.0, True, SETTINGS, first_duration=6
    )
    assert declared.segment_seconds == 2


def test_a_stream_is_encrypted_as_it_declares_else_as_the_stack_says() -> None:
    assert stream_config({}, 640, 360, 30.0, True, SETTINGS).encryption == "none"
    protected = replace(SETTINGS, encryption="aes-128")
    assert stream_config({}, 640, 360, 30.0, True, protected).encryption == "aes-128"
    declared = stream_config({"encryption": "aes-128"}, 640, 360, 30.0, True, SETTINGS)
    assert declared.encryption == "aes-128"
    # AND a venue cannot turn off what the stack protects
    with pytest.raises(StreamConfigError, match=r"this stack protects every stream"):
        stream_config({"encryption": "none"}, 640, 360, 30.0, True, protected)
    # AND a stack whose uploads default to cbcs (CMAF) protects its MPEG-TS streams with
    # AES-128; a stream that asks for cbcs itself is told what it can have
    cmaf_stack = replace(SETTINGS, encryption="cbcs")
    assert stream_config({}, 640, 360, 30.0, True, cmaf_stack).encryption == "aes-128"
    with pytest.raises(StreamConfigError, match="MPEG-TS: use one of none, aes-128"):
        stream_config({"encryption": "cbcs"}, 640, 360, 30.0, True, cmaf_stack)
    rotating = stream_config({"key_rotation_segments": 3}, 640, 360, 30.0, True, protected)
    assert [rotating.key_period(n) for n in (0, 2, 3, 7)] == [0, 0, 1, 2]
    clear = stream_config({}, 640, 360, 30.0, True, SETTINGS)
    assert clear.key_period(7) is None
    # AND a stream stored before streams could be encrypted loads as a clear one
    stored = stream_config({}, 640, 360, 30.0, True, SETTINGS).to_dict()
    del stored["encryption"], stored["key_rotation"]
    assert StreamSettings.from_dict(stored).encryption == "none"
    assert StreamSettings.from_dict(stored).key_rotation == 0


@pytest.mark.parametrize(
    "declared",
    [
        {"segment_seconds": 0.1},
        {"segment_seconds": "fast"},
        {"segment_seconds": True},  # float() reads it as 1 s
        {"segment_seconds": "6"},
        {"gap_seconds": "12"},
        {"idle_seconds": False},  # float() reads it as 0: never ended
        {"window": -1},
        {"gap_seconds": 0},
        {"ladder": "huge"},
        {"bitrate": 5000},
        {"first_sequence": "one"},
        {"first_sequence": -3},  # RFC 8216: EXT-X-MEDIA-SEQUENCE is a decimal-integer
        {"first_sequence": 1_000_000_000},
        {"first_sequence": 2.5},
        {"first_sequence": True},
        {"window": 2.5},
        {"window": 1},  # RFC 8216: a player stays three segments from the end
        {"window": 2},
        {"gap_seconds": float("nan")},  # json.loads reads NaN
        {"gap_seconds": float("inf")},
        {"gap_seconds": 86_401},
        {"gap_seconds": 10**400},  # past a float's range: OverflowError, not a ValueError
        {"segment_seconds": -(10**400)},
        {"idle_seconds": float("nan")},
        {"idle_seconds": 10, "gap_seconds": 12},  # would end before a gap is shown
        {"idle_seconds": 8 * 86_400},
        {"idle_seconds": -1},
        {"mend_seconds": -1},
        {"mend_seconds": "86400"},
        {"mend_seconds": True},
        {"mend_seconds": None},
        {"mend_seconds": float("nan")},
        {"mend_seconds": 10**400},
        {"encryption": "rot13"},
        {"encryption": None},
        {"key_rotation_segments": 4},  # without encryption
        {"encryption": "aes-128", "key_rotation_segments": -1},
        {"encryption": "aes-128", "key_rotation_segments": "4"},
        {"encryption": "aes-128", "key_rotation_segments": True},
        {"encryption": "aes-128", "key_rotation_segments": 2.5},
    ],
)
def test_a_bad_stream_json_is_a_named_error(declared: dict[str, object]) -> None:
    with pytest.raises(StreamConfigError):
        stream_config(declared, 1920, 1080, 30.0, True, SETTINGS)


def test_a_stream_json_ladder_of_a_thousand_rungs_is_a_named_error() -> None:
    # GIVEN a venue's stream.json of 9 KB whose ladder lists every side from 1080 to 32
    ladder = ",".join(f"{side}:{max(100, 4 * side)}" for side in range(1080, 31, -1))
    # WHEN its settings are read for a 1080p stream, THEN it is refused by name, not
    # encoded into 1049 rungs on every segment
    with pytest.raises(StreamConfigError, match=r"stream\.json: LADDER has 1049 rungs; at most"):
        stream_config({"ladder": ladder}, 1920, 1080, 30.0, True, SETTINGS)
    # AND a ladder as long as the bound is read
    most = ",".join(f"{1080 - 40 * n}:{5000 - 300 * n}" for n in range(MAX_RUNGS))
    assert len(stream_config({"ladder": most}, 1920, 1080, 30.0, True, SETTINGS).renditions) == (
        MAX_RUNGS
    )


@pytest.mark.parametrize("body", [b"{", b"[" * 100_000 + b"]" * 100_000, b"[1]"])
def test_a_stream_json_that_is_not_a_json_object_is_a_named_error(body: bytes) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ingest")
        s3.put_object(Bucket="ingest", Key="live/g/stream.json", Body=body)
        with pytest.raises(StreamConfigError, match=r"stream\.json"):
            declared_config("ingest", "g", Clients(s3=s3))


def test_a_stream_json_past_its_bound_is_a_named_error_and_is_not_read() -> None:
    # GIVEN a stream.json that is a valid object, padded past what a record may hold (a
    # venue's upload of gigabytes would end LiveProbe out of memory)
    body = b'{"window": 6}' + b" " * MAX_RECORD_BYTES
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ingest")
        s3.put_object(Bucket="ingest", Key="live/g/stream.json", Body=body)
        # WHEN it is read / THEN it is refused by name
        with pytest.raises(StreamConfigError, match=r"stream\.json is more than"):
            declared_config("ingest", "g", Clients(s3=s3))


def test_the_simulated_encoder_delivers_every_segment_out_of_order_and_some_twice() -> None:
    order = delivery_order(30, shuffle=True, duplicates=True, seed=4)
    assert set(order) == set(range(30)) and len(order) > 30
    assert order != sorted(order)
    # each segment is at most a few places late, as parallel uploads finish
    first_seen = {n: order.index(n) for n in range(30)}
    assert all(abs(first_seen[n] - n) <= 3 + (len(order) - 30) for n in range(30))
    assert delivery_order(5, shuffle=False, duplicates=False) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("count", [2, 3, 5])
def test_asked_for_a_shuffle_and_duplicates_a_short_stream_always_gets_them(count: int) -> None:
    # every seed, even those whose draws would leave a short stream as it was
    for seed in range(200):
        shuffled = delivery_order(count, shuffle=True, duplicates=False, seed=seed)
        assert sorted(shuffled) == list(range(count)) and shuffled != sorted(shuffled), seed
        doubled = delivery_order(count, shuffle=False, duplicates=True, seed=seed)
        assert set(doubled) == set(range(count)) and len(doubled) > count, seed


def test_a_simulated_stream_that_is_not_complete_always_says_why() -> None:
    master = "s3://out/live/game/master.m3u8"
    # A segment the stack gave up on is a gap in the playlists: the run failed, and says so.
    gapped = Report(2.0, latencies={0: 1.0, 2: 1.5}, ended=True, gaps=[1])
    assert stream_failures(gapped, master, 180) == [
        "segments [1] were marked gaps: the stack stopped waiting for them (the stream's "
        "gap_seconds) before they were transcoded"
    ]
    unclosed = Report(2.0, latencies={0: 1.0}, missing=[1], problem="the watcher failed")
    assert stream_failures(unclosed, master, 60) == [
        "the playlists closed without segments [1]: neither shown nor marked a gap",
        "the watcher failed",
        f"no recording {master} 60 s after the last upload",
    ]
    assert stream_failures(Report(2.0, latencies={0: 1.0}, ended=True), master, 60) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"last_sequence": 12}', 12),
        (b'{"last_sequence": "12"}', 12),
        (b'{"last_sequence": 0}', 0),
        (b"", None),
        (b"{}", None),
        (b'{"last_sequence": 1e400}', None),  # inf: int() raised OverflowError
        (b'{"last_sequence": -5}', None),
        (b'{"last_sequence": true}', None),
        (b'{"last_sequence": 3.7}', None),
        (b'{"last_sequence": "\\u0663"}', None),  # JSON for an Arabic-Indic 3
        (b'{"last_sequence": 1000000000}', None),
        (b"[12]", None),
        (b"not json", None),
        (b"[" * 100_000 + b"]" * 100_000, None),  # deeper than json.loads can go
    ],
)
def test_an_end_markers_last_sequence_is_a_segments_number_or_none(
    body: bytes, expected: int | None
) -> None:
    assert declared_last(body) == expected


@pytest.mark.parametrize("body", [b"12", b'"12"', b"[12]", b"null", b"not json"])
def test_an_end_marker_whose_body_is_no_json_object_is_ignored_and_said_so(
    body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="workflow.live.ingest"):
        assert declared_last(body) is None
    assert "END's body is not a JSON object: ignored" in caplog.text


def test_the_highest_segment_within_reach_skips_no_more_than_an_outage() -> None:
    assert highest_within_reach([]) == -1
    assert highest_within_reach([3, 1, 2]) == 3
    assert highest_within_reach([0, 1, 2 + MAX_SKIPPED]) == 2 + MAX_SKIPPED
    assert highest_within_reach([0, 1, 3 + MAX_SKIPPED, 999_999_999]) == 1


def test_a_segment_the_playlists_could_never_reach_is_refused_by_name() -> None:
    # GIVEN a stream that has shown segments 0 and 1
    shown = advance(
        LivePlaylist(),
        {0: Arrival(1.0, 0.0), 1: Arrival(1.0, 0.0)},
        now=0.0,
        gap_after=3.0,
        window=0,
        nominal_duration=1.0,
    )
    record = StreamRecord(config={}, state=shown.to_dict(), ending=None, pending=0, closed=False)
    # THEN a segment an outage could explain is taken, and the first past it refused
    _within_reach(record, 2 + MAX_SKIPPED)
    _within_reach(None, 999_999_999)  # a stream not started yet: nothing to measure from
    with pytest.raises(SequenceJumpError, match="3601 numbers past the next the stream shows"):
        _within_reach(record, 3 + MAX_SKIPPED)


def test_other_bytes_under_a_published_segments_number_are_refused_by_name() -> None:
    # GIVEN segment 4, published from the upload with ETag "aaa" (version v1)
    published = {"failed": False, "upload": "v1/aaa"}
    # THEN its event again, or the same bytes uploaded again (a new version), is a duplicate
    _same_segment(published, {"etag": "aaa", "version_id": "v1"}, 4)
    _same_segment(published, {"etag": "aaa", "version_id": "v2"}, 4)
    # AND so is any upload of a failed segment that does not replace it (the same upload)
    _same_segment({"failed": True, "upload": "v1/aaa"}, {"etag": "bbb"}, 4)
    # AND other bytes (a restarted encoder counting from 0 again) are refused by name
    with pytest.raises(SegmentReusedError, match=r"segment 4 was published already .*ETag aaa"):
        _same_segment(published, {"etag": "bbb", "version_id": "v3"}, 4)


def test_a_stream_name_used_again_after_its_end_is_refused_with_the_advice_that_works() -> None:
    # GIVEN a stream that ended at segment 7, whose segment 0 was published (ETag "aaa")
    ended = StreamRecord(
        config={}, state=None, ending={"last_sequence": 7, "at": 1.0}, pending=0, closed=True
    )
    published = {"failed": False, "upload": "v1/aaa"}
    # WHEN next week's game is pushed under the same name, its encoder counting from 0
    with pytest.raises(SegmentReusedError) as refused:
        _same_segment(published, {"etag": "bbb", "version_id": "v2"}, 0, lambda: ended)
    # THEN the refusal says the stream is over and a new name is needed: numbering on
    # from the last upload (the advice for a live stream) would only meet StreamEndedError
    assert "the stream ended at segment 7: a new broadcast needs a new stream name" in str(
        refused.value
    )
    assert "number segments on" not in str(refused.value)
    # AND a live stream's refusal keeps that advice
    live = replace(ended, ending=None, closed=False)
    with pytest.raises(SegmentReusedError, match="number segments on from the last uploaded"):
        _same_segment(published, {"etag": "bbb", "version_id": "v2"}, 0, lambda: live)


def test_a_segment_below_where_the_stream_starts_is_refused_by_name() -> None:
    config = stream_config({"first_sequence": 100}, 640, 360, 30.0, True, SETTINGS)
    fresh = StreamRecord(config=config.to_dict(), state=None, ending=None, pending=0, closed=False)
    # GIVEN a stream.json that starts the stream at 100: 100 and on are taken, 99 refused
    _after_the_start(fresh, 100)
    with pytest.raises(SequenceBeforeStartError, match="segment 99 is numbered below 100"):
        _after_the_start(fresh, 99)
    # AND a stream that started at 5 (none declared) refuses 4, which it would never show
    started = advance(
        LivePlaylist(first_sequence=5), {5: Arrival(1.0, 0.0)}, now=0.0, gap_after=3.0,
        window=0, nominal_duration=1.0,
    )  # fmt: skip
    undeclared = replace(fresh, config=replace(config, first_sequence=None).to_dict())
    _after_the_start(replace(undeclared, state=started.to_dict()), 5)
    with pytest.raises(SequenceBeforeStartError, match="segment 4 is numbered below 5"):
        _after_the_start(replace(undeclared, state=started.to_dict()), 4)
    _after_the_start(undeclared, 0)  # not started yet: nothing to measure from


def test_a_segment_after_the_streams_end_is_refused_by_name() -> None:
    # GIVEN a stream whose end marker named segment 7 as its last
    record = StreamRecord(
        config={}, state=None, ending={"last_sequence": 7, "at": 1.0}, pending=0, closed=False
    )
    # THEN its segments up to 7 are taken (late ones fill the recording), 8 is refused
    record.refuse_past_the_end(7)
    replace(record, ending=None).refuse_past_the_end(8)
    with pytest.raises(
        StreamEndedError, match="segment 8 came after the stream ended at segment 7"
    ):
        record.refuse_past_the_end(8)


def _ended(at: float, **declared: object) -> StreamRecord:
    config = stream_config(declared, 640, 360, 30.0, True, SETTINGS).to_dict()
    ending = {"last_sequence": 7, "at": at}
    return StreamRecord(config=config, state=None, ending=ending, pending=0, closed=True)


def _never_asked() -> float:
    raise AssertionError("the upload's time was read where it decides nothing")


def test_an_upload_a_day_after_the_end_is_no_mend_of_its_gap() -> None:
    # GIVEN a stream that ended (its END recorded) at `ended`, at segment 7, a gap at 3
    ended = 1_800_000_000.0
    record = _ended(ended)
    day = 86_400.0
    # THEN an upload of 3 written before the end (Reconcile starting a lost one), just
    # after it, or a day after it to the second (mended the next day) is taken
    for written in (ended - 600, ended + 1, ended + day):
        record.refuse_past_the_end(3, lambda written=written: written)
    # AND one written any later is another broadcast under the name: refused by name,
    # saying when the stream ended
    with pytest.raises(StreamEndedError) as refused:
        record.refuse_past_the_end(3, lambda: ended + day + 0.001)
    assert "stream ended at 2027-01-15T08:00:00+00:00, segment 7" in str(refused.value)
    assert "a new broadcast needs a new stream name" in str(refused.value)
    # AND a segment past the end is refused as before, without reading the upload's time;
    # a stream not ended never reads it either
    with pytest.raises(StreamEndedError, match="segment 8 came after the stream ended"):
        record.refuse_past_the_end(8, _never_asked)
    replace(record, ending=None).refuse_past_the_end(3, _never_asked)


def test_a_stream_json_sets_how_long_its_gaps_may_be_mended() -> None:
    # GIVEN a stream whose stream.json allows mends for a minute after its end
    ended = 1_800_000_000.0
    minute = _ended(ended, mend_seconds=60)
    minute.refuse_past_the_end(3, lambda: ended + 60)
    with pytest.raises(StreamEndedError, match=r"\(mend_seconds 60\)"):
        minute.refuse_past_the_end(3, lambda: ended + 60.5)
    # AND one that allows none: only uploads written before its end
    never = _ended(ended, mend_seconds=0)
    never.refuse_past_the_end(3, lambda: ended)
    with pytest.raises(StreamEndedError):
        never.refuse_past_the_end(3, lambda: ended + 1)
    # AND a stream stored before the setting was kept has a day; an ending kept with no
    # time is never refused on it
    old = _ended(ended)
    assert old.config is not None
    del old.config["mend_seconds"]
    old.refuse_past_the_end(3, lambda: ended + 86_400)
    with pytest.raises(StreamEndedError):
        old.refuse_past_the_end(3, lambda: ended + 86_401)
    untimed = replace(old, ending={"last_sequence": 7})
    untimed.refuse_past_the_end(3, lambda: ended + 10 * 86_400)
    assert StreamSettings.from_dict(old.config).mend_seconds == 86_400


def test_a_stream_keeps_the_output_offset_it_began_with() -> None:
    # GIVEN a stream begun now, and one stored before the offset was kept with it
    new = stream_config({}, 640, 360, 30.0, True, SETTINGS)
    stored = new.to_dict()
    del stored["ts_offset"]
    old = StreamSettings.from_dict(stored)
    assert new.ts_offset == TS_OFFSET and old.ts_offset == 10.0
    # WHEN a segment at 100 s of each is encoded
    segment = ProbedSegment("mpegts", 100.0, 100.0, 101.0, True, 640, 360, 30.0, "form")
    source = SegmentInput("https://example.test/1.ts", None, b"", 1000)
    for config in (new, old):
        with tempfile.TemporaryDirectory() as workdir:
            video, audio = _encodes(source, segment, 1, config, Path(workdir), 10**6)
        # THEN the video and the audio are shifted by the stream's own offset, so its clock
        # runs on across a deploy that changes TS_OFFSET
        offsets = [c[c.index("-output_ts_offset") + 1] for c in (video, audio)]
        assert offsets == [f"{config.ts_offset:.6f}", f"{100 + config.ts_offset:.6f}"]
        # AND the decoder refuses a picture past the stack's bound, as the probe did
        assert video[video.index("-max_pixels") + 1] == str(10**6)
        # AND a progressive SDR segment is neither deinterlaced nor tone-mapped, an
        # interlaced one is deinterlaced and a PQ one tone-mapped
        assert "bwdif" not in " ".join(video) and "tonemap" not in " ".join(video)
        with tempfile.TemporaryDirectory() as workdir:
            fields = replace(segment, interlaced=True)
            video, _ = _encodes(source, fields, 1, config, Path(workdir), 10**6)
        assert "bwdif" in " ".join(video) and "tonemap" not in " ".join(video)
        with tempfile.TemporaryDirectory() as workdir:
            pq = replace(segment, hdr="pq")
            video, _ = _encodes(source, pq, 1, config, Path(workdir), 10**6)
        assert "tin=smpte2084" in " ".join(video) and "bwdif" not in " ".join(video)


@pytest.mark.parametrize(
    ("audio_span", "sound"),
    [
        # a venue's muxer ends a file's audio a B-frame delay before its video: its own
        ((99.947, 100.953), (99.947, 100.953)),
        # and one that muxes its audio ahead of the video: its own too
        ((100.04, 101.06), (100.04, 101.06)),
        # a microphone plugged in, and one unplugged, mid-segment: the video's span there
        ((100.6, 100.95), (100.0, 100.95)),
        ((99.95, 100.2), (99.95, 101.0)),
        # a segment probed before the audio's span was kept: the video's
        (None, (100.0, 101.0)),
    ],
)
def test_a_segments_audio_is_its_files_own_within_reach_of_its_video(
    audio_span: tuple[float, float] | None, sound: tuple[float, float]
) -> None:
    config = stream_config({}, 640, 360, 30.0, True, SETTINGS)
    segment = ProbedSegment("mpegts", 100.0, 100.0, 101.0, True, audio_span=audio_span)
    source = SegmentInput("https://example.test/1.ts", None, b"", 1000)
    with tempfile.TemporaryDirectory() as workdir:
        _, audio = _encodes(source, segment, 1, config, Path(workdir), 10**6)
    # THEN the audio is cut at the span's ends and starts there on the output's clock
    graph = audio[audio.index("-filter_complex") + 1]
    assert f"atrim=end={sound[1]:.6f}:start={sound[0]:.6f}" in graph, graph
    offset = audio[audio.index("-output_ts_offset") + 1]
    assert offset == f"{sound[0] + config.ts_offset:.6f}"
    assert ProbedSegment.from_dict(json.loads(json.dumps(segment.to_dict()))) == segment


@pytest.mark.parametrize(
    ("codec", "rate", "encoded"),
    [("aac", 44_100, 44_100), ("aac", 48_000, 48_000), ("aac", 22_050, 48_000),
     ("mp2", 44_100, 48_000), (None, 0, 48_000)],
)  # fmt: skip
def test_a_venues_aac_at_44_1_or_48_khz_keeps_its_rate(
    codec: str | None, rate: int, encoded: int
) -> None:
    # GIVEN a segment's audio as probed
    audio = None if codec is None else AudioFacts(codec, 2, rate, 0.0)
    facts = replace(FACTS, audio=audio)
    # THEN it is encoded at its own rate where that keeps its frames whole, else 48 kHz
    assert audio_rate(facts) == encoded
    config = stream_config({}, 640, 360, 30.0, True, SETTINGS)
    segment = ProbedSegment("mpegts", 0.0, 0.0, 1.0, True, audio_rate=audio_rate(facts))
    source = SegmentInput("https://example.test/1.ts", None, b"", 1000)
    with tempfile.TemporaryDirectory() as workdir:
        _, command = _encodes(source, segment, 1, config, Path(workdir), 10**6)
    assert f"aresample={encoded}:" in command[command.index("-filter_complex") + 1]


@pytest.mark.parametrize(("rate", "breaks"), [(44_100, True), (48_000, False)])
def test_a_deploy_that_keeps_a_venues_audio_rate_starts_a_discontinuity_run(
    rate: int, breaks: bool
) -> None:
    # GIVEN a venue's AAC at ``rate``, whose segments 0 and 1 a LiveProbe from before
    # audio_rate was kept probed (their events have none: encoded at 48 kHz, and their form
    # is what it said), and 2 and 3 this one
    facts = replace(FACTS, audio=AudioFacts("aac", 2, rate, 0.0))
    video = f"h264 {facts.display_width}x{facts.display_height} {facts.frame_rate:.3f}fps"
    before = {"container": "mpegts", "container_start": 0.0, "start": 0.0, "end": 1.0,
              "has_audio": True, "form": f"{video}, aac 2ch {rate}Hz"}  # fmt: skip
    now = ProbedSegment("mpegts", 0.0, 0.0, 1.0, True, audio_rate=audio_rate(facts),
                        form=segment_form(facts))  # fmt: skip
    segments = [ProbedSegment.from_dict({**before, "start": 0.0, "end": 1.0}),
                ProbedSegment.from_dict({**before, "start": 1.0, "end": 2.0}),
                replace(now, start=2.0, end=3.0), replace(now, start=3.0, end=4.0)]  # fmt: skip
    arrivals = {n: Arrival(1.0, 0.0, start=s.start, end=s.end, form=s.form)
                for n, s in enumerate(segments)}  # fmt: skip
    shown = advance(
        LivePlaylist(), arrivals, now=0.0, gap_after=3.0, window=0, nominal_duration=1.0
    )
    # THEN where the rate the audio is encoded at changes, a discontinuity run starts
    # (RFC 8216 4.3.2.3: a player reads the audio's configuration once a run), and only there
    encoded = [s.audio_rate for s in segments]
    assert encoded == [48_000, 48_000, rate, rate]
    assert [e.discontinuity for e in shown.entries] == [False, False, breaks, False]


def test_a_segments_audio_is_the_stream_probed_and_never_ends_before_it_starts() -> None:
    # GIVEN a segment whose sound is its second audio stream (the one flagged default)
    config = stream_config({}, 640, 360, 30.0, True, SETTINGS)
    second = ProbedSegment("mpegts", 100.0, 100.0, 101.0, True, audio_stream=1)
    source = SegmentInput("https://example.test/1.ts", None, b"", 1000)
    with tempfile.TemporaryDirectory() as workdir:
        _, audio = _encodes(source, second, 1, config, Path(workdir), 10**6)
    # THEN that stream is encoded, the one its span was read from
    assert audio[audio.index("-filter_complex") + 1].startswith("[0:a:1]")
    # AND a segment shorter than the reach whose sound lies past its video keeps its video's
    short = ProbedSegment("mpegts", 100.0, 100.0, 100.3, True, audio_span=(100.45, 101.0))
    assert short.sound() == (100.0, 100.3)


@pytest.mark.parametrize(
    ("name", "warned"),
    [
        ("1764866057.ts", True),  # numbered by the clock: past 999999999
        ("-1.ts", True),
        ("42.TS", True),
        ("init.mp4", False),
    ],
)
def test_an_upload_a_stream_cannot_number_is_skipped_with_a_warning(
    name: str, warned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = own_log(monkeypatch, ingest_module, f"ingest.{name}")
    record = {"s3": {"bucket": {"name": "in"}, "object": {"key": f"live/game/{name}"}}}
    # WHEN such an upload's event comes / THEN nothing starts (no client is touched)
    seen = on_ingest([record], SETTINGS, None)  # type: ignore[arg-type]
    assert seen == [{"key": f"live/game/{name}", "skipped": "not a segment or END"}]
    # AND the venue's operator can read why in the log, unless it is a stream's own file
    warnings = [r.getMessage() for r in kept if r.levelno == logging.WARNING]
    assert bool(warnings) == warned, warnings
    if warned:
        assert "no segment this stream can number (0 to 999999999" in warnings[0]


def test_every_stream_json_setting_is_compared_when_one_comes_too_late() -> None:
    # (a setting added to stream.json and not to LiveIngest's comparison would go unsaid)
    assert {*ingest_module._RUNNING, "ladder"} == SETTINGS_NAMES


@pytest.mark.parametrize(
    ("key", "warned"),
    [
        ("live/game.42/0.ts", True),  # a dot in the stream's name
        ("live/Game 42/0.ts", True),
        ("live/" + "g" * 49 + "/0.ts", True),  # one past 48
        ("live/caf\u00e9/0.ts", True),
        ("live/venue/game/0.ts", True),  # a folder too deep
        ("live/0.ts", True),
        ("clips/game-42/" + "c" * 23 + ".json", True),  # one past 22
        ("clips/game-42/buzzer beater.json", True),
        ("clips/game.42/buzzer.json", True),
        ("live/", False),  # a folder marker the console makes
        ("live/game/", False),
    ],
)
def test_an_upload_under_a_name_no_stream_or_clip_can_have_is_skipped_with_a_warning(
    key: str, warned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a venue's segment, or an app's clip request, under a stream id or clip name
    # that the contract does not allow (docs/live.md: 1 to 48, 1 to 22 characters)
    kept = own_log(monkeypatch, ingest_module, f"ingest.names.{key}")
    record = {"s3": {"bucket": {"name": "in"}, "object": {"key": quote_plus(key)}}}
    # WHEN its event comes / THEN nothing starts (no client is touched)
    seen = on_ingest([record], SETTINGS, None)  # type: ignore[arg-type]
    assert [s.get("skipped") for s in seen] == ["not live/<stream>/<name>"]
    # AND the log says why, as it does for a segment name no stream can number: else
    # the venue sees nothing published and nothing said
    warnings = [r.getMessage() for r in kept if r.levelno == logging.WARNING]
    assert bool(warnings) == warned, warnings
    if warned:
        assert "1 to 48 letters, digits, - or _" in warnings[0], warnings


@pytest.mark.parametrize(
    ("bucket", "event", "skipped"),
    [
        ("someone-else", "ObjectCreated:Put", "not this stack's ingest bucket"),
        ("in", "ObjectRemoved:Delete", "not a created object"),
        ("in", "ObjectRemoved:DeleteMarkerCreated", "not a created object"),
    ],
)
@pytest.mark.parametrize("name", ["42.ts", "END", "stream.json"])
def test_an_event_of_another_bucket_or_a_removal_touches_no_stream(
    bucket: str, event: str, skipped: str, name: str
) -> None:
    # GIVEN a hand-made (or misrouted) record of a real stream's segment, END or settings,
    # from another bucket than the stack's, or of its removal: as a segment it would claim
    # the stream's sequence and fail to read it, a gap; as END, close the stream
    record = {
        "eventName": event,
        "s3": {"bucket": {"name": bucket}, "object": {"key": f"live/game/{name}"}},
    }
    # WHEN its event comes / THEN nothing is noted or started (no client is touched)
    settings = replace(SETTINGS, ingest_bucket="in")
    seen = on_ingest([record], settings, None)  # type: ignore[arg-type]
    assert seen == [{"key": f"live/game/{name}", "skipped": skipped}]


def test_an_open_gops_leading_frames_are_dropped_and_counted_a_cut_between_keys_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics.metrics.clear_metrics()
    try:
        # GIVEN a segment whose first frames, sent after its keyframe, refer to the GOP
        # before (an open GOP: 4 at 12 fps with x265's defaults, a third of a second)
        # WHEN LiveProbe looks at it / THEN it goes on, the frames logged and counted
        with caplog.at_level(logging.WARNING):
            _keyed_at_start(UndecodableHead(0, 4, 0.333), "game", 7, 10.0)
        assert "segment 7 of game: its first 4 frames (0.333 s)" in caplog.text
        assert sum(metrics.metrics.metric_set[metrics.LIVE_FRAMES_DROPPED]["Value"]) == 4
        # AND one whose frames were sent before its keyframe (cut by the clock or by
        # bytes) is refused by name, however few (one frame at 60 fps)
        for cut in (UndecodableHead(12, 0, 0.4), UndecodableHead(1, 2, 0.05)):
            with pytest.raises(SegmentStartsMidGopError, match=f"starts with {cut.cut} frames"):
                _keyed_at_start(cut, "game", 9, 10.0)
        # AND one that starts on its keyframe says nothing
        _keyed_at_start(None, "game", 10, 10.0)
        assert sum(metrics.metrics.metric_set[metrics.LIVE_FRAMES_DROPPED]["Value"]) == 4
    finally:
        metrics.metrics.clear_metrics()
