"""The reconciler's rules: which uploads get their job started, and which are left alone."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from tests import iam_policy
from tests.unit.tables import create_table
from workflow.live import lost
from workflow.live.paths import ClipPaths, StreamPaths, clip_execution_name
from workflow.live.store import MAX_ATTEMPTS, StreamTable, failed_attempt
from workflow.local import sse_c
from workflow.local.template import Stack
from workflow.reconcile import reconcile
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Bucket
from workflow.vod.jobs import JobPaths, job_id

INGEST, OUTPUT = "vidflow-ingest-test", "vidflow-output-test"
ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:vidflow-vod"


class _Exceptions:
    class ExecutionAlreadyExists(Exception):
        pass

    class ExecutionDoesNotExist(Exception):
        pass


class FakeStepFunctions:
    """Executions by name, as Step Functions keeps them."""

    exceptions = _Exceptions

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.machines: dict[str, str] = {}
        self.described = 0
        self.asked: list[str] = []
        self.started: dict[str, datetime] = {}  # (one a test put in by hand: started now)
        self.status: dict[str, str] = {}

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        self.asked.append(name)
        if name in self.executions:
            raise self.exceptions.ExecutionAlreadyExists(name)
        self.executions[name] = json.loads(input)
        self.machines[name] = stateMachineArn
        self.started[name] = datetime.now(UTC)
        return {"executionArn": name}

    def list_executions(self, *, stateMachineArn: str, **page: Any) -> dict[str, Any]:
        """One page, newest first; an execution a test put in by hand is of every machine
        and started now."""
        names = [
            n for n in self.executions if self.machines.get(n, stateMachineArn) == stateMachineArn
        ]
        start = int(page.get("nextToken", 0))
        size = int(page.get("maxResults", 100))
        now = datetime.now(UTC)
        listed = [{"name": n, "startDate": self.started.get(n, now)} for n in reversed(names)]
        more = {"nextToken": str(start + size)} if start + size < len(listed) else {}
        return {"executions": listed[start : start + size], **more}

    def describe_execution(self, *, executionArn: str) -> dict[str, str]:
        self.described += 1
        name = executionArn.rsplit(":", 1)[-1]
        if name not in self.executions:
            raise self.exceptions.ExecutionDoesNotExist(name)
        started = {"startDate": self.started[name]} if name in self.started else {}
        return {"status": self.status.get(name, "RUNNING"), **started,
                "input": json.dumps(self.executions[name])}  # fmt: skip


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (INGEST, OUTPUT):
            client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=INGEST, VersioningConfiguration={"Status": "Enabled"})
        yield client


@pytest.fixture
def table(s3: Any) -> StreamTable:
    """The live table as the template declares it (inside the same mocked account)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    name = create_table(client, Stack(ROOT), "LiveTable")
    return StreamTable(client, name)


def _upload(s3: Any, key: str, body: bytes = b"video") -> str:
    s3.put_object(Bucket=INGEST, Key=key, Body=body)
    return job_id(INGEST, key, s3.head_object(Bucket=INGEST, Key=key)["ETag"])


def _settings(grace: float = 600.0) -> Settings:
    return Settings(
        output_bucket=OUTPUT,
        state_machine_arn=ARN,
        ingest_bucket=INGEST,
        reconcile_grace_seconds=grace,
    )


def test_an_upload_without_a_job_gets_one_pinned_to_its_version(s3: Any) -> None:
    # GIVEN an upload whose event never started a job, older than the grace period
    job = _upload(s3, "uploads/lost game.mp4")
    sfn = FakeStepFunctions()
    later = datetime.now(UTC) + timedelta(minutes=11)
    # WHEN the reconciler runs
    found = reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)
    # THEN that job starts, named as its event would have named it, pinned to its version
    assert found == {"checked": 1, "started": [job], "segments": []}
    source = sfn.executions[job]["source"]
    assert source["key"] == "uploads/lost game.mp4"
    assert source["version_id"] == s3.head_object(Bucket=INGEST, Key=source["key"])["VersionId"]
    # AND a second run starts nothing
    assert reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)["started"] == []


def test_uploads_with_a_job_a_record_or_in_grace_are_left_alone(s3: Any) -> None:
    sfn = FakeStepFunctions()
    running = _upload(s3, "uploads/running.mp4")
    sfn.executions[running] = {}
    failed = _upload(s3, "uploads/failed.mp4", b"other")
    s3.put_object(Bucket=OUTPUT, Key=JobPaths(failed).failure_key, Body=b"{}")
    published = _upload(s3, "uploads/published.mp4", b"third")
    s3.put_object(Bucket=OUTPUT, Key=JobPaths(published).master_key, Body=b"#EXTM3U")
    _upload(s3, "uploads/published.en.srt", b"1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    # WHEN the reconciler runs within the grace period of every upload, and after it
    now = datetime.now(UTC)
    assert reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=now) == {
        "checked": 0,
        "started": [],
        "segments": [],
    }
    later = now + timedelta(minutes=11)
    found = reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)
    # THEN nothing starts: each has a job, a failure record or an asset; sidecars start none
    assert found == {"checked": 3, "started": [], "segments": []}
    # AND uploads older than the lookback are left alone too
    much_later = now + timedelta(days=3)
    assert reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=much_later)["checked"] == 0


