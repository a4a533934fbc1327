"""Live segments that nothing processed, found at a cost that grows with the streams.

The reconciler must find every live segment in ingest whose event was lost. Checking each
key under ``live/`` against the table every run costs a list entry and a read per segment
in the lookback (21 million a run at 500 streams of 4 s segments). Instead each stream
record carries ``reconciled``: every sequence below it is accounted for (it has an arrival;
or its upload is older than the lookback, or has a failure record; or it was never uploaded
while a later segment has been published for longer than the grace period). A run reads
the record, the arrivals from ``reconciled`` on (a few minutes' worth), and lists the
stream's ingest keys from there on, then raises ``reconciled`` to the lowest sequence
still open: an upload in its grace period, or one it just started (the next run checks
that it arrived, and starts it again if not, as before).

Segment names are not zero-padded (``10.ts`` sorts before ``9.ts``), so S3's order is
numeric only among names of one length. A listing that starts just before the decade of the
last sequence accounted for (after ``live/<s>/<n // 10>/``) holds every same-length sequence
from there on, with one shorter name between each decade and the next, so one page of
1,000 keys covers some 900 sequences; one more page starts at a power of ten just ahead.
A sequence that no page covered is looked up by its own prefix (``live/<s>/<n>.``), or,
past ``PROBES`` of them, the stream's keys are listed in full; so are those of a stream
whose last accounted-for segment the pages did not show (zero-padded names, ``0042.ts``,
sort elsewhere).

A stream closed with every segment accounted for costs each run a record read as long as
its folder is listed: every stream ever run, every five minutes. Once its end is older
than ``UPLOADS_KEPT_SECONDS`` its uploads are deleted (each one that old), so its folder
drops out of the listing and out of every later run. Nothing reads them by then: its
playlists, recording and clips are made of the output's rungs, the lookback is long past,
and so is the last redrive of a lost event from the failed-events queue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.exceptions

from workflow.errors import TransientError
from workflow.live.paths import (
    END_MARKER,
    LIVE_PREFIX,
    StreamPaths,
    parse_live_key,
    segment_sequence,
)
from workflow.live.store import StreamRecord, StreamTable, upload_etag
from workflow.storage import Bucket, transient_aws_errors

# S3's most keys a list page returns.
PAGE_KEYS = 1000
# Sequences looked up one by one before listing the stream's keys in full instead.
PROBES = 20
# How far past the highest sequence the table knows a listing looks across a power of ten.
REACH = 100
# The most sequences looked at one by one for whether a page held them; a stream whose
# keys reach further (a broken counter's ``999999999.ts``: 1,400 s of looking, every run,
# past the function's timeout, and no stream's lost segments found again) is listed in
# full instead.
WALKED = 100_000
# How long a closed stream's uploads are kept after its end: the failed-events queue's
# retention (MessageRetentionPeriod), the last a lost event of one can be redriven.
UPLOADS_KEPT_SECONDS = 14 * 86400

log = logging.getLogger(__name__)


def unprocessed_segments(
    ingest: Bucket,
    output: Bucket,
    table: StreamTable,
    oldest: datetime,
    newest: datetime,
    forget_before: datetime | None = None,
) -> list[dict[str, Any]]:
    """The listing entries (``Key``, ``ETag``, ``Size``, ``LastModified``) of the live
    segments uploaded between ``oldest`` and ``newest`` that nothing processed, and of
    the end markers uploaded then that the stream's record does not hold. A stream that
    is over and accounted for, ended before ``forget_before``, has its uploads from before
    then deleted."""
    found = []
    for stream in streams(ingest):
        try:
            with transient_aws_errors():
                found += _stream_unprocessed(
                    stream, ingest, output, table, oldest, newest, forget_before
                )
        except TransientError as exc:
            # One stream's trouble (a hot record DynamoDB throttles) holds up no other's
            # lost segments, ends or clips: it is looked at again next run.
            log.warning("stream %s: its lost segments are left for the next run: %s", stream, exc)
    return found


def is_end_marker(entry: dict[str, Any]) -> bool:
    """Whether a listing entry ``unprocessed_segments`` found is an end marker."""
    parsed = parse_live_key(entry["Key"])
    return parsed is not None and parsed[1] == END_MARKER


def streams(ingest: Bucket) -> Iterator[str]:
    """Every stream with a key under ``live/``: one list entry per stream, not per key."""
    paginator = ingest.client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=ingest.name, Prefix=LIVE_PREFIX, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            parsed = parse_live_key(f"{common['Prefix']}0.ts")
            if parsed is not None:
                yield parsed[0]


@dataclass
class _Listed:
    """What the listings of one stream saw: its segments' entries by sequence, and the
    key ranges they covered (``(after, through)``, ``through`` None: to the end)."""

    prefix: str
    objects: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    ranges: list[tuple[str, str | None]] = field(default_factory=list)
    end: dict[str, Any] | None = None

    def add(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            parsed = parse_live_key(entry["Key"])
            sequence = segment_sequence(parsed[1]) if parsed else None
            if sequence is not None:
                self.objects.setdefault(sequence, {})[entry["Key"]] = entry
            elif parsed and parsed[1] == END_MARKER:
                self.end = entry

    def covers(self, sequence: int) -> bool:
        """Whether a listing held every key segment ``sequence`` can have (``.m4s``, ``.ts``)."""
        return self._covers(f"{self.prefix}{sequence}.m4s", f"{self.prefix}{sequence}.ts")

    def covers_end(self) -> bool:
        """Whether a listing held the stream's end marker's key (after every number's)."""
        key = f"{self.prefix}{END_MARKER}"
        return self._covers(key, key)

    def _covers(self, low: str, high: str) -> bool:
        return any(
            after < low and (through is None or high <= through) for after, through in self.ranges
        )


def _page(ingest: Bucket, listed: _Listed, after: str) -> None:
    page = ingest.client.list_objects_v2(
        Bucket=ingest.name, Prefix=listed.prefix, StartAfter=after, MaxKeys=PAGE_KEYS
    )
    entries = page.get("Contents", [])
    listed.add(entries)
    listed.ranges.append((after, entries[-1]["Key"] if page.get("IsTruncated") else None))


def _decade_start(prefix: str, sequence: int) -> str:
    """The key a listing starts after to begin at ``sequence``'s decade: ``.../183/`` sorts
    after ``183.ts`` and before ``1830.ts``."""
    return f"{prefix}{str(sequence)[:-1]}/"


def _list(ingest: Bucket, prefix: str, first: int, known: int) -> _Listed:
    """Pages from ``first``'s decade and from each power of ten up to ``known + REACH``."""
    listed = _Listed(prefix)
    starts = {_decade_start(prefix, first)}
    power = 10
    while power <= known + REACH:
        if power > first:
            starts.add(_decade_start(prefix, power))
        power *= 10
    for after in sorted(starts):
        _page(ingest, listed, after)
    return listed


def _stream_unprocessed(
    stream: str,
    ingest: Bucket,
    output: Bucket,
    table: StreamTable,
    oldest: datetime,
    newest: datetime,
    forget_before: datetime | None = None,
) -> list[dict[str, Any]]:
    record = table.get(stream)
    start = record.reconciled if record else 0
    ending = record.ending if record else None
    if record and record.closed and ending and start > ending["last_sequence"]:
        # Closed, and every segment of it accounted for: its uploads are of no more use
        # once no lost event of one can come back (an upload since then stays).
        if forget_before is not None and ending["at"] < forget_before.timestamp():
            _forget(ingest, f"{LIVE_PREFIX}{stream}/", forget_before)
        return []
    # From the last sequence accounted for: its key shows the listings read the stream's
    # names right (a venue that zero-pads them, ``0042.ts``, gets the full listing).
    arrivals = table.arrivals(stream, max(start - 1, 0))
    known = max([start - 1, *arrivals, *_noted(record)])
    prefix = f"{LIVE_PREFIX}{stream}/"
    listed = _list(ingest, prefix, max(start - 1, 0), known)
    top = max([known, *(s for s in listed.objects if s >= start)])
    # As far as the pages were to reach: a reconciler that lags (a segment held open for
    # runs) starts its pages so far below ``known`` that they end short of it, and the
    # lost ones just past it (the stream's newest) would be looked for by nothing.
    unlisted = []
    reach = max(top, known + REACH)
    for sequence in range(start, min(reach, start + WALKED) + 1):
        if sequence not in arrivals and not listed.covers(sequence):
            unlisted.append(sequence)
            if len(unlisted) > PROBES:
                break
    latest = max(arrivals, default=None)
    misread = latest is not None and listed.covers(latest) and latest not in listed.objects
    if misread or len(unlisted) > PROBES or reach > start + WALKED:
        listed = _Listed(prefix)
        listed.add(list(ingest.objects(prefix)))
        listed.ranges.append(("", None))
    else:
        for sequence in unlisted:
            listed.add(list(ingest.objects(f"{prefix}{sequence}.")))
    top = max([known, *(s for s in listed.objects if s >= start)])

    # A sequence not uploaded is not coming once a later one has been published for the
    # grace period, or the end marker is that old. (A later one refused is no sign: a
    # broken counter's 999999999.ts gave up every number the encoder had yet to upload.)
    settled = newest.timestamp()
    given_up_below = max(
        (s for s, a in arrivals.items() if not a.get("failed") and a["at"] <= settled), default=-1
    )
    if ending is not None and ending["at"] <= settled:
        given_up_below = top + 1
    found, still_open = [], []
    for sequence in sorted(s for s in listed.objects if s >= start and _open(arrivals.get(s))):
        for entry in listed.objects[sequence].values():
            if entry["LastModified"] < oldest:
                continue  # out of the lookback: left alone, as before
            failed = arrivals.get(sequence)
            if failed is not None and _failed_upload(failed) in ("", _etag(entry)):
                # This very upload failed: tried again if its failure says nothing
                # against its bytes, a grace period after it failed (a retry of its own).
                if not failed.get("try_again"):
                    continue
                if failed["at"] > settled:
                    still_open.append(sequence)
                else:
                    found.append({**entry, "attempt": int(failed.get("attempt", 1)) + 1})
                    still_open.append(sequence)
            elif entry["LastModified"] > newest:
                still_open.append(sequence)  # within its grace: its event may yet come
            elif failed is not None or not _failure_stands(output, stream, sequence):
                # Never processed (its event lost); or, where a failed upload is on
                # record, another one of it (mended) whose event was lost.
                found.append(entry)
                still_open.append(sequence)  # started: the next run checks it arrived
    absent = (
        s
        for s in range(max(start, given_up_below), top + 1)
        if s not in arrivals and s not in listed.objects
    )
    reconciled = min([*still_open, next(absent, top + 1)])
    if record is not None and reconciled > start:
        table.note_reconciled(stream, reconciled)
    if ending is None and not (record and record.closed):
        # An end marker whose event was lost: the pages hold it (it sorts after every
        # number) unless they stopped short of it.
        if not listed.covers_end():
            listed.add(list(ingest.objects(f"{prefix}{END_MARKER}")))
        end = listed.end
        if end is not None and oldest <= end["LastModified"] <= newest:
            found.append(end)
    return found


def _failure_stands(output: Bucket, stream: str, sequence: int) -> bool:
    """Whether a failure record accounts for a segment with no arrival. A refusal for
    another upload's claim (``SegmentReusedError`` with no arrival) does not: that upload
    died unpublished, so the segment's upload is started again, its claim long over."""
    key = StreamPaths(stream).failure_key(sequence)
    return output.exists(key) and output.get_json(key).get("error") != "SegmentReusedError"


def _open(arrival: dict[str, Any] | None) -> bool:
    """Whether a sequence with this arrival (None: none) may still need starting."""
    return arrival is None or bool(arrival.get("failed"))


def _failed_upload(arrival: dict[str, Any]) -> str:
    """The ETag of the upload a failed arrival was of."""
    return upload_etag(str(arrival.get("upload", "")))


def _etag(entry: dict[str, Any]) -> str:
    return str(entry["ETag"]).strip('"')


def _noted(record: StreamRecord | None) -> list[int]:
    """The sequences the stream record knows were uploaded: the lowest, and the last."""
    if record is None:
        return []
    noted = [] if record.lowest_upload is None else [record.lowest_upload]
    return noted + ([record.ending["last_sequence"]] if record.ending else [])


def _forget(ingest: Bucket, prefix: str, before: datetime) -> None:
    """Delete the uploads under ``prefix`` from before ``before``: nothing needs them, so a
    refusal is logged and the run goes on to the other streams."""
    try:
        ingest.delete_keys([o["Key"] for o in ingest.objects(prefix) if o["LastModified"] < before])
    except botocore.exceptions.ClientError as exc:
        log.warning("kept %s's old uploads: %s", prefix, exc)
