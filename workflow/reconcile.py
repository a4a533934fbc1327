"""Uploads and live segments that nothing processed are found and started: the last guard
against lost events.

S3 delivers each upload's event at least once, but an invocation of StartJob or LiveIngest
that fails every attempt (a throttle storm, a bad deploy) ends in the failed-events queue,
and an event can be lost outright. On a schedule this step lists ``uploads/`` and
``live/``; an upload older than the grace period (and within the lookback) whose job has
no execution, no failure record and no published asset gets its job started, under the
very name its S3 event would have given it, so a job that started meanwhile is never
started twice; a live segment whose arrival is not recorded and that has no failure record
gets its execution started (publishing records each segment once, so a late duplicate
changes nothing); each stream's record says how far its segments are accounted for, so a
run looks at what came since, not at every segment in the lookback (``workflow.live.lost``);
a stream's end marker whose event was lost is recorded as LiveIngest records it, for the sweep
to close the stream; a clip request gets its clip started under the name its event would
have given it. A stream closed and accounted for has its uploads deleted once its end is
older than any lost event of it can be redriven, so later runs no longer list it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

from workflow.errors import EncryptedInputError, SourceChangedError, TransientError
from workflow.live.ingest import ATTEMPT, on_ingest, record_end, start_clip
from workflow.live.lost import UPLOADS_KEPT_SECONDS, is_end_marker, unprocessed_segments
from workflow.live.paths import CLIP_PREFIX, clip_execution_name, parse_clip_key
from workflow.live.store import StreamTable
from workflow.media import subtitles
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Bucket, Pin, transient_aws_errors
from workflow.vod.jobs import UPLOAD_PREFIX, JobPaths, execution_arn, job_id
from workflow.vod.start import start_jobs

log = logging.getLogger(__name__)


@transient_aws_errors()
def reconcile(
    settings: Settings,
    clients: Clients,
    now: datetime | None = None,
    invocation: str | None = None,
) -> dict[str, Any]:
    """Start the job of every upload in the window that has none, and the execution of
    every live segment nothing processed; say what was checked and started.
    ``invocation`` is the Lambda request's id, the same in Lambda's retries of it."""
    now = now or datetime.now(UTC)
    oldest = now - timedelta(hours=settings.reconcile_lookback_hours)
    newest = now - timedelta(seconds=settings.reconcile_grace_seconds)
    ingest = Bucket(clients.s3, settings.ingest_bucket)
    output = Bucket(clients.s3, settings.output_bucket)
    checked, started = 0, []
    listed: dict[str, datetime] | None = None
    for item in ingest.objects(UPLOAD_PREFIX):
        key = item["Key"]
        if key.endswith("/") or subtitles.is_sidecar(key):
            continue
        if not oldest <= item["LastModified"] <= newest:
            continue
        checked += 1
        etag = item["ETag"].strip('"')
        if listed is None:
            listed = _started_since(settings.state_machine_arn, oldest, clients)
        job = job_id(ingest.name, key, etag)
        started_at = listed.get(job) or _job_started(job, settings, clients, output)
        if started_at is not None and item["LastModified"] <= started_at:
            continue
        # (Uploaded after the job of its bytes started: the same bytes uploaded again, to
        # run a failed job again or with other options, whose event may be lost. StartJob
        # decides, as it would have for the event: a job of its own, or none.)
        try:
            # Still this very object? Its version pins the job's reads, as its event would.
            version = ingest.head(key, Pin(None, etag)).get("VersionId")
        except SourceChangedError:
            continue  # replaced since the listing: the newer upload is the next run's
        except EncryptedInputError:
            # (under its uploader's own key, SSE-C: S3 answers no HEAD of it) Its job
            # fails by name and records why, as its event's would have.
            version = None
        record = _upload_record(
            ingest.name, key, etag, int(item["Size"]), version, item["LastModified"]
        )
        # Started as found: a run its timeout ends keeps what it did, for the next to skip.
        started += start_jobs([record], settings, clients, invocation)
    segments = _unprocessed_segments(ingest, output, settings, clients, oldest, newest)
    ends = [s for s in segments if is_end_marker(s)]
    segments = [s for s in segments if not is_end_marker(s)]
    found: dict[str, Any] = {
        "checked": checked,
        "started": [s["job_id"] for s in started if s["started"]],
        "segments": _start_lost_segments(segments, ingest, settings, clients),
    }
    if settings.live_table:
        found["ended"] = _record_lost_ends(ends, ingest, settings, clients)
    if settings.clip_state_machine_arn:
        found["clips"] = _start_lost_clips(ingest, settings, clients, oldest, newest)
    return found


def _unprocessed_segments(
    ingest: Bucket,
    output: Bucket,
    settings: Settings,
    clients: Clients,
    oldest: datetime,
    newest: datetime,
) -> list[dict[str, Any]]:
    """The listing entries of the live segments in the window that nothing processed
    and of the end markers in it no stream's record holds."""
    if not settings.live_table:
        return []
    table = StreamTable(clients.dynamodb, settings.live_table)
    forget_before = newest - timedelta(seconds=UPLOADS_KEPT_SECONDS)
    return unprocessed_segments(ingest, output, table, oldest, newest, forget_before)