def test_a_live_segment_nothing_processed_gets_its_execution(s3: Any, table: StreamTable) -> None:
    # GIVEN three segments of a stream: one published, one failed, one never processed
    for sequence in (0, 1, 2):
        s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"ts %d" % sequence)
    s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b"")
    table.create("game")
    table.record_arrival("game", 0, {"duration": 4.0, "at": 1.0, "failed": False})
    s3.put_object(Bucket=OUTPUT, Key=StreamPaths("game").failure_key(1), Body=b"{}")
    sfn = FakeStepFunctions()
    settings = replace(_settings(), live_table=table.name, live_state_machine_arn=ARN + "-live")
    later = datetime.now(UTC) + timedelta(minutes=11)
    # WHEN the reconciler runs
    found = reconcile(settings, Clients(s3=s3, sfn=sfn, dynamodb=table.client), now=later)
    # THEN only the unprocessed segment's execution starts, as LiveIngest would start it
    assert found["segments"] == ["game/2"]
    ((payload),) = sfn.executions.values()
    assert (payload["stream"], payload["sequence"]) == ("game", 2)
    assert payload["source"]["key"] == "live/game/2.ts"


def _live(table: StreamTable) -> Settings:
    return replace(_settings(), live_table=table.name, live_state_machine_arn=ARN + "-live")


def _push(s3: Any, table: StreamTable, stream: str, sequences: Any, *, lost: set[int]) -> None:
    """Upload segments; record an arrival for each except the ``lost`` (published long ago)."""
    table.create(stream)
    for sequence in sequences:
        s3.put_object(Bucket=INGEST, Key=f"live/{stream}/{sequence}.ts", Body=b"ts %d" % sequence)
        if sequence not in lost:
            table.record_arrival(stream, sequence, {"duration": 4.0, "at": 1.0, "failed": False})


