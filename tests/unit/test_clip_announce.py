"""A clip whose master is written is published, whatever its announcement does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from tests import iam_policy
from tests.unit.test_announce import BUS, OUTPUT, Bus
from workflow.errors import (
    ClipRangeError,
    ClipSupersededError,
    EventNotSentError,
    TransientError,
)
from workflow.live import clip
from workflow.live.config import stream_config
from workflow.live.paths import ClipPaths, StreamPaths
from workflow.live.rules import Entry
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Bucket

PATHS = ClipPaths("game-42", "dunk")
SETTINGS = Settings(output_bucket=OUTPUT, event_bus=BUS)
MANIFEST = {
    "created_at": "2026-12-05T12:00:00.000+00:00",
    "duration": 7.3,
    "chunks": 3,
    "source": {"stream": "game-42", "clip": "dunk", "from": 61.5, "to": 68.8, "recut": 2},
}


@pytest.fixture
def output() -> Iterator[Bucket]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (OUTPUT, "ingest"):  # (the events' request bucket)
            s3.create_bucket(Bucket=bucket)
        yield Bucket(s3, OUTPUT)


def asked(etag: str, error: dict[str, str] | None = None) -> dict[str, Any]:
    request = {"bucket": "ingest", "key": PATHS.request_key, "etag": etag}
    return {"stream": PATHS.stream, "name": PATHS.name, "request": request, "error": error}


def publish(output: Bucket, etag: str) -> None:
    """The asset as ``make_clip`` leaves it for the request version ``etag`` when its
    master is written (its manifest.json not yet copied)."""
    output.put_json(clip._manifest_key(PATHS, asked(etag)), MANIFEST)
    output.put_bytes(
        f"{PATHS.prefix}master.m3u8", b"#EXTM3U\n", metadata={clip.REQUEST_METADATA: etag}
    )


def fail_writing(
    output: Bucket,
    monkeypatch: pytest.MonkeyPatch,
    event: dict[str, Any],
    clients: Any,
    suffix: str,
) -> None:
    """Run ``event``'s clip with S3 refusing every PUT of a key ending in ``suffix`` (each
    retry of it too): Clip raises, as its last retry would."""
    s3 = output.client
    writes = s3.put_object

    def refused(**kwargs: Any) -> Any:
        if kwargs["Key"].endswith(suffix):
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied"}}, "PutObject")
        return writes(**kwargs)

    monkeypatch.setattr(s3, "put_object", refused)
    with pytest.raises(botocore.exceptions.ClientError):
        clip.make_clip(event, SETTINGS, clients, lambda: 60.0)
    monkeypatch.setattr(s3, "put_object", writes)


def record_failure(event: dict[str, Any], clients: Any) -> None:
    """RecordFailure, as the clip state machine runs it on what Clip raised."""
    error = {"Error": "ClientError", "Cause": "AccessDenied"}
    clip.make_clip(event | {"error": error}, SETTINGS, clients, lambda: 60.0)


def markers(output: Bucket) -> list[str]:
    return output.keys("announced/")


def no_encoding(*args: Any) -> Any:
    raise AssertionError("a published clip was encoded again")


def test_a_refused_clip_published_is_tried_again_without_encoding_again(
    output: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    monkeypatch.setattr(clip, "_cut_rungs", no_encoding)
    # GIVEN a clip this request published, whose announcement the bus refused (and the
    # failure record of an earlier request of the same name)
    publish(output, "aaaa")
    output.put_json(PATHS.failure_key, {"error": "ClipRangeError"})
    bus.refuse = True
    # WHEN Clip runs again: THEN it encodes nothing and says the clip is published
    with pytest.raises(EventNotSentError, match="the clip is published, but"):
        clip.make_clip(asked('"AAAA"'), SETTINGS, clients, lambda: 60.0)
    # AND once the bus is back, it announces it once and gives the execution's result
    bus.refuse = False
    done = clip.make_clip(asked('"AAAA"'), SETTINGS, clients, lambda: 60.0)
    assert done == {"stream": "game-42", "clip": "dunk", "master": f"{PATHS.prefix}master.m3u8",
                    "duration": 7.3, "segments": 3, "recut": 2}  # fmt: skip
    [put] = bus.put
    assert put["DetailType"] == "Clip Published" and not output.exists(PATHS.failure_key)
    assert output.get_json(f"{PATHS.prefix}manifest.json") == MANIFEST
    assert json.loads(put["Detail"])["event_id"] == "clips/game-42/dunk/published-aaaa"


@pytest.mark.parametrize("master", ["this request's", "an earlier version's", None])
def test_a_clip_failed_after_its_master_is_no_failed_clip(
    output: Bucket, master: str | None
) -> None:
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    # GIVEN the clip's folder with this request's master, an earlier request's, or none,
    # and the segments each of the two versions wrote
    if master is not None:
        publish(output, "aaaa" if master == "this request's" else "bbbb")
    for etag in ("aaaa", "bbbb"):
        for sequence in (7, 8):
            key = f"{PATHS.prefix}360p/{clip._segment_names(asked(etag))(sequence)}"
            output.put_bytes(key, etag.encode())
    written = set(output.keys(""))
    own = {k for k in written if "/master" not in k and output.get_bytes(k) == b"aaaa"}
    # WHEN RecordFailure runs on what Clip raised after its retries
    error = {"Error": "EventNotSentError", "Cause": "the clip is published, but ..."}
    failed = clip.make_clip(asked('"aaaa"', error), SETTINGS, clients, lambda: 60.0)
    assert failed["error"] == "EventNotSentError"
    if master == "this request's":
        # THEN a published clip gets no failure record and no Clip Failed, its files
        # kept; its Clip Published is put again, which the bus now takes
        assert not output.exists(PATHS.failure_key)
        assert written <= set(output.keys(""))
        assert [e["DetailType"] for e in bus.put] == ["Clip Published"]
    else:
        # (a request that never wrote its master fails as ever, whatever master is there)
        assert output.exists(PATHS.failure_key)
        assert [e["DetailType"] for e in bus.put] == ["Clip Failed"]
        # AND the files it wrote are removed, and no other version's
        assert set(output.keys("")) == written - own | {PATHS.failure_key, *markers(output)}


def test_a_request_replaced_while_it_is_made_gives_way_to_the_newer(
    output: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = output.client
    s3.put_bucket_versioning(Bucket="ingest", VersioningConfiguration={"Status": "Enabled"})
    # GIVEN a request, replaced by another (another span) under the same name
    first = s3.put_object(Bucket="ingest", Key=PATHS.request_key, Body=b'{"from": 1, "to": 5}')
    s3.put_object(Bucket="ingest", Key=PATHS.request_key, Body=b'{"from": 2, "to": 6}')
    event = asked(first["ETag"].strip('"'))
    event["request"] |= {"bucket": "ingest", "version_id": first["VersionId"]}
    bus = Bus()
    clients = Clients(s3=s3, events=bus)
    # WHEN the first one's execution runs: THEN it gives way, by name, making nothing
    monkeypatch.setattr(clip, "_cut_rungs", no_encoding)
    with pytest.raises(ClipSupersededError, match="asked for again"):
        clip.make_clip(event, SETTINGS, clients, lambda: 60.0)
    # AND neither a Clip Failed nor the clip name's failure record is written: the clip's
    # outcome, published or failed, is the newer request's to tell
    error = {"Error": "ClipSupersededError", "Cause": "asked for again"}
    clip.make_clip(event | {"error": error}, SETTINGS, clients, lambda: 60.0)
    assert bus.put == []
    assert not output.exists(PATHS.failure_key)
    # (and so for any other error of the replaced request, a timeout say)
    timeout = {"Error": "Sandbox.Timedout", "Cause": "Task timed out"}
    clip.make_clip(event | {"error": timeout}, SETTINGS, clients, lambda: 60.0)
    assert bus.put == [] and not output.exists(PATHS.failure_key)


def test_a_request_deleted_before_it_is_read_is_superseded_under_the_clip_role(
    output: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a request in a bucket without versions (read by its ETag), deleted after its
    # event: S3 answers the clip's read of it 403, not 404, as its role may not list the
    # whole bucket
    s3 = output.client
    put = s3.put_object(Bucket="ingest", Key=PATHS.request_key, Body=b'{"from": 1, "to": 5}')
    s3.delete_object(Bucket="ingest", Key=PATHS.request_key)
    held = boto3.client("s3", region_name="us-east-1")
    iam_policy.enforce(held, "ClipFunction", {OUTPUT: "OutputBucket", "ingest": "IngestBucket"})
    monkeypatch.setattr(clip, "_cut_rungs", no_encoding)
    # WHEN its execution runs: THEN it is told from a refusal, and gives way by name (no
    # Clip Failed for a request nobody asks for any more)
    with pytest.raises(ClipSupersededError):
        clip.make_clip(asked(put["ETag"]), SETTINGS, Clients(s3=held), lambda: 60.0)


def test_a_request_published_while_an_older_one_uploads_keeps_its_master(
    output: Bucket, request_clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    older = request_clip(b'{"from": 0.5, "to": 2}')
    uploads = Bucket.upload_all
    newer: list[dict[str, Any]] = []

    def uploading(self: Bucket, files: Any, **options: Any) -> Any:
        # GIVEN a newer request of the clip made and published whole while the older
        # one uploads its images, after its look at the request before them
        tag = options.get("metadata", {}).get(clip.REQUEST_METADATA)
        if tag == clip._request_tag(older) and not newer:
            newer.append(request_clip(b'{"from": 0, "to": 3}'))
            clip.make_clip(newer[0], SETTINGS, clients, lambda: 60.0)
        return uploads(self, files, **options)

    monkeypatch.setattr(Bucket, "upload_all", uploading)
    # WHEN the older one goes on, THEN it gives way before its master: the master, the
    # manifest and the last Clip Published stay the newer span's (the older one's master
    # replaced them, and its event told of the older span last)
    with pytest.raises(ClipSupersededError):
        clip.make_clip(older, SETTINGS, clients, lambda: 60.0)
    master = output.head(f"{PATHS.prefix}master.m3u8")["Metadata"][clip.REQUEST_METADATA]
    assert master == clip._request_tag(newer[0])
    assert output.get_json(f"{PATHS.prefix}manifest.json")["source"]["from"] == 0
    published = [json.loads(e["Detail"]) for e in bus.put if e["DetailType"] == "Clip Published"]
    assert [p["from"] for p in published] == [0]


def test_a_failed_look_at_the_master_is_raised_and_cleans_up_nothing(
    output: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a clip this request published, and S3 throttling the look at its master
    publish(output, "aaaa")
    key = f"{PATHS.prefix}360p/{clip._segment_names(asked('aaaa'))(7)}"
    output.put_bytes(key, b"aaaa")
    written = set(output.keys(""))

    def throttled(**_: Any) -> None:
        raise botocore.exceptions.ClientError({"Error": {"Code": "SlowDown"}}, "HeadObject")

    monkeypatch.setattr(output.client, "head_object", throttled)
    bus = Bus()
    # WHEN RecordFailure runs: THEN it is tried again, never read as an unpublished clip
    error = {"Error": "EventNotSentError", "Cause": "the clip is published, but ..."}
    with pytest.raises(TransientError):
        clip.make_clip(asked('"aaaa"', error), SETTINGS, Clients(s3=output.client, events=bus),
                       lambda: 60.0)  # fmt: skip
    # AND nothing is failed, announced or removed meanwhile
    assert set(output.keys("")) == written and bus.put == []


def test_a_version_that_failed_after_its_playlists_takes_them_and_leaves_the_published_one(
    output: Bucket,
) -> None:
    # GIVEN a clip published by request "bbbb" (its master, a playlist and its segment),
    # and a version "aaaa" that wrote its segments and playlist, then failed before its
    # master
    publish(output, "bbbb")
    written = {}
    for etag, sequences in (("bbbb", (7,)), ("aaaa", (7, 8, 9))):
        names = clip._segment_names(asked(etag))
        for sequence in sequences:
            output.put_bytes(f"{PATHS.prefix}360p/{names(sequence)}", etag.encode())
        listed = "".join(f"#EXTINF:1.0,\n{names(n)}\n" for n in sequences)
        playlist = clip._playlist_name(asked(etag))
        output.put_bytes(f"{PATHS.prefix}360p/{playlist}", f"#EXTM3U\n{listed}".encode())
        written[etag] = {playlist, *map(names, sequences)}
    # WHEN RecordFailure runs: THEN all that version wrote goes (no master names it), and
    # the published version's files stay
    error = {"Error": "States.Timeout", "Cause": "..."}
    clip.make_clip(asked('"aaaa"', error), SETTINGS, Clients(s3=output.client, events=Bus()),
                   lambda: 60.0)  # fmt: skip
    left = {k.rsplit("/", 1)[1] for k in output.keys(f"{PATHS.prefix}360p/")}
    assert left == written["bbbb"]
    assert output.exists(f"{PATHS.prefix}master.m3u8")


# (ffmpeg stands in: a recut segment holds "recut", or nothing where no frame starts in it)
SLIVERS: list[str] = []


def run_ffmpeg(command: list[str], **_: Any) -> None:
    for arg in command:
        if arg.endswith("-clip.ts"):
            Path(arg).write_bytes(b"" if any(s in arg for s in SLIVERS) else b"recut")


@pytest.fixture
def cut(output: Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``_cut_rungs`` for a request version, over a stream of three 1 s segments."""
    monkeypatch.setattr(clip.runner, "run_ffmpeg", run_ffmpeg)
    monkeypatch.setattr(clip.encode, "first_frame", lambda _: 0.0)
    config = stream_config({}, 640, 360, 30.0, False, Settings(ladder="360:800"))
    stream = StreamPaths(PATHS.stream)
    for sequence in (0, 1, 2):
        output.put_bytes(stream.segment_key("360p", sequence), b"whole")
    arrivals = {n: {"bytes": {"360p": 5}} for n in (0, 1, 2)}

    def cut(etag: str, cuts: list[clip.Cut]) -> Any:
        workdir = tmp_path / etag
        workdir.mkdir()
        names = clip._segment_names(asked(etag))
        return clip._cut_rungs(PATHS, cuts, arrivals, config, output, workdir, lambda: 60.0, names)

    SLIVERS.clear()
    return cut


