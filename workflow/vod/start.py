"""StartJob: one execution per uploaded video, whatever number of times S3 reports it."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Any
from urllib.parse import unquote_plus

import botocore.exceptions

from workflow import metrics
from workflow.errors import UploadOptionError
from workflow.media import subtitles
from workflow.runtime import Clients, start_once
from workflow.settings import Settings
from workflow.storage import not_an_upload, transient_aws_errors
from workflow.vod.jobs import UPLOAD_PREFIX, execution_arn, job_id
from workflow.vod.records import Source

# S3 user metadata (x-amz-meta-vidflow-packaging, -ladder, -encryption) that picks an
# upload's packaging, how its ladder is chosen and how its segments are protected.
PACKAGING_METADATA = "vidflow-packaging"
LADDER_METADATA = "vidflow-ladder"
ENCRYPTION_METADATA = "vidflow-encryption"
# What names metadata as an upload option, one of those or not (``check_upload_options``).
OPTION_METADATA = "vidflow"
log = logging.getLogger(__name__)

# How an execution that published nothing ends: the same bytes uploaded again run it again.
ENDED_UNPUBLISHED = ("FAILED", "TIMED_OUT", "ABORTED")


@transient_aws_errors()
def start_jobs(
    records: list[dict[str, Any]],
    settings: Settings,
    clients: Clients,
    invocation: str | None = None,
) -> list[dict[str, Any]]:
    """Start one execution per uploaded object; a duplicate event starts nothing.

    ``records`` are S3 event records; keys arrive URL-encoded. Subtitle sidecars
    start nothing: the video uploaded after them does, and its plan picks them up. Nor
    does a record of another bucket than ``settings.ingest_bucket`` (where set), or of
    anything but a created object.
    ``invocation`` is the calling Lambda request's id, which Lambda keeps when it
    retries an asynchronous invocation: a retry's starts are the same starts.
    """
    invocation = invocation or uuid.uuid4().hex
    started = []
    for n, record in enumerate(records):
        uploaded = record["s3"]["object"]
        key = unquote_plus(uploaded["key"])
        if not key.startswith(UPLOAD_PREFIX) or subtitles.is_sidecar(key):
            continue
        if key.endswith("/"):
            # A folder (a console makes them empty): a file uploaded under such a name is
            # no video's, and is said so, not passed over unsaid.
            if int(uploaded.get("size") or 0):
                log.warning("%s starts no job: a key ending in / names a folder, "
                            "not a video; upload the video under a file name", key)  # fmt: skip
            continue
        skipped = not_an_upload(record, settings.ingest_bucket)
        if skipped is not None:
            log.warning("%s starts no job: %s", key, skipped)
            continue
        # Every read of the upload is pinned to this object: its version where the
        # bucket keeps versions, else its ETag.
        source = Source(
            bucket=record["s3"]["bucket"]["name"],
            key=key,
            etag=uploaded.get("eTag", ""),
            version_id=uploaded.get("versionId"),
            size=int(uploaded.get("size", 0)),
            uploaded_at=record.get("eventTime"),
        )
        # S3's order of the PUTs to this key: a repeated delivery of one event repeats it.
        sequencer = uploaded.get("sequencer")
        noted = {"sequencer": sequencer} if sequencer else {}
        place = f"{invocation}\0{n}"  # this record's, in this invocation
        job = job_id(source.bucket, key, source.etag)
        new = start_once(
            clients, settings.state_machine_arn, job, _input(job, source, noted, place)
        )
        if not new and _uploaded_again(clients, settings, job, source, sequencer):
            # The same bytes uploaded again (with other options in their metadata, or
            # to run a failed job again): a new version, or PUT, so a job of its own.
            job = job_id(source.bucket, key, source.etag, source.pin.version_id or sequencer)
            new = start_once(
                clients, settings.state_machine_arn, job, _input(job, source, noted, place)
            )
        started.append({"job_id": job, "key": key, "started": new})
    new_jobs = [s["job_id"] for s in started if s["started"]]
    if new_jobs:
        metrics.about(job_ids=new_jobs)
        metrics.count(metrics.JOBS_STARTED, len(new_jobs))
    return started


def _input(job: str, source: Source, noted: dict[str, str], place: str) -> dict[str, Any]:
    """The execution input of ``job``, with a token of this start: of ``place`` (this
    invocation's request id and the record's place in its batch) and this job. Step
    Functions answers a start with the name and input of a running execution as if it had
    started it: a repeated delivery of the event (another invocation, or the same event
    twice in a batch) would count as a second start. A retry of the invocation (Lambda's,
    after an error on a later record) makes the same start again, and is answered, and
    counted, as the start it is."""
    made = f"{place}\0{job}".encode()
    token = hashlib.sha256(made).hexdigest()[:32]
    return {"job_id": job, "source": source.to_dict(), **noted, "start_token": token}


def _uploaded_again(
    clients: Clients, settings: Settings, job: str, source: Source, sequencer: str | None
) -> bool:
    """Whether the job named for this content ran another upload of it than this
    event's: not a duplicate event but the same bytes uploaded again. Told by the
    object's version where the bucket keeps versions, else by the event's sequencer
    (IngestVersioning=Suspended: each PUT has its own, each delivery of its event the
    same); a job started without either cannot be told apart, and is taken as this one.
    With versions, a new version whose job would publish what that job publishes (it is
    running or succeeded, and the version asks for the same ``vidflow-*`` options) is the
    same upload again: one execution, one asset."""
    version = source.pin.version_id
    if version is None and sequencer is None:
        return False
    described = clients.sfn.describe_execution(
        executionArn=execution_arn(settings.state_machine_arn, job)
    )
    ran = json.loads(described.get("input") or "{}")
    if version is not None:
        earlier = ran.get("source", {}).get("version_id")
        if earlier == version:
            return False
        # Another version of the same bytes: the same upload again (one job, one asset)
        # unless it is there to run a job that did not succeed again, or asks for other
        # options than the version that job ran.
        if earlier is None or described.get("status") in ENDED_UNPUBLISHED:
            return True
        asked = _options(clients, source, earlier)
        # (the earlier version gone, or both HEADs refused: a job of its own, never none)
        return asked is None or asked != _options(clients, source, version)
    return ran.get("sequencer") not in (None, sequencer)


def _options(clients: Clients, source: Source, version_id: str) -> dict[str, str] | None:
    """The ``vidflow*`` metadata one version of ``source``'s key carries (case and
    spaces aside, as ``upload_option`` reads a value); None where that version is gone
    (expired by the lifecycle rule, deleted). S3 answers a HEAD of what is not there with
    403, not 404, to a caller without ``s3:ListBucket`` (StartJob has none): gone, too,
    as a StartJob that raised would fail on every retry and redrive."""
    try:
        head = clients.s3.head_object(Bucket=source.bucket, Key=source.key, VersionId=version_id)
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("403", "AccessDenied", "404", "NoSuchKey", "NoSuchVersion"):
            return None
        raise
    metadata = {k.lower(): v.strip().lower() for k, v in head.get("Metadata", {}).items()}
    return {k: v for k, v in metadata.items() if k.startswith(OPTION_METADATA)}


def check_upload_options(metadata: dict[str, str]) -> None:
    """Refuse metadata named like an upload option that vidflow does not have: a
    misspelt ``vidflow-encription: aes-128`` would otherwise publish the asset in the
    clear, as if nothing had been asked."""
    known = (PACKAGING_METADATA, LADDER_METADATA, ENCRYPTION_METADATA)
    unknown = sorted(
        k
        for k in (key.lower() for key in metadata)
        if k.startswith(OPTION_METADATA) and k not in known
    )
    if unknown:
        raise UploadOptionError(
            f"the upload's metadata names {', '.join(repr(k[:60]) for k in unknown[:5])}, "
            f"which vidflow does not read; its upload options are {', '.join(known)}"
        )


def upload_option(
    metadata: dict[str, str], name: str, allowed: tuple[str, ...], default: str
) -> str:
    """What an upload asks for in its ``name`` metadata (``vidflow-packaging``,
    ``vidflow-ladder``): one of ``allowed``, or ``default`` if it asks nothing."""
    asked = {k.lower(): v for k, v in metadata.items()}.get(name)
    if asked is None:
        return default
    if asked.strip().lower() not in allowed:
        raise UploadOptionError(
            f"the upload's {name} metadata is {asked[:40]!r}; use one of {', '.join(allowed)}"
        )
    return asked.strip().lower()