def _run(s3: Any, table: StreamTable, minutes: float = 11) -> tuple[list[str], dict[str, int]]:
    """One reconcile run ``minutes`` from now: the segments it started, and the calls it made
    (S3 list pages and DynamoDB calls, by operation)."""
    calls: dict[str, int] = {}

    def count(event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        calls[operation] = calls.get(operation, 0) + 1

    for client in (s3, table.client):
        client.meta.events.register("before-call", count)
    try:
        later = datetime.now(UTC) + timedelta(minutes=minutes)
        clients = Clients(s3=s3, sfn=FakeStepFunctions(), dynamodb=table.client)
        found = reconcile(_live(table), clients, now=later)["segments"]
    finally:
        for client in (s3, table.client):
            client.meta.events.unregister("before-call", count)
    return found, calls


@pytest.mark.parametrize("segments", [120, 240])
def test_a_run_costs_the_same_however_many_segments_were_processed(
    s3: Any, table: StreamTable, segments: int
) -> None:
    # GIVEN two streams whose every segment was published, and one run that accounted for them
    for stream in ("a", "b"):
        _push(s3, table, stream, range(segments), lost=set())
    assert _run(s3, table)[0] == []
    # WHEN the reconciler runs again
    found, calls = _run(s3, table)
    # THEN it finds nothing, with per stream one record read, one arrivals query and one
    # list page (plus a page of uploads/ and one of stream names): 120 or 240 segments a stream,
    # the same calls
    assert found == []
    assert calls == {"ListObjectsV2": 2 + 2, "GetItem": 2, "Query": 2}


def test_a_lost_segment_is_found_wherever_it_is_and_started_until_it_arrives(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN a long stream already accounted for
    _push(s3, table, "game", range(90), lost=set())
    assert _run(s3, table)[0] == []
    # WHEN more segments come, some of whose events are lost: in the middle, across a
    # power of ten, and at the very end (nothing after it arrived)
    _push(s3, table, "game", range(90, 112), lost={95, 99, 100, 111})
    found, calls = _run(s3, table)
    # THEN each lost one gets its execution, with a handful of calls: uploads/ and stream
    # names, a page from 80 and one from 100, and a failure-record lookup per lost one
    assert found == ["game/95", "game/99", "game/100", "game/111"]
    assert calls["ListObjectsV2"] == 2 + 2 + 4 and calls["Query"] == 1
    # AND until their arrivals are recorded every run starts them again (a duplicate
    # execution publishes nothing twice); once recorded, nothing is started
    assert _run(s3, table)[0] == ["game/95", "game/99", "game/100", "game/111"]
    for sequence in (95, 99, 100, 111):
        table.record_arrival("game", sequence, {"duration": 4.0, "at": 2.0, "failed": False})
    assert _run(s3, table)[0] == []
    assert _run(s3, table)[1]["ListObjectsV2"] == 2 + 1


def test_the_newest_lost_segment_is_found_while_an_older_one_holds_the_stream_open(
    s3: Any, table: StreamTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN pages of 10 keys (standing for S3's 1,000: a reconciler 900 segments behind)
    monkeypatch.setattr(lost, "PAGE_KEYS", 10)
    # AND segment 3 whose event was lost, started by every run until it arrives: what
    # the stream is accounted for stays below it
    _push(s3, table, "game", range(10), lost={3})
    assert _run(s3, table)[0] == ["game/3"]
    # WHEN 50 more segments come and the event of the newest, 60, is lost too
    _push(s3, table, "game", range(10, 61), lost={3, 60})
    # THEN the next run finds it as well, though its pages from 3's decade end far short
    assert _run(s3, table)[0] == ["game/3", "game/60"]


def test_a_segment_in_its_grace_period_is_checked_again_after_it(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN a stream with a segment whose event is late, not lost
    _push(s3, table, "game", range(20), lost={12})
    # WHEN the reconciler runs within that segment's grace period
    found, _ = _run(s3, table, minutes=5)
    # THEN it is left alone, but not forgotten: past the grace it is started
    assert found == []
    assert _run(s3, table)[0] == ["game/12"]


def test_a_sequence_never_uploaded_does_not_hold_the_stream_back(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN a stream that skipped sequence 5 (never uploaded), later ones published long ago
    _push(s3, table, "game", [*range(5), *range(6, 300)], lost=set())
    assert _run(s3, table)[0] == []
    # WHEN it runs again, THEN the hole costs nothing: the same calls as a stream without one
    assert _run(s3, table)[1] == {"ListObjectsV2": 2 + 1, "GetItem": 1, "Query": 1}


def test_zero_padded_names_and_streams_without_a_record_are_found(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN a venue that names its segments 0000.ts, 0001.ts, ... and loses one event
    table.create("padded")
    for sequence in range(30):
        s3.put_object(Bucket=INGEST, Key=f"live/padded/{sequence:04d}.ts", Body=b"%d" % sequence)
        if sequence != 17:
            table.record_arrival("padded", sequence, {"duration": 4.0, "at": 1.0, "failed": False})
    assert _run(s3, table)[0] == ["padded/17"]
    table.record_arrival("padded", 17, {"duration": 4.0, "at": 2.0, "failed": False})
    assert _run(s3, table)[0] == []
    s3.put_object(Bucket=INGEST, Key="live/padded/0030.ts", Body=b"30")
    assert _run(s3, table)[0] == ["padded/30"]
    # AND a stream every one of whose events was lost (no record at all)
    for sequence in range(3):
        s3.put_object(Bucket=INGEST, Key=f"live/dark/{sequence}.ts", Body=b"%d" % sequence)
    assert [s for s in _run(s3, table)[0] if s.startswith("dark/")] == [
        "dark/0",
        "dark/1",
        "dark/2",
    ]


def _failed(s3: Any, table: StreamTable, sequence: int, error: str, **noted: Any) -> str:
    """Upload segment ``sequence`` of "game" and record it failed with ``error``; its ETag."""
    key = f"live/game/{sequence}.ts"
    s3.put_object(Bucket=INGEST, Key=key, Body=b"ts %d" % sequence)
    etag = str(s3.head_object(Bucket=INGEST, Key=key)["ETag"]).strip('"')
    arrival = {"duration": None, "at": datetime.now(UTC).timestamp(), "failed": True,
               "error": error, "upload": f"/{etag}"}  # fmt: skip
    arrival |= failed_attempt(error, arrival["upload"], table.arrival("game", sequence))
    table.record_arrival("game", sequence, arrival | noted)
    s3.put_object(Bucket=OUTPUT, Key=StreamPaths("game").failure_key(sequence), Body=b"{}")
    return etag


def test_a_refused_segment_far_ahead_holds_up_no_lost_segment_below_it(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN a stream accounted for up to 30, and a broken counter's 999999999.ts, which
    # LiveProbe refused (SequenceJumpError: its failed arrival is on record)
    _push(s3, table, "game", range(31), lost=set())
    assert _run(s3, table)[0] == []
    _failed(s3, table, 999_999_999, "SequenceJumpError")
    _run(s3, table)
    # WHEN the encoder carries on from 31 and the event of 35 is lost
    _push(s3, table, "game", range(31, 41), lost={35})
    found, calls = _run(s3, table)
    # THEN the run finds 35: a refused segment is no later one published, which would
    # have given up every number below it; and the run ends, with the stream's keys
    # listed in full (looking at each number up to it ran past the function's timeout,
    # every run, and no stream's lost segments were found again)
    assert "game/35" in found
    assert table.get("game").reconciled == 35
    # (a page from each power of ten up to it, one of the stream's keys in full)
    assert calls["ListObjectsV2"] <= 2 + 10 + 1


def _started(s3: Any, table: StreamTable) -> dict[str, Any]:
    """One reconcile run 11 minutes from now: the executions it started, by name."""
    sfn = FakeStepFunctions()
    later = datetime.now(UTC) + timedelta(minutes=11)
    reconcile(_live(table), Clients(s3=s3, sfn=sfn, dynamodb=table.client), now=later)
    return sfn.executions


@pytest.mark.parametrize(
    "error",
    [
        "Sandbox.Timedout",
        "SequenceJumpError",
        "MissingInitSegmentError",
        "InitSegmentMismatchError",
        "SegmentClaimedError",
    ],
)
def test_a_segment_whose_failure_says_nothing_against_its_bytes_is_tried_again(
    s3: Any, table: StreamTable, error: str
) -> None:
    # GIVEN a stream whose segment 1 ran out of time on Lambda, overtook the stream's
    # backlog after an outage, (fMP4) overtook its init.mp4, or came while a failed
    # upload's claim held its files (0 and 2 published)
    _push(s3, table, "game", [0, 2], lost=set())
    etag = _failed(s3, table, 1, error)
    # WHEN the reconciler runs past the grace period
    started = _started(s3, table)
    # THEN the same upload is started again, under an execution name of its own
    assert list(started) == [f"game-000000001-{etag[:8]}-2"]
    assert started[f"game-000000001-{etag[:8]}-2"]["source"]["etag"] == etag
    # AND while its attempts fail the same way it is tried again, MAX_ATTEMPTS in all
    for attempt in range(3, MAX_ATTEMPTS + 1):
        _failed(s3, table, 1, error)
        assert list(_started(s3, table)) == [f"game-000000001-{etag[:8]}-{attempt}"]
    _failed(s3, table, 1, error)
    assert _started(s3, table) == {}


@pytest.mark.parametrize("error", ["UnsafeInputError", "NotAVideoError", "SegmentReusedError"])
def test_a_segment_refused_for_its_bytes_is_not_tried_again(
    s3: Any, table: StreamTable, error: str
) -> None:
    _push(s3, table, "game", [0, 2], lost=set())
    _failed(s3, table, 1, error)
    assert _started(s3, table) == {}


def test_a_mended_upload_of_a_failed_segment_whose_event_was_lost_is_started(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN segment 1 failed as not a video, then uploaded again mended, that event lost
    _push(s3, table, "game", [0, 2], lost=set())
    _failed(s3, table, 1, "NotAVideoError")
    s3.put_object(Bucket=INGEST, Key="live/game/1.ts", Body=b"mended")
    etag = str(s3.head_object(Bucket=INGEST, Key="live/game/1.ts")["ETag"]).strip('"')
    # WHEN the reconciler runs / THEN the mended upload gets its execution
    assert list(_started(s3, table)) == [f"game-000000001-{etag[:8]}"]


def test_a_segment_refused_for_a_claim_that_came_to_nothing_is_started_again(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN segment 1 refused (SegmentReusedError) while another upload of it held its
    # claim, and that upload's execution died unpublished: no arrival, a failure record
    _push(s3, table, "game", [0, 2], lost={1})
    s3.put_object(Bucket=INGEST, Key="live/game/1.ts", Body=b"restarted encoder")
    etag = str(s3.head_object(Bucket=INGEST, Key="live/game/1.ts")["ETag"]).strip('"')
    refused = {"error": "SegmentReusedError", "cause": "segment 1 is being published"}
    failure = StreamPaths("game").failure_key(1)
    s3.put_object(Bucket=OUTPUT, Key=failure, Body=json.dumps(refused).encode())
    # WHEN the reconciler runs / THEN the upload gets its execution again
    assert list(_started(s3, table)) == [f"game-000000001-{etag[:8]}"]
    # AND a failure record of any other error accounts for the segment, as before
    s3.put_object(Bucket=OUTPUT, Key=failure, Body=json.dumps(refused | {"error": "X"}).encode())
    table.note_reconciled("game", 0)
    assert _started(s3, table) == {}


def test_a_lost_live_segment_is_started_within_the_reconcilers_role(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN an upload and a stream's segment whose events were lost (the stream's other
    # segment published)
    job = _upload(s3, "uploads/lost.mp4")
    for sequence in (0, 1):
        s3.put_object(Bucket=INGEST, Key=f"live/game/{sequence}.ts", Body=b"ts %d" % sequence)
    table.create("game")
    table.record_arrival("game", 0, {"duration": 4.0, "at": 1.0, "failed": False})
    # WHEN the reconciler runs with only what its role allows on AWS
    held_s3 = boto3.client("s3", region_name="us-east-1")
    held_dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    names = {INGEST: "IngestBucket", OUTPUT: "OutputBucket", table.name: "LiveTable"}
    for client in (held_s3, held_dynamodb):
        iam_policy.enforce(client, "ReconcileFunction", names)
    sfn = FakeStepFunctions()
    later = datetime.now(UTC) + timedelta(minutes=11)
    found = reconcile(_live(table), Clients(s3=held_s3, sfn=sfn, dynamodb=held_dynamodb), later)
    # THEN the upload's job and the segment's execution start, as their events would have
    assert found["started"] == [job]
    assert found["segments"] == ["game/1"]


def test_a_clip_request_whose_event_was_lost_gets_its_clip_within_the_role(s3: Any) -> None:
    # GIVEN a clip request whose event was lost, and one whose clip was started by its event
    s3.put_object(Bucket=INGEST, Key="clips/game/buzzer.json", Body=b'{"from": 1, "to": 3}')
    s3.put_object(Bucket=INGEST, Key="clips/game/opener.json", Body=b'{"from": 0, "to": 2}')
    opener = s3.head_object(Bucket=INGEST, Key="clips/game/opener.json")
    sfn = FakeStepFunctions()
    ran = clip_execution_name(ClipPaths("game", "opener"), opener["ETag"], opener["VersionId"])
    sfn.executions[ran] = {}
    held_s3 = boto3.client("s3", region_name="us-east-1")
    iam_policy.enforce(
        held_s3, "ReconcileFunction", {INGEST: "IngestBucket", OUTPUT: "OutputBucket"}
    )
    settings = replace(_settings(), clip_state_machine_arn=ARN + "-clip")
    # WHEN the reconciler runs within the grace period, and after it (twice)
    now = datetime.now(UTC)
    assert reconcile(settings, Clients(s3=held_s3, sfn=sfn), now=now)["clips"] == []
    later = now + timedelta(minutes=11)
    found = reconcile(settings, Clients(s3=held_s3, sfn=sfn), now=later)
    again = reconcile(settings, Clients(s3=held_s3, sfn=sfn), now=later)
    # THEN the lost request's clip starts once, named and pinned as its event would have
    buzzer = s3.head_object(Bucket=INGEST, Key="clips/game/buzzer.json")
    name = clip_execution_name(ClipPaths("game", "buzzer"), buzzer["ETag"], buzzer["VersionId"])
    assert found["clips"] == ["game/buzzer"] and again["clips"] == []
    # AND a run asks Step Functions to start no clip that it lists as started (its
    # StartExecution calls do not grow with the lookback's clips)
    assert sfn.asked == [name]
    assert sfn.executions[name]["request"] == {
        "bucket": INGEST,
        "key": "clips/game/buzzer.json",
        "etag": buzzer["ETag"].strip('"'),
        "version_id": buzzer["VersionId"],
    }
    assert len(sfn.executions) == 2


def test_the_same_bytes_uploaded_again_to_run_a_failed_job_get_it_though_the_event_was_lost(
    s3: Any,
) -> None:
    # GIVEN an upload whose job failed
    sfn, key = FakeStepFunctions(), "uploads/talk.mp4"
    first = _upload(s3, key)
    version = s3.head_object(Bucket=INGEST, Key=key)["VersionId"]
    sfn.start_execution(stateMachineArn=ARN, name=first,
                        input=json.dumps({"source": {"version_id": version}}))  # fmt: skip
    sfn.status[first] = "FAILED"
    time.sleep(1.1)  # (S3 dates objects to the second)
    # WHEN the same bytes are uploaded again to run it again, and that event is lost
    assert _upload(s3, key) == first
    head = s3.head_object(Bucket=INGEST, Key=key)
    later = datetime.now(UTC) + timedelta(minutes=11)
    found = reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)
    # THEN that version gets a job of its own, pinned to it, as its event would have
    again = job_id(INGEST, key, head["ETag"], head["VersionId"])
    assert found["started"] == [again] != [first]
    assert sfn.executions[again]["source"]["version_id"] == head["VersionId"]
    # AND the next run starts nothing more
    assert reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)["started"] == []


def test_a_run_looks_up_only_the_uploads_whose_job_it_did_not_list(s3: Any) -> None:
    # GIVEN many uploads whose events started their jobs, and one whose event was lost
    sfn = FakeStepFunctions()
    for n in range(30):
        job = _upload(s3, f"uploads/game {n}.mp4", b"video %d" % n)
        sfn.start_execution(stateMachineArn=ARN, name=job, input="{}")
    lost = _upload(s3, "uploads/lost.mp4", b"lost")
    # WHEN the reconciler runs
    later = datetime.now(UTC) + timedelta(minutes=11)
    found = reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)
    # THEN the lost one's job starts, and the others cost no call each: their jobs are
    # listed a page at a time, so a run fits its timeout however many uploads a day brings
    assert found == {"checked": 31, "started": [lost], "segments": []}
    assert sfn.described <= 1


def test_an_end_marker_whose_event_was_lost_ends_its_stream_within_the_role(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN a stream whose segments were published, and its END marker whose event was lost
    _push(s3, table, "game", range(3), lost=set())
    s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b'{"last_sequence": 2}')
    uploaded = s3.head_object(Bucket=INGEST, Key="live/game/END")["LastModified"]
    held_s3 = boto3.client("s3", region_name="us-east-1")
    held_dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    names = {INGEST: "IngestBucket", OUTPUT: "OutputBucket", table.name: "LiveTable"}
    for client in (held_s3, held_dynamodb):
        iam_policy.enforce(client, "ReconcileFunction", names)
    # WHEN the reconciler runs within the marker's grace period, and after it (twice)
    now = datetime.now(UTC)
    later = now + timedelta(minutes=11)
    clients = Clients(
        s3=held_s3, sfn=FakeStepFunctions(), dynamodb=held_dynamodb, clock=later.timestamp
    )
    assert reconcile(_live(table), clients, now=now)["ended"] == []
    assert table.get("game").ending is None  # type: ignore[union-attr]
    found = reconcile(_live(table), clients, now=later)
    again = reconcile(_live(table), clients, now=later)
    # THEN the stream's end is recorded once, as its event would have recorded it, for the
    # sweep to close its playlists; dated now, not at the marker's upload, so segments
    # still on their way get their wait (a marker's upload is minutes old by then)
    assert found["ended"] == ["game"] and again["ended"] == []
    record = table.get("game")
    assert record is not None and record.ending is not None
    assert record.ending["last_sequence"] == 2
    assert record.ending["at"] == later.timestamp() > uploaded.timestamp() + 600
    assert record.pending > 0


def test_a_lost_end_marker_ends_at_what_was_uploaded_before_it(s3: Any, table: StreamTable) -> None:
    # GIVEN a stream of three segments, its END (no body) whose event was lost, and a
    # segment the venue pushed after it
    _push(s3, table, "game", range(3), lost=set())
    s3.put_object(Bucket=INGEST, Key="live/game/END", Body=b"")
    time.sleep(1.1)  # (S3 dates an upload to the second)
    s3.put_object(Bucket=INGEST, Key="live/game/3.ts", Body=b"late")
    # WHEN the reconciler records the end, past its grace
    later = datetime.now(UTC) + timedelta(minutes=11)
    clients = Clients(s3=s3, sfn=FakeStepFunctions(), dynamodb=table.client)
    reconcile(_live(table), clients, now=later)
    # THEN it ends where the marker said, at the highest segment uploaded before it
    record = table.get("game")
    assert record is not None and record.ending is not None
    assert record.ending["last_sequence"] == 2


class OutOfTime(Exception):
    pass


class ShortLivedStepFunctions(FakeStepFunctions):
    """Step Functions as a run sees it that its timeout ends at its ``calls``-th lookup."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def describe_execution(self, *, executionArn: str) -> dict[str, str]:
        if self.described + 1 == self.calls:
            raise OutOfTime
        return super().describe_execution(executionArn=executionArn)


def test_a_run_cut_short_keeps_the_jobs_it_started_and_the_next_goes_on(s3: Any) -> None:
    # GIVEN five uploads whose events were all lost (a bad deploy), more than a run can do
    lost = {_upload(s3, f"uploads/lost {n}.mp4", b"lost %d" % n) for n in range(5)}
    sfn = ShortLivedStepFunctions(calls=3)
    later = datetime.now(UTC) + timedelta(minutes=11)
    started = []
    # WHEN each run ends at its timeout before it has looked at every upload
    for _ in range(3):
        sfn.described = 0
        with contextlib.suppress(OutOfTime):
            reconcile(_settings(), Clients(s3=s3, sfn=sfn), now=later)
        started.append(len(sfn.executions))
    # THEN each keeps the jobs it started, and the next picks up where it stopped
    assert started == [2, 4, 5]
    assert set(sfn.executions) == lost


def test_a_lost_end_that_cannot_be_recorded_yet_holds_up_no_other_stream(
    s3: Any, table: StreamTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two streams whose END markers' events were lost, the first of them (in the
    # listing's order) busy with segments as its end is recorded, every try
    for stream in ("busy", "game"):
        _push(s3, table, stream, range(3), lost=set())
        s3.put_object(Bucket=INGEST, Key=f"live/{stream}/END", Body=b"")
    marked = StreamTable.mark_ended

    def busy_never_marks(self: StreamTable, stream: str, ending: dict[str, Any]) -> bool:
        if stream == "busy":
            self.admit(stream, ending["last_sequence"] + 1)
        return marked(self, stream, ending)

    monkeypatch.setattr(StreamTable, "mark_ended", busy_never_marks)
    # WHEN the reconciler records them, past their grace
    later = datetime.now(UTC) + timedelta(minutes=11)
    clients = Clients(s3=s3, sfn=FakeStepFunctions(), dynamodb=table.client)
    found = reconcile(_live(table), clients, now=later)
    # THEN the other stream's end is recorded; the busy one's is left for the next run
    assert found["ended"] == ["game"]
    assert table.require("busy").ending is None
    assert table.require("game").ending is not None


def test_a_stream_whose_state_cannot_be_read_holds_up_no_other_streams_segments(
    s3: Any, table: StreamTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two streams with a lost segment each, the first of them (in the listing's
    # order) a hot stream whose record DynamoDB throttles, every try
    for stream in ("busy", "game"):
        _push(s3, table, stream, range(5), lost={3})
    got = StreamTable.get

    def busy_throttled(self: StreamTable, stream: str) -> Any:
        if stream == "busy":
            error = {"Error": {"Code": "ProvisionedThroughputExceededException"}}
            raise botocore.exceptions.ClientError(error, "GetItem")
        return got(self, stream)

    monkeypatch.setattr(StreamTable, "get", busy_throttled)
    # WHEN the reconciler runs, past their grace
    found, _ = _run(s3, table)
    # THEN the other stream's lost segment is started; the hot one's is left for the next run
    assert found == ["game/3"]
    monkeypatch.setattr(StreamTable, "get", got)
    assert _run(s3, table)[0] == ["busy/3", "game/3"]


def test_a_stream_whose_lost_segment_cannot_be_noted_holds_up_no_other_stream(
    s3: Any, table: StreamTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two streams with a lost segment each, the first of them (in the listing's
    # order) a hot stream whose record DynamoDB throttles on every write
    for stream in ("busy", "game"):
        _push(s3, table, stream, range(5), lost={3})
    noted = StreamTable.note_upload

    def busy_throttled(self: StreamTable, stream: str, sequence: int, at: float) -> None:
        if stream == "busy":
            error = {"Error": {"Code": "ThrottlingException"}}
            raise botocore.exceptions.ClientError(error, "UpdateItem")
        noted(self, stream, sequence, at)

    monkeypatch.setattr(StreamTable, "note_upload", busy_throttled)
    # WHEN the reconciler runs, past their grace
    found, _ = _run(s3, table)
    # THEN the other stream's lost segment is started; the hot one's is left for the next run
    assert found == ["game/3"]
    monkeypatch.setattr(StreamTable, "note_upload", noted)
    assert _run(s3, table)[0] == ["busy/3", "game/3"]


def _over(s3: Any, table: StreamTable, stream: str, segments: int, ended_at: float) -> None:
    """A stream every segment of which was published, ended at ``ended_at`` and closed."""
    _push(s3, table, stream, range(segments), lost=set())
    s3.put_object(Bucket=INGEST, Key=f"live/{stream}/END", Body=b"")
    assert table.mark_ended(stream, {"last_sequence": segments - 1, "at": ended_at})
    table.client.update_item(
        TableName=table.name,
        Key={"stream": {"S": stream}, "item": {"S": "stream"}},
        UpdateExpression="REMOVE #o",
        ExpressionAttributeNames={"#o": "open"},
    )


def test_a_stream_over_for_longer_than_a_redrive_reaches_costs_later_runs_nothing(
    s3: Any, table: StreamTable
) -> None:
    # GIVEN a year of weekends: streams over long ago (here two), and one that ended a day
    # before the run; every run has accounted for their segments
    now = time.time()
    for stream in ("week1", "week2"):
        _over(s3, table, stream, 30, ended_at=now)
    _over(s3, table, "lastnight", 30, ended_at=now + 14 * 86400)
    assert _run(s3, table)[0] == []
    # WHEN the reconciler runs 15 days on, within its role, and then again
    held_s3 = boto3.client("s3", region_name="us-east-1")
    held_dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    names = {INGEST: "IngestBucket", OUTPUT: "OutputBucket", table.name: "LiveTable"}
    for client in (held_s3, held_dynamodb):
        iam_policy.enforce(client, "ReconcileFunction", names)
    later = datetime.now(UTC) + timedelta(days=15)
    clients = Clients(s3=held_s3, sfn=FakeStepFunctions(), dynamodb=held_dynamodb)
    assert reconcile(_live(table), clients, later)["segments"] == []
    # THEN the old streams' uploads are gone (the recording is the output's rungs), the
    # last night's are kept (a lost event of it may still be redriven)
    left = {k.split("/")[1] for k in Bucket(s3, INGEST).keys("live/")}
    assert left == {"lastnight"}
    # AND once the ingest bucket's lifecycle has expired what the deletes left (the
    # versions a week on, then their delete markers; S3 itself lists no folder of delete
    # markers, moto does), a run reads no record of them any more: each stream ever run no
    # longer costs every run a read, forever
    listed = s3.list_object_versions(Bucket=INGEST, Prefix="live/week")
    for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
        s3.delete_object(Bucket=INGEST, Key=entry["Key"], VersionId=entry["VersionId"])
    calls: dict[str, int] = {}

    def count(event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        calls[operation] = calls.get(operation, 0) + 1

    table.client.meta.events.register("before-call", count)
    reconcile(_live(table), Clients(s3=s3, sfn=FakeStepFunctions(), dynamodb=table.client), later)
    assert calls == {"GetItem": 1}


def test_uploads_a_stream_is_done_with_that_cannot_be_deleted_hold_up_no_other_stream(
    s3: Any, table: StreamTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stream over for longer than a redrive reaches, sorted before a live one with
    # a lost segment, and S3 refusing the deletes
    _over(s3, table, "aaa", 3, ended_at=time.time() - 15 * 86400)
    assert _run(s3, table)[0] == []  # (a run that accounted for it)
    _push(s3, table, "game", range(5), lost={3})

    def refused(self: Bucket, keys: Any) -> int:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "MethodNotAllowed"}}, "DeleteObjects"
        )

    monkeypatch.setattr(Bucket, "delete_keys", refused)
    # WHEN the reconciler runs
    found, _ = _run(s3, table)
    # THEN the live stream's lost segment is still started (the old uploads wait)
    assert found == ["game/3"]


def test_uploads_s3_answers_no_head_of_hold_up_no_other(s3: Any, table: StreamTable) -> None:
    sse_c.install()  # (S3 answers a read of an SSE-C object without its key 400)
    customer = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
    # GIVEN, their events lost: an upload, a clip request and a stream's END, each under
    # its uploader's own key (SSE-C), beside an upload and a clip request in the clear
    _push(s3, table, "game", range(3), lost=set())
    for key, body in (("uploads/secret.mp4", b"video"), ("clips/game/secret.json", b"{}"),
                      ("live/game/END", b'{"last_sequence": 1}')):  # fmt: skip
        s3.put_object(Bucket=INGEST, Key=key, Body=body, **customer)
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket=INGEST, Key="uploads/secret.mp4")
    secret = job_id(INGEST, "uploads/secret.mp4", s3.list_objects_v2(
        Bucket=INGEST, Prefix="uploads/secret.mp4")["Contents"][0]["ETag"])  # fmt: skip
    plain = _upload(s3, "uploads/plain.mp4")
    s3.put_object(Bucket=INGEST, Key="clips/game/plain.json", Body=b'{"from": 0, "to": 1}')
    # WHEN the reconciler runs past their grace
    sfn = FakeStepFunctions()
    settings = replace(_live(table), clip_state_machine_arn=ARN + "-clip")
    later = datetime.now(UTC) + timedelta(minutes=11)
    found = reconcile(settings, Clients(s3=s3, sfn=sfn, dynamodb=table.client), now=later)
    # THEN none of them stops it: the hidden upload's job starts (to fail by name, as
    # its event's would), and so does the one in the clear
    assert sorted(found["started"]) == sorted([plain, secret])
    assert sfn.executions[secret]["source"]["version_id"] is None
    # AND the clip in the clear starts; the hidden request is left, said in the log
    assert found["clips"] == ["game/plain"]
    # AND the stream ends at the highest segment uploaded before its unreadable END
    assert found["ended"] == ["game"]
    record = table.get("game")
    assert record is not None and record.ending is not None
    assert record.ending["last_sequence"] == 2
