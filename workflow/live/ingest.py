"""LiveIngest: each uploaded segment starts its execution; an END marker closes the stream."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from workflow.errors import (
    ArchivedInputError,
    ConfigurationError,
    EncryptedInputError,
    StreamConfigError,
    TransientError,
)
from workflow.failures import FailureRecord
from workflow.live import rules
from workflow.live.config import StreamSettings, declared_config
from workflow.live.paths import (
    END_MARKER,
    INIT_SEGMENT,
    LIVE_PREFIX,
    MAX_RECORD_BYTES,
    MAX_SEQUENCE,
    STREAM_CONFIG,
    ClipPaths,
    StreamPaths,
    clip_execution_name,
    execution_name,
    parse_clip_key,
    parse_live_key,
    segment_sequence,
)
from workflow.live.publish import advance_stream
from workflow.live.store import StreamRecord, StreamTable
from workflow.media.ladder import parse_ladder
from workflow.runtime import Clients, start_once
from workflow.settings import Settings
from workflow.storage import Bucket, not_an_upload, transient_aws_errors

# The key Reconcile adds to the S3 event record of a failed upload it tries again: which
# attempt it is (2, 3, ...). S3's own records never carry it.
ATTEMPT = "vidflowAttempt"

log = logging.getLogger(__name__)


@transient_aws_errors()
def on_ingest(
    records: list[dict[str, Any]], settings: Settings, clients: Clients
) -> list[dict[str, Any]]:
    """Start one execution per uploaded segment; close a stream on its ``END`` marker;
    start one clip execution per version of a clip request."""
    seen: list[dict[str, Any]] = []
    for record in records:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        # (else it would claim a stream's sequence, a gap, or end it)
        skipped = not_an_upload(record, settings.ingest_bucket)
        if skipped is not None:
            seen.append({"key": key, "skipped": skipped})
            continue
        clip = parse_clip_key(key)
        if clip is not None:
            seen.append({"key": key, **start_clip(clip, bucket, record, settings, clients)})
            continue
        parsed = None if key.endswith("/") else parse_live_key(key)
        if parsed is None:
            if not key.endswith("/"):  # (a folder a console made: nothing to say)
                # A venue's stream id, or an app's clip name, that the contract does not
                # allow sees nothing published: the log says why.
                log.warning(
                    "%.200r is not live/<stream>/<name> nor clips/<stream>/<clip>.json: a "
                    "stream id is 1 to 48 letters, digits, - or _, a clip name 1 to 22: "
                    "skipped", key,
                )  # fmt: skip
            seen.append({"key": key, "skipped": "not live/<stream>/<name>"})
            continue
        stream, name = parsed
        sequence = segment_sequence(name)
        if name == END_MARKER:
            seen.append({"key": key, **end_stream(stream, bucket, settings, clients)})
        elif name == STREAM_CONFIG:
            upload = {"bucket": bucket, "key": key, "etag": record["s3"]["object"].get("eTag", "")}
            seen.append({"key": key, **late_config(stream, upload, settings, clients)})
        elif sequence is None:
            if name != INIT_SEGMENT:
                # A venue numbering by the clock, or padding past 9 digits, sees nothing
                # published: the log says why.
                log.warning(
                    "%.200r is no segment this stream can number (0 to %d, then .ts or "
                    ".m4s) nor END: skipped", key, MAX_SEQUENCE,
                )  # fmt: skip
            seen.append({"key": key, "skipped": "not a segment or END"})
        else:
            etag = record["s3"]["object"].get("eTag", "")
            # Express runs a name twice if asked (no idempotency); publishing is what
            # makes a duplicate harmless.
            name = execution_name(stream, sequence, etag)
            if ATTEMPT in record:  # Reconcile trying a failed upload again
                name = f"{name}-{int(record[ATTEMPT])}"
            payload = {
                "stream": stream,
                "sequence": sequence,
                "source": {
                    "bucket": bucket,
                    "key": key,
                    "etag": etag,
                    "uploaded_at": record.get("eventTime"),
                    # Which execution this is, and (Reconcile's 2, 3) which attempt of the
                    # upload: a step of it run again (Retry), or an event S3 delivers again
                    # (the same name), fails as the same attempt; after Reconcile's, as
                    # the next.
                    "execution": name,
                    **({"attempt": int(record[ATTEMPT])} if ATTEMPT in record else {}),
                },
            }
            # Noted before the segment's job starts, so no publish can start the stream
            # above it.
            table = StreamTable(clients.dynamodb, settings.live_table)
            table.note_upload(stream, sequence, clients.clock())
            started = start_once(clients, settings.live_state_machine_arn, name, payload)
            seen.append({"key": key, "stream": stream, "sequence": sequence, "started": started})
    return seen


def start_clip(
    clip: ClipPaths, bucket: str, record: dict[str, Any], settings: Settings, clients: Clients
) -> dict[str, Any]:
    """Start the Standard execution that publishes ``clip`` (once per request version)."""
    etag = record["s3"]["object"].get("eTag", "")
    version = record["s3"]["object"].get("versionId")
    payload = {
        "stream": clip.stream,
        "name": clip.name,
        "request": {"bucket": bucket, "key": clip.request_key, "etag": etag, "version_id": version},
    }
    name = clip_execution_name(clip, etag, version)
    started = start_once(clients, settings.clip_state_machine_arn, name, payload)
    return {"stream": clip.stream, "clip": clip.name, "started": started}


def end_stream(stream: str, bucket: str, settings: Settings, clients: Clients) -> dict[str, Any]:
    """Record the end marker; the playlists close once they pass its last sequence."""
    ending = record_end(stream, bucket, settings, clients)
    return {
        "stream": stream,
        "ended": True,
        "last_sequence": ending["last_sequence"],
        **advance_stream(stream, settings, clients),
    }


def record_end(
    stream: str,
    bucket: str,
    settings: Settings,
    clients: Clients,
    marker_uploaded: datetime | None = None,
) -> dict[str, Any]:
    """Record the stream's end marker and say so to the playlists' writer; the stream's
    ending, the first marker's if it had one. It is dated now, whenever the marker came:
    the segments still on their way get their wait from now (Reconcile records a marker
    whose event was lost minutes late, while the segments it started are encoding).

    The marker's body may name the last sequence (``{"last_sequence": N}``); else it
    is the highest one uploaded before the marker, which an encoder writes last. Either
    is taken only within reach of the segments uploaded (``rules.MAX_SKIPPED`` numbers
    past one, from the stream's first on, or the lowest uploaded where that is not known
    yet: an upload numbered below it was refused, and shows nothing): a body naming a
    sequence past that, or no whole number, is ignored and logged, and the highest
    upload within reach is the last. A last sequence below a segment published already
    is raised to it: a published segment is shown and recorded. The numbers uploaded
    and not yet published or failed are on their way: the ending keeps them, and the
    playlists wait for them as long as their jobs may run (``rules.Ending``).
    """
    ingest = Bucket(clients.s3, bucket)
    prefix = f"{LIVE_PREFIX}{stream}/"
    try:
        body = ingest.get_small(f"{prefix}{END_MARKER}", MAX_RECORD_BYTES)
    except (ArchivedInputError, EncryptedInputError) as exc:
        # The marker ends the stream whatever it holds: one S3 serves none of is empty.
        log.warning("END's body cannot be read, so it names no last segment: %s", exc)
        body = b""
    if body is None:
        log.warning("END's body is more than %d bytes: ignored", MAX_RECORD_BYTES)
        body = b""
    # (Recorded late, only what was uploaded before the marker counts here: the venue may
    # have pushed on since, and those segments fail as past the end, as they would have,
    # unless one was published or on its way already: see ``_last_sequence``. Late is
    # Reconcile's, or this event's when it comes late: a throttled or retried LiveIngest.)
    listed = {o["Key"][len(prefix) :]: o["LastModified"] for o in ingest.objects(prefix)}
    marker_uploaded = marker_uploaded or listed.get(END_MARKER)
    sequences = (
        segment_sequence(name)
        for name, modified in listed.items()
        if marker_uploaded is None or modified <= marker_uploaded
    )
    uploaded = [s for s in sequences if s is not None]
    declared = declared_last(body)
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create(stream)
    record = table.require(stream)
    last, arrived = -1, set[int]()
    if record.ending is None:
        last, arrived = _last_sequence(stream, table, record, uploaded, declared)
    for _ in range(5):
        # The first marker's ending stands: a second one (sent again, or read again) says it.
        if record.ending is not None:
            break
        # A segment admitted since the look is the stream's too (``StreamTable.admit``):
        # the marking is refused until the ending takes it in.
        last = max(last, -1 if record.admitted is None else record.admitted)
        marker: dict[str, Any] = {"last_sequence": last, "at": clients.clock()}
        waiting = on_its_way(uploaded, arrived, record.first_sequence or 0, last)
        if table.mark_ended(stream, marker | ({"on_its_way": waiting} if waiting else {})):
            break
        record = table.require(stream)
    else:
        raise TransientError(f"stream {stream}: segments kept coming while END was recorded")
    ending = table.count_change(stream).ending
    assert ending is not None  # (an ending is never taken back)
    return ending


def _last_sequence(
    stream: str,
    table: StreamTable,
    record: StreamRecord,
    uploaded: list[int],
    declared: int | None,
) -> tuple[int, set[int]]:
    """Where an END marker ends the stream (see ``record_end``), and every number from
    the stream's first that has arrived (published or failed)."""
    first = record.first_sequence or 0
    highest = highest_within_reach(s for s in uploaded if s >= first)
    last = declared
    if last is not None and last > highest + rules.MAX_SKIPPED:
        log.warning(
            "stream %s: END names last_sequence %d, more than %d past the highest segment "
            "uploaded within reach (%d); ending there instead",
            stream,
            last,
            rules.MAX_SKIPPED,
            highest,
        )
        last = None
    if last is None:
        last = highest
    # A segment published already (or admitted for publishing) is the stream's, whatever
    # the body says: else whether it is shown would hang on whether the numbers before it
    # were published in time.
    # (One arrival at a time: at 36 h of 1 s segments, all of them held take 225 MB, and
    # the recording that ending the stream makes next takes as much again.)
    arrived, published = set(), -1
    for sequence, arrival in table.each_arrival(stream, first):
        arrived.add(sequence)
        if not arrival["failed"]:
            published = max(published, sequence)
    if record.admitted is not None:
        published = max(published, record.admitted)
    if published > last:
        log.warning(
            "stream %s: END names last_sequence %d, below segment %d published already; "
            "ending there instead", stream, last, published,
        )  # fmt: skip
        last = published
    return last, arrived


