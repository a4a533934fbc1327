"""Outcomes are announced once each, and every detail the code builds fits its schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from tests.outcomes import check
from workflow import events
from workflow.errors import EventNotSentError
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Bucket
from workflow.vod.failure import record_failure
from workflow.vod.jobs import JobPaths
from workflow.vod.publish import announce_published

OUTPUT = "out"
BUS = "vidflow-events"
AT = "2026-11-30T12:00:00.000+00:00"


class Bus:
    """An EventBridge client that keeps what it is given, or fails as told."""

    def __init__(self) -> None:
        self.put: list[dict[str, Any]] = []
        self.fail_with: Exception | None = None
        self.refuse = False

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail_with is not None:
            raise self.fail_with
        if self.refuse:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]}
        self.put.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(len(self.put))}]}


@pytest.fixture
def output() -> Iterator[Bucket]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=OUTPUT)
        yield Bucket(s3, OUTPUT)


def failed() -> events.Outcome:
    return events.job_failed(
        {
            "job_id": "clip-0123456789abcdef",
            "error": "NotAVideoError",
            "cause": "not a video",
            "input": {"bucket": "in", "key": "uploads/clip.mp4"},
            "failed_at": AT,
        }
    )


def test_an_outcome_is_put_once_however_often_it_is_announced(output: Bucket) -> None:
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    assert events.announce(failed(), BUS, output, clients)
    assert not events.announce(failed(), BUS, output, clients)
    assert len(bus.put) == 1
    assert bus.put[0]["EventBusName"] == BUS and bus.put[0]["Source"] == "vidflow"
    # the marker is the detail that was put
    assert output.get_json(failed().marker_key) == json.loads(bus.put[0]["Detail"])


def test_a_refused_put_takes_its_claim_back_so_the_retry_puts_it(output: Bucket) -> None:
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    bus.refuse = True
    with pytest.raises(EventNotSentError) as raised:
        events.announce(failed(), BUS, output, clients)
    assert raised.value.transient
    bus.refuse, bus.fail_with = False, ConnectionError("bus unreachable")
    with pytest.raises(ConnectionError):
        events.announce(failed(), BUS, output, clients)
    assert not output.exists(failed().marker_key)
    bus.fail_with = None
    assert events.announce(failed(), BUS, output, clients)
    assert len(bus.put) == 1


def test_without_a_bus_nothing_is_announced(output: Bucket) -> None:
    bus = Bus()
    assert not events.announce(failed(), "", output, Clients(s3=output.client, events=bus))
    assert bus.put == [] and not output.exists(failed().marker_key)


def envelope(outcome: events.Outcome) -> dict[str, Any]:
    """The event EventBridge would deliver for ``outcome``."""
    return {"version": "0", "id": "1f2e3d4c", "detail-type": outcome.detail_type,
            "source": events.SOURCE, "account": "123456789012", "time": "2026-11-30T12:00:00Z",
            "region": "us-east-1", "resources": [], "detail": outcome.full_detail()}  # fmt: skip


URL = "s3://out/live/court-1/live.m3u8"


@pytest.mark.parametrize(
    "outcome",
    [
        failed(),
        events.live_stream_started("court-1", 0, URL, AT),
        events.live_stream_gap("court-1", 7, 7, "missing", AT),
        events.live_stream_gap("court-1", 8, 3607, "failed", AT),
        events.live_stream_ended("court-1", 10, 1, 40.0, {"master": URL, "manifest": URL}, AT),
        events.live_stream_ended("court-1", 0, 3, 0.0, {}, AT),
        events.clip_published(
            "court-1",
            "dunk",
            '"9b2cf535f27731c9"',
            {"source": {"from": 2.5, "to": 9.8}, "duration": 7.3, "created_at": AT},
            {"master": URL, "manifest": URL},
            # (an S3 version id: opaque, "/" and "+" included)
            "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
        ),
        events.clip_failed(
            "court-1",
            "later",
            "",
            {"error": "ClipRangeError", "cause": "past the live edge", "failed_at": AT},
        ),
    ],
    ids=lambda o: o.detail_type,
)
def test_every_outcome_the_code_builds_fits_its_schema(outcome: events.Outcome) -> None:
    check(envelope(outcome))


def test_every_detail_type_has_a_schema_and_every_schema_a_detail_type() -> None:
    from tests.outcomes import SCHEMAS

    named = {p.name for p in SCHEMAS.glob("*.v1.json")}
    assert named == {f"{t.lower().replace(' ', '-')}.v1.json" for t in events.DETAIL_TYPES}


def test_a_published_assets_announcement_that_fails_is_tried_again_by_name(
    output: Bucket,
) -> None:
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    settings = Settings(output_bucket=OUTPUT, event_bus=BUS)
    # GIVEN a bus that is missing, then one that refuses the entry
    missing: Any = {"Error": {"Code": "ResourceNotFoundException", "Message": "no bus"}}
    bus.fail_with = botocore.exceptions.ClientError(missing, "PutEvents")
    for _ in range(2):
        # THEN each is EventNotSentError (which Publish's retrier names), saying the asset
        # is published, and takes its claim back
        with pytest.raises(EventNotSentError, match="the asset is published, but"):
            announce_published(failed(), settings, output, clients)
        assert not output.exists(failed().marker_key)
        bus.fail_with, bus.refuse = None, True
    # WHEN the bus is back, the next run puts it
    bus.refuse = False
    assert announce_published(failed(), settings, output, clients)
    assert len(bus.put) == 1


@pytest.mark.parametrize("published", [True, False])
def test_a_failure_after_the_master_is_written_leaves_the_published_asset_alone(
    output: Bucket, published: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (a failed job is counted, as its function's environment names the namespace)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "vidflow-test")
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    paths = JobPaths("clip-0123456789abcdef")
    # GIVEN a job's output and scratch records, with or without its master playlist
    written = [f"{paths.output_prefix}720p/seg_00000.ts", paths.result_key("chunk-00000")]
    written += [paths.master_key] if published else []
    for key in written:
        output.put_bytes(key, b"x")
    event = {
        "job_id": paths.job_id,
        "source": {"bucket": "in", "key": "uploads/clip.mp4"},
        "error": {"Error": "EventNotSentError", "Cause": "Job Published was not put"},
    }
    # WHEN RecordFailure runs on what Publish raised
    recorded = record_failure(event, Settings(output_bucket=OUTPUT, event_bus=BUS), clients)
    assert recorded["error"] == "EventNotSentError"
    kept = set(output.keys(""))
    if published:
        # THEN a published asset is no failed job: no failure record, no Job Failed, and
        # every file kept
        assert kept == set(written) and recorded["failure_key"] is None
        assert bus.put == []
    else:
        # (a job that never wrote its master fails as ever, leaving only its record and
        # its announcement's marker)
        assert kept == {paths.failure_key, "announced/jobs/clip-0123456789abcdef/failed.json"}
        assert [e["DetailType"] for e in bus.put] == ["Job Failed"]


def test_a_failed_job_whose_event_the_bus_refuses_still_leaves_nothing_a_player_reads(
    output: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "vidflow-test")
    bus = Bus()
    clients = Clients(s3=output.client, events=bus)
    settings = Settings(output_bucket=OUTPUT, event_bus=BUS)
    paths = JobPaths("clip-0123456789abcdef")
    # GIVEN a job that failed in Publish with its rungs' segments and playlists written,
    # its chunk's own error recorded, and a bus that refuses every event
    for key in (f"{paths.output_prefix}720p/seg_00000.ts", f"{paths.output_prefix}720p/index.m3u8"):
        output.put_bytes(key, b"x")
    output.put_json(
        paths.item_error_key("video-00001"),
        {"error": "TranscodeError", "cause": "video-00001: ffmpeg failed"},
    )
    event = {
        "job_id": paths.job_id,
        "source": {"bucket": "in", "key": "uploads/clip.mp4"},
        "error": {"Error": "IncompleteOutputError", "Cause": "1 of 3 work items have no result"},
    }
    bus.refuse = True
    # WHEN RecordFailure runs out of its attempts on the bus
    for _ in range(4):
        with pytest.raises(EventNotSentError):
            record_failure(event, settings, clients)
    # THEN no rung's playlist or segment is left for a player, and the record is the item's
    assert output.keys(paths.output_prefix) == []
    assert output.get_json(paths.failure_key)["error"] == "TranscodeError"
    # AND once the bus is back, a run again announces the item's error
    bus.refuse = False
    assert record_failure(event, settings, clients)["error"] == "TranscodeError"
    assert [json.loads(e["Detail"])["error"] for e in bus.put] == ["TranscodeError"]


def test_an_upload_without_versions_is_named_with_a_null_version() -> None:
    # (the reconciler writes a suspended bucket's version as "null", as S3 lists it)
    named = events.upload_of({"bucket": "in", "key": "uploads/a.mp4", "version_id": "null"})
    assert named["version_id"] is None
