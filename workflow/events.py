"""Outcomes announced on the stack's EventBridge bus, each once.

A job published or failed, a live stream started, lost a segment or ended, a clip
published or failed: each is one event on the bus (``EVENT_BUS_NAME``), whose rules log
it and, where the stack has a webhook, post it. An outcome is announced once per subject
however often its state runs: it is first claimed with a conditional write of a marker
(``announced/<subject>/<name>.json``, a copy of the detail, ``If-None-Match: *``), and
only the writer that created the marker puts the event; if the bus refuses it, the claim
is taken back and the step fails to be retried. So a retried state, a duplicate S3 event
or two writers at once put it once. A function that dies between its claim and the put
(a timeout in those milliseconds) loses that one event; ``detail.event_id`` is stable,
for a subscriber that also sees another copy (EventBridge itself delivers at least once).

Every detail type has a JSON Schema in ``workflow/formats/events/``; ``SCHEMA_VERSION``
is in every detail and changes when a field's meaning does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from workflow.errors import EventNotSentError
from workflow.runtime import Clients
from workflow.storage import Bucket, Pin

SOURCE = "vidflow"
SCHEMA_VERSION = 1

JOB_PUBLISHED = "Job Published"
JOB_FAILED = "Job Failed"
LIVE_STREAM_STARTED = "Live Stream Started"
LIVE_STREAM_GAP = "Live Stream Gap"
LIVE_STREAM_ENDED = "Live Stream Ended"
CLIP_PUBLISHED = "Clip Published"
CLIP_FAILED = "Clip Failed"
DETAIL_TYPES = (
    JOB_PUBLISHED, JOB_FAILED, LIVE_STREAM_STARTED, LIVE_STREAM_GAP, LIVE_STREAM_ENDED,
    CLIP_PUBLISHED, CLIP_FAILED,
)  # fmt: skip

MARKER_PREFIX = "announced/"


@dataclass(frozen=True)
class Outcome:
    """One event: its type, whose it is (``jobs/<id>``, ``live/<stream>``,
    ``clips/<stream>/<clip>``), the name that makes it unique there (``published``,
    ``gap-17``, ``published-<request ETag>``), and what it says."""

    detail_type: str
    subject: str
    name: str
    detail: dict[str, Any]

    @property
    def event_id(self) -> str:
        return f"{self.subject}/{self.name}"

    @property
    def marker_key(self) -> str:
        return f"{MARKER_PREFIX}{self.event_id}.json"

    def full_detail(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "event_id": self.event_id, **self.detail}


def announce(outcome: Outcome, bus: str, output: Bucket, clients: Clients) -> bool:
    """Put ``outcome`` on ``bus`` unless it was announced before; True if put now.

    Without a bus (a function the template gives none) nothing is announced.
    """
    detail = outcome.full_detail()
    if not bus or not output.create_json(outcome.marker_key, detail):
        return False
    entry = {
        "Source": SOURCE,
        "DetailType": outcome.detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": bus,
    }
    try:
        response = clients.events.put_events(Entries=[entry])
    except Exception:
        output.delete(outcome.marker_key)
        raise
    if response.get("FailedEntryCount"):
        output.delete(outcome.marker_key)
        failed = response["Entries"][0]
        raise EventNotSentError(
            f"{outcome.detail_type} for {outcome.subject} was not put: "
            f"{failed.get('ErrorCode')} {failed.get('ErrorMessage', '')}".strip()
        )
    return True


def object_url(bucket: str, key: str, base_url: str = "") -> str:
    """Where a subscriber finds ``key``: under the playback base URL where the stack has
    one (a CDN in front of the output bucket), else its ``s3://`` URI."""
    if base_url:
        return f"{base_url.rstrip('/')}/{key}"
    return f"s3://{bucket}/{key}"


def upload_of(source: dict[str, Any]) -> dict[str, Any]:
    """A job's ``source`` as an event names it: bucket and key, and which upload of the
    key it was, each null where unknown: its version and ETag (as ``Pin.of`` reads them,
    a suspended bucket's "null" none) and S3's time of it. Two uploads of one key each
    publish (or fail) on their own, in whatever order their jobs end, so a subscriber that
    keeps one asset per key needs these to tell the newer upload from a superseded one."""
    pin = Pin.of(source)
    return {
        "bucket": source.get("bucket"),
        "key": source.get("key"),
        "version_id": pin.version_id,
        "etag": pin.etag,
        "uploaded_at": source.get("uploaded_at") or None,
    }