# The most ranges of numbers on their way an ending keeps (2.5 KB at most of the stream
# record, whose state leaves it 13 KB: ``store.MAX_STATE_BYTES``); numbers in ranges past
# them are waited for as gaps are.
MAX_ON_ITS_WAY = 100


def on_its_way(
    uploaded: Iterable[int], arrived: set[int], first: int, last: int
) -> list[list[int]]:
    """The numbers from ``first`` to ``last`` that were uploaded and have not ``arrived``
    (their jobs are running), as ``[first, last]`` ranges, the lowest first: see
    ``rules.Ending``."""
    ranges: list[list[int]] = []
    for sequence in sorted({s for s in uploaded if first <= s <= last} - arrived):
        if ranges and ranges[-1][1] == sequence - 1:
            ranges[-1][1] = sequence
        elif len(ranges) == MAX_ON_ITS_WAY:
            break
        else:
            ranges.append([sequence, sequence])
    return ranges


# What a stream runs with, for each setting of ``stream.json`` (its ladder aside).
_RUNNING = {
    "segment_seconds": lambda config: config.segment_seconds,
    "window": lambda config: config.window,
    "gap_seconds": lambda config: config.gap_seconds,
    "first_sequence": lambda config: config.first_sequence,
    "encryption": lambda config: config.encryption,
    "key_rotation_segments": lambda config: config.key_rotation,
    "idle_seconds": lambda config: config.idle_seconds,
    "mend_seconds": lambda config: config.mend_seconds,
}