def _start_lost_segments(
    segments: list[dict[str, Any]], ingest: Bucket, settings: Settings, clients: Clients
) -> list[str]:
    """Start each lost segment's execution as LiveIngest would (``stream/sequence`` of each
    started). One whose stream's record cannot be written now (a hot stream DynamoDB
    throttles) is left for the next run, and holds up no other stream's, nor the lost ends
    and clips after them."""
    started = []
    for segment in segments:
        try:
            seen = on_ingest([_segment_record(ingest.name, segment)], settings, clients)
        except TransientError as exc:
            log.warning("%s is left for the next run: %s", segment["Key"], exc)
            continue
        started += [f"{s['stream']}/{s['sequence']}" for s in seen if s.get("started")]
    return started


def _segment_record(bucket: str, item: dict[str, Any]) -> dict[str, Any]:
    """The S3 event record of a live segment nothing processed."""
    record = _upload_record(
        bucket, item["Key"], item["ETag"].strip('"'), int(item["Size"]), None, item["LastModified"]
    )
    # A failed upload tried again: its attempt names an execution of its own.
    return record | ({ATTEMPT: item["attempt"]} if "attempt" in item else {})


def _record_lost_ends(
    ends: list[dict[str, Any]], ingest: Bucket, settings: Settings, clients: Clients
) -> list[str]:
    """Record the end of each stream whose end marker's event was lost, as LiveIngest
    records it (of the segments uploaded before the marker): the sweep closes the
    playlists at it."""
    ended = []
    for end in ends:
        stream = end["Key"].split("/")[1]
        try:
            record_end(stream, ingest.name, settings, clients, end["LastModified"])
        except TransientError as exc:
            # One stream's trouble holds up no other's end, nor the clips after them.
            log.warning("stream %s: its lost END is left for the next run: %s", stream, exc)
            continue
        ended.append(stream)
    return ended


def _start_lost_clips(
    ingest: Bucket, settings: Settings, clients: Clients, oldest: datetime, newest: datetime
) -> list[str]:
    """Start the clip of every request in the window, as its event would have: the
    execution is named for the request's version, so one its event started (or that
    ran, failed or was superseded) refuses the name and nothing starts twice. Those
    listed as started since the window opened are not asked for at all."""
    started: list[str] = []
    listed: dict[str, datetime] | None = None
    for item in ingest.objects(CLIP_PREFIX):
        clip = parse_clip_key(item["Key"])
        if clip is None or not oldest <= item["LastModified"] <= newest:
            continue
        etag = item["ETag"].strip('"')
        try:
            # The version names the execution, as the request's event would have.
            version = ingest.head(item["Key"], Pin(None, etag)).get("VersionId")
        except SourceChangedError:
            continue  # replaced since the listing: the newer request is the next run's
        except EncryptedInputError as exc:
            # (SSE-C: no HEAD answers its version, which names its execution) Left, and
            # said, rather than started under another name beside its event's.
            log.warning("clip request %s is not started: %s", item["Key"], exc)
            continue
        if listed is None:
            listed = _started_since(settings.clip_state_machine_arn, oldest, clients)
        if clip_execution_name(clip, etag, version) in listed:
            continue
        record = _upload_record(
            ingest.name, item["Key"], etag, int(item["Size"]), version, item["LastModified"]
        )
        if start_clip(clip, ingest.name, record, settings, clients)["started"]:
            started.append(f"{clip.stream}/{clip.name}")
    return started


def _started_since(
    state_machine_arn: str, since: datetime, clients: Clients
) -> dict[str, datetime]:
    """When each of a state machine's executions started since ``since`` did, by name, a
    page of 1,000 per call (newest first): a run's calls grow with the window's uploads a
    thousand at a time, not one each, so it ends within its timeout. An upload in the
    window has its execution started after it was uploaded; one whose name is not among
    them (the same bytes uploaded before, a lost event) is looked up by name."""
    names: dict[str, datetime] = {}
    page: dict[str, Any] = {}
    while True:
        listed = clients.sfn.list_executions(
            stateMachineArn=state_machine_arn, maxResults=1000, **page
        )
        for execution in listed["executions"]:
            if execution["startDate"] < since:
                return names
            names[execution["name"]] = execution["startDate"]
        if not listed.get("nextToken"):
            return names
        page = {"nextToken": listed["nextToken"]}


# The start of a job whose execution says none (Step Functions keeps executions 90 days):
# taken as after every upload, so the job is its upload's.
_UNKNOWN_START = datetime.max.replace(tzinfo=UTC)


def _job_started(job: str, settings: Settings, clients: Clients, output: Bucket) -> datetime | None:
    """When ``job`` started; None if it never did. Executions are kept 90 days, what a
    job left behind longer: a job known only by that is taken to have run this upload."""
    try:
        described = clients.sfn.describe_execution(
            executionArn=execution_arn(settings.state_machine_arn, job)
        )
        started: datetime = described.get("startDate", _UNKNOWN_START)
        return started
    except clients.sfn.exceptions.ExecutionDoesNotExist:
        paths = JobPaths(job)
        kept = output.exists(paths.failure_key) or output.exists(paths.master_key)
        return _UNKNOWN_START if kept else None


def _upload_record(
    bucket: str, key: str, etag: str, size: int, version: str | None, uploaded: Any
) -> dict[str, Any]:
    """The S3 event record S3 would have sent for this upload."""
    obj: dict[str, Any] = {"key": quote_plus(key), "size": size, "eTag": etag}
    if version:
        obj["versionId"] = version  # "null" too: storage.Pin reads it as no version
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": uploaded.isoformat(timespec="milliseconds"),
        "s3": {"bucket": {"name": bucket}, "object": obj},
    }