def test_a_version_that_fails_leaves_the_published_versions_segments_alone(
    output: Bucket, cut: Any
) -> None:
    # GIVEN a clip published from 0.5 s into segment 0 to the end of segment 1
    first, _ = cut("aaaa", [clip.Cut(0, 1.0, 0.5, 1.0), clip.Cut(1, 1.0, 0.0, 1.0)])
    # WHEN the same name is asked for from 0 s, and that version's segments are written
    # before it fails (or while it runs beside the first)
    cut("bbbb", [clip.Cut(0, 1.0, 0.0, 1.0), clip.Cut(1, 1.0, 0.0, 1.0)])
    # THEN every segment the published playlists name is still the one they were made with
    named = [f"{PATHS.prefix}360p/{entry.uri}" for entry in first["360p"]]
    assert [output.get_bytes(key) for key in named] == [b"recut", b"whole"]


def test_an_end_cut_that_holds_no_frame_is_left_out(output: Bucket, cut: Any) -> None:
    # GIVEN a span that starts in segment 0's last 10 ms, after its last frame
    SLIVERS.append("cut-0/")
    spans = [clip.Cut(0, 1.0, 0.99, 1.0), clip.Cut(1, 1.0, 0.0, 1.0, discontinuity=True),
             clip.Cut(2, 1.0, 0.0, 0.5)]  # fmt: skip
    # WHEN its rungs are cut: THEN the clip starts at segment 1, whose frames are the
    # span's first, with no empty segment and nothing breaking from before it
    playlists, kept = cut("aaaa", spans)
    assert [c.sequence for c in kept] == [1, 2] and not kept[0].discontinuity
    assert [(e.bytes, e.discontinuity) for e in playlists["360p"]] == [(5, False), (5, False)]
    assert not any(k.endswith(".ts") and "seg_00000" in k for k in output.keys(PATHS.prefix))
    # AND a span with no frame at all is a named error, publishing nothing
    SLIVERS.append("cut-2/")
    with pytest.raises(ClipRangeError, match="holds no frame"):
        cut("bbbb", [clip.Cut(2, 1.0, 0.995, 1.0)])
    sliver = clip._segment_names(asked("bbbb"))(2)
    assert not any(k.endswith(sliver) for k in output.keys(PATHS.prefix))


