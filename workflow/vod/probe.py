"""Probe: read the upload as untrusted input; store its facts and its index.

PyAV ships only in the PyAV layer: no function but Probe may reach this module.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from workflow.errors import SourceChangedError, UploadOptionError
from workflow.media.chunks import MAX_KEYFRAME_INTERVAL, refused_hole
from workflow.media.probe import probe
from workflow.media.sniff import HEAD_BYTES
from workflow.runtime import Clients, Deadline, event_time
from workflow.settings import (
    ENCRYPTION_PACKAGING,
    ENCRYPTIONS,
    LADDER_MODES,
    PACKAGINGS,
    Settings,
)
from workflow.storage import Bucket, transient_aws_errors
from workflow.vod.items import source_reader
from workflow.vod.jobs import JobPaths
from workflow.vod.records import ProbeRecord, Source
from workflow.vod.start import (
    ENCRYPTION_METADATA,
    LADDER_METADATA,
    PACKAGING_METADATA,
    check_upload_options,
    upload_option,
)

log = logging.getLogger("vidflow.probe")


@transient_aws_errors()
def probe_source(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
) -> dict[str, Any]:
    """Probe the upload as untrusted input and store its facts and frame index."""
    began = time.monotonic()
    source = Source.from_dict(event["source"])
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    if output.exists(paths.master_key):
        # This job's asset is published: its id, the execution's name, was used again
        # (Step Functions lets a name be, 90 days after its execution ended) for the same
        # bytes under the same key. One upload, one asset: a run again would write over
        # it, mixing its files with another ladder's, and fail as a published job.
        log.info("%s is published already, as %s: nothing is made again",
                 source.key, paths.master_key)  # fmt: skip
        return {"probe_key": None, "duration": None, "width": None, "height": None,
                "has_audio": None, "read_bytes": 0, "published": paths.master_key}  # fmt: skip
    ingest = Bucket(clients.s3, source.bucket)
    described = ingest.head(source.key, source.pin)
    if put_again(source, described["LastModified"]):
        # The same bytes PUT again (other options in their metadata): the head says that
        # upload's options, and it has a job of its own.
        raise SourceChangedError(
            f"{source.key} was uploaded again (at {described['LastModified']:%H:%M:%S}, after "
            f"this job's upload at {source.uploaded_at}) before its options were read; the "
            "upload that replaced it has a job of its own"
        )
    # Every later step's ffmpeg reads the upload from such a URL: a key too long for one
    # fails the job here, not in each of its chunks.
    ingest.presign(source.key, pin=source.pin)
    size = int(described["ContentLength"])
    metadata = described.get("Metadata", {})
    check_upload_options(metadata)
    packaging = upload_option(metadata, PACKAGING_METADATA, PACKAGINGS, settings.packaging)
    ladder_mode = upload_option(metadata, LADDER_METADATA, LADDER_MODES, settings.ladder_mode)
    encryption = upload_encryption(metadata, packaging, settings.encryption)
    head = ingest.read_range(source.key, size, HEAD_BYTES, source.pin)
    # A file replaced mid-probe would read as damaged: the pin's check says what happened.
    with source_reader(source, clients, size) as reader:
        result = probe(
            reader,
            head=head,
            size=size,
            limits=settings.limits,
            max_hole=refused_hole(settings.chunk_seconds, settings.segment_seconds),
            max_keyframe_interval=MAX_KEYFRAME_INTERVAL,
            timeout=max(5.0, min(60.0, remaining() - 10)),
            # (What is left once the record is written, with room to spare.)
            read_for=max(10.0, remaining() - 30),
        )
    record = ProbeRecord(
        result.facts,
        result.index,
        packaging,
        round(time.monotonic() - began, 3),
        read_bytes=reader.bytes_read + len(head),
        ladder_mode=ladder_mode,
        encryption=encryption,
    )
    output.put_json(paths.probe_key, record.to_dict())
    facts = result.facts
    if facts.subtitles_left_out:
        log.warning(
            "%s holds subtitle tracks %s, which are not published: only sidecar files are",
            source.key,
            ", ".join(facts.subtitles_left_out),
        )
    if facts.audio_left_out:
        log.warning(
            "%s holds audio tracks %s, which are not published: %s",
            source.key,
            ", ".join(facts.audio_left_out),
            "none of them can be decoded, so the video is published without audio"
            if facts.audio is None
            else "one track is, the first flagged default, else the first",
        )
    if facts.data_left_out:
        log.warning(
            "%s holds data tracks %s, which are not published: only its picture and sound are",
            source.key,
            ", ".join(facts.data_left_out),
        )
    return {
        "probe_key": paths.probe_key,
        "duration": facts.duration,
        "width": facts.display_width,
        "height": facts.display_height,
        "has_audio": facts.audio is not None,
        "read_bytes": record.read_bytes,
        "published": None,
    }


# S3's Last-Modified is in whole seconds, and an upload's is no later than its event's time.
_LAST_MODIFIED_SLACK = timedelta(seconds=1)


def put_again(source: Source, last_modified: datetime) -> bool:
    """Whether the upload was PUT again after the one this job is for, as far as a bucket
    without versions tells: its ETag pins the bytes, not the metadata that holds the
    upload's options. A PUT again within the same second or two goes unseen."""
    uploaded = event_time(source.uploaded_at)
    if source.pin.version_id is not None or uploaded is None:
        return False  # (no time: an event not from S3, ``vidflow invoke``: nothing to compare)
    return last_modified > uploaded + _LAST_MODIFIED_SLACK


def upload_encryption(metadata: dict[str, str], packaging: str, stack: str) -> str:
    """How an upload's segments are protected: as its ``vidflow-encryption`` metadata
    asks, else as the ``stack`` does. Uploaders are not trusted with what the stack
    protects (SECURITY.md): one may ask for protection, or another method, never for
    none; and a method must fit the upload's packaging, never published in clear."""
    encryption = upload_option(metadata, ENCRYPTION_METADATA, ENCRYPTIONS, stack)
    if encryption == "none" and stack != "none":
        methods = " or ".join(ENCRYPTION_PACKAGING)
        raise UploadOptionError(
            "the upload asks for no encryption, and this stack protects every asset "
            f"(Encryption={stack}): it may ask for {methods}, not none"
        )
    if encryption != "none" and ENCRYPTION_PACKAGING[encryption] != packaging:
        raise UploadOptionError(
            f"{encryption} encryption protects {ENCRYPTION_PACKAGING[encryption]} packaging, "
            f"and this upload's is {packaging}"
        )
    return encryption