def job_published(
    manifest: dict[str, Any], bucket: str, prefix: str, base_url: str, cost_usd: float
) -> Outcome:
    """``Job Published``: where the asset is and what it holds, from its manifest."""
    images = manifest.get("images") or {}
    keys = {
        "master": manifest["master"],
        "manifest": "manifest.json",
        "dash": manifest.get("dash"),
        "poster": images.get("poster"),
        "thumbnails": (images.get("sprites") or {}).get("vtt"),
    }
    detail = {
        "job_id": manifest["job_id"],
        "source": upload_of(manifest["source"]),
        "duration_seconds": manifest["duration"],
        "packaging": manifest["packaging"],
        "urls": {
            name: object_url(bucket, f"{prefix}{key}", base_url)
            for name, key in keys.items()
            if key
        },
        "renditions": [
            {k: r[k] for k in ("name", "width", "height", "bandwidth")}
            for r in manifest["renditions"]
        ],
        "timings": manifest["timings"],
        "cost_estimate_usd": round(cost_usd, 6),
        "published_at": manifest["created_at"],
    }
    return Outcome(JOB_PUBLISHED, f"jobs/{manifest['job_id']}", "published", detail)


def job_failed(failure: dict[str, Any]) -> Outcome:
    """``Job Failed``: the error's name and cause and the upload it failed on."""
    source = failure.get("input") or {}
    detail = {
        "job_id": failure["job_id"],
        "error": failure["error"],
        "cause": failure["cause"],
        "source": upload_of(source),
        "failed_at": failure["failed_at"],
    }
    return Outcome(JOB_FAILED, f"jobs/{failure['job_id']}", "failed", detail)


def live_stream_started(stream: str, first_sequence: int, master_url: str, at: str) -> Outcome:
    """``Live Stream Started``: the stream's first segment is in its playlists."""
    detail = {
        "stream": stream,
        "first_sequence": first_sequence,
        "master": master_url,
        "started_at": at,
    }
    return Outcome(LIVE_STREAM_STARTED, f"live/{stream}", "started", detail)


def live_stream_gap(stream: str, sequence: int, last: int, reason: str, at: str) -> Outcome:
    """``Live Stream Gap``: segments ``sequence`` to ``last`` are in the playlists as gaps
    (``missing`` after their wait, or ``failed``), shown by one change of the playlists."""
    detail = {
        "stream": stream,
        "sequence": sequence,
        "last_sequence": last,
        "gaps": last - sequence + 1,
        "reason": reason,
        "at": at,
    }
    # Named by its first number: a run announced in part by a writer that died is found by
    # the next, which announces the rest (``live.publish``).
    return Outcome(LIVE_STREAM_GAP, f"live/{stream}", f"gap-{sequence}", detail)


def live_stream_ended(
    stream: str,
    segments: int,
    gaps: int,
    duration: float,
    urls: dict[str, str],
    at: str,
    published: int | None = None,
) -> Outcome:
    """``Live Stream Ended``: the playlists are closed and the recording is published;
    again (``ended-<published>``) each time the recording is made again with segments
    published after the end (mended, or tried again by Reconcile)."""
    detail = {
        "stream": stream,
        "segments": segments,
        "gaps": gaps,
        "duration_seconds": round(duration, 3),
        "urls": urls,
        "ended_at": at,
    }
    name = "ended" if published is None else f"ended-{published}"
    return Outcome(LIVE_STREAM_ENDED, f"live/{stream}", name, detail)


def clip_published(
    stream: str,
    clip: str,
    request_etag: str,
    manifest: dict[str, Any],
    urls: dict[str, str],
    request_version: str | None = None,
) -> Outcome:
    """``Clip Published``: a span of a stream is an asset; once per request version (the
    same clip name asked again with another span is published, and announced, again)."""
    source = manifest["source"]
    detail = {
        "stream": stream,
        "clip": clip,
        "from": source["from"],
        "to": source["to"],
        "duration_seconds": manifest["duration"],
        "urls": urls,
        "published_at": manifest["created_at"],
    }
    name = f"published-{request_tag(request_etag, request_version)}"
    return Outcome(CLIP_PUBLISHED, f"clips/{stream}/{clip}", name, detail)


def clip_failed(
    stream: str,
    clip: str,
    request_etag: str,
    failure: dict[str, Any],
    request_version: str | None = None,
) -> Outcome:
    """``Clip Failed``: the clip asked for was not published, and why."""
    detail = {"stream": stream, "clip": clip, "error": failure["error"],
              "cause": failure["cause"], "failed_at": failure["failed_at"]}  # fmt: skip
    return Outcome(
        CLIP_FAILED,
        f"clips/{stream}/{clip}",
        f"failed-{request_tag(request_etag, request_version)}",
        detail,
    )


def request_tag(etag: str, version_id: str | None = None) -> str:
    """A request version as a marker name: its ETag's hex digits (and a multipart's -N),
    and where the bucket keeps versions (identical bodies share an ETag) 12 hex digits of
    its version id (an opaque string that may hold ``/`` and ``+``)."""
    tag = etag.strip('"').lower()[:40] or "unversioned"
    if version_id in (None, "", "null"):
        return tag
    return f"{tag}-{hashlib.sha256(str(version_id).encode()).hexdigest()[:12]}"