@pytest.fixture
def request_clip(output: Bucket, cut: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Put a request body for the clip and return its event, over a stream of three 1 s
    segments (ffmpeg and the images stubbed)."""
    config = stream_config({}, 640, 360, 30.0, False, Settings(ladder="360:800"))
    record = SimpleNamespace(config=config.to_dict(), state={"first_sequence": 0})
    table = SimpleNamespace(get=lambda stream: record)
    monkeypatch.setattr(clip, "StreamTable", lambda *_: table)
    timeline = SimpleNamespace(entries=[Entry(n, 1.0) for n in (0, 1, 2)])
    arrivals = {n: {"bytes": {"360p": 5}} for n in (0, 1, 2)}
    monkeypatch.setattr(clip, "live_timeline", lambda *_: (timeline, arrivals))

    def images(*args: Any) -> tuple[dict[str, Any], dict[str, Path]]:
        # A poster under the version's files tag (the last argument), its bytes the tag.
        tag = args[-1]
        poster = tmp_path / f"poster-{tag}.jpg"
        poster.write_bytes(tag.encode())
        summary = dict.fromkeys(("poster_time", "thumbnails", "sprites"), 0) | {
            "poster": f"images/{tag}/poster.jpg"
        }
        return summary, {f"{PATHS.prefix}images/{tag}/poster.jpg": poster}

    monkeypatch.setattr(clip, "_images", images)

    def request(body: bytes) -> dict[str, Any]:
        put = output.client.put_object(Bucket="ingest", Key=PATHS.request_key, Body=body)
        return asked(put["ETag"].strip('"'))

    return request


def test_a_player_on_an_earlier_versions_master_plays_that_version_to_its_end(
    output: Bucket, request_clip: Any
) -> None:
    clients = Clients(s3=output.client, events=Bus())
    # GIVEN a clip published from 0.5 s to 2 s, whose master a player has loaded
    clip.make_clip(request_clip(b'{"from": 0.5, "to": 2}'), SETTINGS, clients, lambda: 60.0)
    master = f"{PATHS.prefix}master.m3u8"
    loaded = output.get_bytes(master).decode()
    uris = [line for line in loaded.splitlines() if line and not line.startswith("#")]
    assert uris, loaded
    playlists = {uri: output.get_bytes(PATHS.prefix + uri) for uri in uris}
    # WHEN the same name is asked for again, from 0 s to 3 s, and published
    clip.make_clip(request_clip(b'{"from": 0, "to": 3}'), SETTINGS, clients, lambda: 60.0)
    assert output.get_bytes(master).decode() != loaded
    # THEN each playlist the loaded master names is still the first version's, whichever
    # rung the player switches to, and every segment it names is there
    for uri, text in playlists.items():
        assert output.get_bytes(PATHS.prefix + uri) == text, uri
        folder = PATHS.prefix + uri.rsplit("/", 1)[0]
        for name in (line for line in text.decode().splitlines() if line.startswith("seg_")):
            assert output.exists(f"{folder}/{name}"), name


def test_a_version_that_fails_leaves_the_published_versions_images_as_they_were(
    output: Bucket, request_clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = output.client
    clients = Clients(s3=s3, events=Bus())
    # GIVEN a published clip, its manifest naming its poster
    clip.make_clip(request_clip(b'{"from": 0.5, "to": 2}'), SETTINGS, clients, lambda: 60.0)
    manifest = json.loads(output.get_bytes(f"{PATHS.prefix}manifest.json"))
    poster = PATHS.prefix + manifest["images"]["poster"]
    first = output.get_bytes(poster)
    # WHEN the clip is asked for again and that version fails after its images are
    # uploaded (S3 refuses its media playlists, every retry)
    event = request_clip(b'{"from": 0, "to": 3}')
    fail_writing(output, monkeypatch, event, clients, ".m3u8")
    record_failure(event, clients)
    # THEN the published clip's poster is still its own, and the failed version's
    # images are gone
    assert output.get_bytes(poster) == first
    images = output.keys(f"{PATHS.prefix}images/")
    assert images == [poster], images


def test_a_version_that_fails_after_its_master_finishes_its_manifest_and_announces_it(
    output: Bucket, request_clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    # GIVEN a published clip, from 0.5 s to 2 s
    clip.make_clip(request_clip(b'{"from": 0.5, "to": 2}'), SETTINGS, clients, lambda: 60.0)
    # WHEN it is asked for again, from 0 s to 3 s, and S3 refuses that version's
    # manifest.json (every retry), after its master is written
    event = request_clip(b'{"from": 0, "to": 3}')
    fail_writing(output, monkeypatch, event, clients, "/manifest.json")
    record_failure(event, clients)
    # THEN RecordFailure finishes it: manifest.json describes the span the master plays
    # (it described the earlier version's), and Clip Published tells of it (no event did)
    master = output.head(f"{PATHS.prefix}master.m3u8")["Metadata"][clip.REQUEST_METADATA]
    assert master == clip._request_tag(event)
    assert output.get_json(f"{PATHS.prefix}manifest.json")["source"]["from"] == 0
    published = [json.loads(e["Detail"]) for e in bus.put if e["DetailType"] == "Clip Published"]
    assert [p["from"] for p in published] == [0.5, 0]
    assert not output.exists(PATHS.failure_key)


def test_a_version_that_fails_at_its_master_leaves_the_published_manifest_as_it_was(
    output: Bucket, request_clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = output.client
    clients = Clients(s3=s3, events=Bus())
    # GIVEN a published clip, from 0.5 s to 2 s
    clip.make_clip(request_clip(b'{"from": 0.5, "to": 2}'), SETTINGS, clients, lambda: 60.0)
    published = {
        name: output.get_bytes(f"{PATHS.prefix}{name}") for name in ("manifest.json", "master.m3u8")
    }
    # WHEN it is asked for again, from 0 s to 3 s, and S3 refuses that version's master
    # (every retry), after its manifest is written
    event = request_clip(b'{"from": 0, "to": 3}')
    fail_writing(output, monkeypatch, event, clients, "master.m3u8")
    record_failure(event, clients)
    # THEN the published clip's manifest still describes the span its master plays, and
    # nothing the failed version wrote is left
    for name, body in published.items():
        assert output.get_bytes(f"{PATHS.prefix}{name}") == body, name
    assert json.loads(published["manifest.json"])["source"]["from"] == 0.5
    assert not output.exists(clip._manifest_key(PATHS, event))


def test_a_first_version_that_fails_before_its_master_leaves_nothing_in_the_folder(
    output: Bucket, request_clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = output.client
    # GIVEN the first request of a clip, over a stream of three 1 s segments
    event = request_clip(b'{"from": 0.5, "to": 2}')
    # WHEN it writes its segments, images, playlists and manifest, and then S3 refuses its
    # master (every retry of it)
    clients = Clients(s3=s3, events=Bus())
    fail_writing(output, monkeypatch, event, clients, "master.m3u8")
    assert output.keys(f"{PATHS.prefix}360p/") and output.exists(clip._manifest_key(PATHS, event))
    record_failure(event, clients)
    # THEN its failure is recorded, and no part of an asset is left for an app to find:
    # no playlist, manifest, image or segment (no master names any of them)
    assert output.exists(PATHS.failure_key)
    assert output.keys(PATHS.prefix) == []