def late_config(
    stream: str, upload: dict[str, str], settings: Settings, clients: Clients
) -> dict[str, Any]:
    """A ``stream.json`` uploaded once the stream's first segment has fixed its settings
    is not applied. Where it asks for something else than the stream runs with (another
    encryption, window, ladder, ...) or is no valid settings, that is not dropped unsaid:
    it is the stream's failure record ``failures/live/<stream>/stream.json`` and a warning.
    """
    running = StreamTable(clients.dynamodb, settings.live_table).get(stream)
    if running is None or running.config is None:
        return {"skipped": "read by the stream's first segment"}
    config = StreamSettings.from_dict(running.config)
    try:
        declared = declared_config(upload["bucket"], stream, clients)
        differs = [
            f"{name} {value!r} (the stream runs with {_RUNNING[name](config)!r})"
            for name, value in declared.items()
            if name in _RUNNING and value != _RUNNING[name](config)
        ]
        if "ladder" in declared and not _ladder_within(str(declared["ladder"]), config):
            differs.append(f"ladder {declared['ladder']!r}")
    except StreamConfigError as exc:
        differs = [str(exc)]
    except ConfigurationError as exc:  # the ladder
        differs = [f"stream.json: {exc}"]
    if not differs:
        return {"skipped": "the stream runs with these settings"}
    cause = (
        f"stream.json came after the stream's first segment fixed its settings, which hold "
        f"for its life: not applied ({'; '.join(differs)}). Send it before the first "
        "segment of a new stream id."
    )
    log.warning("stream %s: %s", stream, cause)
    failure = FailureRecord.of(
        {"stream": stream}, {"Error": StreamConfigError.__name__, "Cause": cause}, upload, clients
    )
    Bucket(clients.s3, settings.output_bucket).put_json(
        StreamPaths(stream).config_failure_key, failure.to_dict()
    )
    return {"refused": StreamConfigError.__name__}


def _ladder_within(spec: str, config: StreamSettings) -> bool:
    """Whether every rung the stream runs is one of ``spec``'s: a stream drops the rungs
    above its picture, and one smaller than every rung, or between two, runs a top rung
    of its own size (``build_ladder``)."""
    declared = parse_ladder(spec)
    sides = {side for side, _ in declared}
    running = {(int(r.name.removesuffix("p")), r.kbps) for r in config.renditions}
    top = max(running, default=None)
    return all(
        rung in declared
        or rung[0] < min(sides)
        or (rung == top and rung[0] < max(sides) and rung[0] not in sides)
        for rung in running
    )


def declared_last(body: bytes) -> int | None:
    """The ``last_sequence`` an END marker's body names, if it is a segment's number."""
    try:
        declared = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python goes
        log.warning("END's body is not a JSON object: ignored")
        return None
    if not isinstance(declared, dict):  # a bare number or string, a list: say so
        log.warning("END's body is not a JSON object: ignored")
        return None
    last = declared.get("last_sequence")
    if isinstance(last, str) and segment_sequence(f"{last}.ts") is not None:
        return int(last)
    if isinstance(last, int) and not isinstance(last, bool) and 0 <= last <= MAX_SEQUENCE:
        return last
    if last is not None:
        log.warning("END's last_sequence %.80r is not a segment's number: ignored", last)
    return None


def highest_within_reach(sequences: Iterable[int]) -> int:
    """The highest of ``sequences`` reached from the lowest without skipping more than
    ``rules.MAX_SKIPPED`` numbers at once (what the playlists can reach); -1 for none."""
    highest = -1
    for sequence in sorted(set(sequences)):
        if highest >= 0 and sequence - highest - 1 > rules.MAX_SKIPPED:
            break
        highest = sequence
    return highest
