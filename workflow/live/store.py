"""Live stream state in DynamoDB: one stream record, one arrival per published segment.

Before a segment's files are written, the upload whose encode writes them claims them (an
item of its own). Every segment's job ends by recording an arrival (a conditional put, so
a duplicate publishes nothing), counting it as published once (the count and the
arrival's note that it is counted are one transaction, so two runs of one upload at once
never both count it) and asking for the playlists to be advanced. Exactly one
writer advances a stream at a time: it holds a lease on the stream record, and it releases
the lease only if no arrival came while it worked (``pending`` still equals what it
saw), so an arrival is never left unpublished and playlist objects are never written
by two writers at once. A writer that dies leaves a lease that expires.
"""

from __future__ import annotations

import array
import contextlib
import enum
import json
import lzma
import sys
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workflow.errors import StreamEndedError, StreamNotReadyError, TransientError
from workflow.storage import Bucket, Pin

STREAM_ITEM = "stream"
# The template's sparse index over open stream records (only they carry ``open``).
OPEN_INDEX = "open-streams"
_SEGMENT_ITEM = "seg#{sequence:012d}"
# Outside the arrivals' key range (``seg#...``): an upload's claim on a segment's files.
_CLAIM_ITEM = "claim#{sequence:012d}"
# How many segments were published (``count_published``): an item of its own, not the
# stream record, as a transaction bills each item it writes at twice its size, and the
# record holds the playlist state (up to ~400 KB).
_PUBLISHED_ITEM = "stream#published"


# Failures that say nothing against a segment's bytes: the Lambda service's, a step out
# of time, a transient error, a segment that overtook its stream's backlog, an fMP4
# segment that overtook its init.mp4 (uploaded at once, or a restarted encoder's), a mended
# segment that came while a failed upload's claim still held its files. Reconcile
# starts such an upload again, a grace period after it failed, up to ``MAX_ATTEMPTS`` in
# all; it is a gap live meanwhile, and in the recording only if every attempt fails.
TRIED_AGAIN = frozenset(
    {
        "TransientError",
        "TranscodeInterruptedError",
        "StreamNotReadyError",
        "SequenceJumpError",
        "MissingInitSegmentError",
        "InitSegmentMismatchError",
        "SegmentClaimedError",
        "Sandbox.Timedout",
        "States.Timeout",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.Unknown",
    }
)
MAX_ATTEMPTS = 3
# How long an upload's claim on a segment's files stands unless its arrival ends it: an
# Express execution lives at most five minutes, so a claim outlives the execution that
# made it, and a mended upload may take the segment over once that execution died.
CLAIM_SECONDS = 300.0
# The most the stream record's packed playlist state may take: a DynamoDB item holds
# 400 KB (409,600 bytes; moto refuses one past 405,000), and the record's other
# attributes (its settings, end marker, lease and counters) take a few KB at most.
MAX_STATE_BYTES = 396_000
# How long after a stream ended an upload may still mend one of its gaps (an operator
# uploading a failed segment again the next morning), unless its stream.json says: one
# written later is another broadcast under a reused name (next week's game), whose
# segment under a gap's number would otherwise be published into this one's recording.
MEND_SECONDS = 86_400.0
# Room kept in it for the entries up to where a stream that outgrows it is ended (the
# segments it has, and those admitted): some 6,000 entries of any length.
STATE_HEADROOM = 16_000


def _segment_item(sequence: int) -> str:
    return _SEGMENT_ITEM.format(sequence=sequence)


def _claim_item(sequence: int) -> str:
    return _CLAIM_ITEM.format(sequence=sequence)


@dataclass(frozen=True)
class StreamRecord:
    """The stream record: its settings, playlist state, end marker, lease counters, the
    lowest sequence number uploaded (None: no upload noted), how far the reconciler
    has accounted for the stream's segments (every sequence below ``reconciled``), and
    how many segments an older version counted as published on it (``StreamTable.published``
    adds those counted since), and the highest sequence admitted for publishing
    (None: none was)."""

    config: dict[str, Any] | None
    state: dict[str, Any] | None
    ending: dict[str, Any] | None
    pending: int
    closed: bool
    lowest_upload: int | None = None
    reconciled: int = 0
    published: int = 0
    admitted: int | None = None
    # The clock of the last writer that took the lease to advance as of its own clock
    # (a publisher, not the sweep): the playlists may show its advance even if it died
    # before it stored it, so no later writer advances as of an earlier time.
    advanced_to: float | None = None
    # When its first upload was noted (None: before records kept it): a stream whose
    # every upload came to nothing (deleted before it was read) is ended idle from then.
    created_at: float | None = None
    # When LiveIngest last noted an upload (None: none since records kept it): a segment
    # on its way is activity, which the idle end counts from as it does from arrivals.
    last_upload: float | None = None
    # Set by a writer that wrote the playlists and then found its lease gone (a write
    # slower than the lease: the next writer may have written newer ones first): the
    # playlists may be older than the state, and the next writer writes them again.
    stale: str | None = None

    @property
    def first_sequence(self) -> int | None:
        """The first segment the stream shows: where its playlists started, else its
        ``stream.json``'s ``first_sequence``; None while neither is known."""
        for known in (self.state, self.config):
            if known and known.get("first_sequence") is not None:
                return int(known["first_sequence"])
        return None

    def refuse_past_the_end(
        self, sequence: int, uploaded: Callable[[], float] | None = None
    ) -> None:
        """Refuse a segment numbered past the stream's end marker: its playlists are over,
        and a segment encoded for them would be published nowhere. Numbered within it,
        refuse one ``uploaded`` (asked only then: S3's time for the upload, in seconds)
        more than the stream's ``mend_seconds`` after the end was recorded: nothing in its
        bytes tells it from a mend, but it is another broadcast under a reused name,
        which would be published into this one's recording."""
        if self.ending is None:
            return
        last = int(self.ending["last_sequence"])
        if sequence > last:
            # (An END before any upload ends the stream before its first segment: -1.)
            at = f"at segment {last}" if last >= 0 else "before its first segment"
            raise StreamEndedError(
                f"segment {sequence} came after the stream ended {at}: a new broadcast "
                "needs a new stream name"
            )
        ended = self.ending.get("at")
        if uploaded is None or ended is None:
            return  # (an ending with no time: kept by no version, but never refused on it)
        window = float((self.config or {}).get("mend_seconds", MEND_SECONDS))
        written = uploaded()
        if written > float(ended) + window:
            when = datetime.fromtimestamp(float(ended), UTC).isoformat(timespec="seconds")
            raise StreamEndedError(
                f"segment {sequence} was uploaded {written - float(ended):.0f} s after the "
                f"stream ended at {when}, segment {last} (mend_seconds {window:g}): not a "
                "mend of it; a new broadcast needs a new stream name"
            )


@dataclass(frozen=True)
class Claimed:
    """What ``StreamTable.claim`` found: the claim made, or the other bytes' claim (their
    ETag, ``holder``) or the arrival that stands in its way."""

    made: bool
    arrival: dict[str, Any] | None = None
    holder: str = ""


@dataclass(frozen=True)
class Stored:
    """What ``StreamTable.store_arrival`` did: whether it stored the arrival (``new``),
    the failed arrival it took the place of, and, where it stored none, whether the one
    standing is the same upload's, not yet counted as published (``uncounted``)."""

    new: bool
    replaced: dict[str, Any] | None = None
    uncounted: bool = False


class Saved(enum.Enum):
    """What ``StreamTable.save`` did with a writer's state."""

    # Stored, and the lease let go: nothing arrived since the writer looked.
    RELEASED = "released"
    # Stored, lease kept: segments arrived meanwhile, so the writer must look again.
    LOOK_AGAIN = "again"
    # Not stored: the lease ran out and another writer holds it now.
    LOST = "lost"


class StreamTable:
    """The live state table, through a low-level DynamoDB client."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        # The last state ``fits`` packed, and how: ``save`` stores it without packing again.
        self._fitted: tuple[dict[str, Any], bytes] | None = None

    def _key(self, stream: str, item: str) -> dict[str, Any]:
        return {"stream": {"S": stream}, "item": {"S": item}}

    def create(self, stream: str, at: float | None = None) -> None:
        """The stream's record, created bare unless it already exists; ``at``: when (an
        upload's noting says, for a stream that never gets anything else)."""
        created = {} if at is None else {"created_at": {"N": str(at)}}
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.put_item(
                TableName=self.name,
                Item={
                    **self._key(stream, STREAM_ITEM),
                    "pending": {"N": "0"},
                    "open": {"S": "1"},
                    **created,
                },
                ConditionExpression="attribute_not_exists(#s)",
                ExpressionAttributeNames={"#s": "stream"},
            )

    def configure(self, stream: str, config: dict[str, Any]) -> StreamRecord:
        """Fix the stream's settings on its first segment; later calls change nothing."""
        self.create(stream)
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression="SET config = :c",
                ConditionExpression="attribute_not_exists(config)",
                ExpressionAttributeValues={":c": {"S": json.dumps(config)}},
            )
        return self.require(stream)

    def note_upload(self, stream: str, sequence: int, at: float | None = None) -> None:
        """Remember ``sequence`` if it is the lowest uploaded yet: the stream cannot start
        above a segment that is on its way. ``at``: now, kept if this creates the record,
        and as the last upload noted (``StreamRecord.last_upload``). A read, then one
        write (two where the lowest changed as it looked)."""
        self.create(stream, at)
        key = self._key(stream, STREAM_ITEM)
        noted = self.client.get_item(
            TableName=self.name, Key=key, ProjectionExpression="lowest_upload"
        ).get("Item", {})
        lower = "lowest_upload" not in noted or int(noted["lowest_upload"]["N"]) > sequence
        last = {":at": {"N": repr(at)}} if at is not None else {}
        if lower:
            with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
                self.client.update_item(
                    TableName=self.name,
                    Key=key,
                    UpdateExpression="SET lowest_upload = :s"
                    + (", last_upload = :at" if last else ""),
                    ConditionExpression="attribute_not_exists(lowest_upload) OR lowest_upload > :s",
                    ExpressionAttributeValues={":s": {"N": str(sequence)}} | last,
                )
                return
        if last:
            self.client.update_item(
                TableName=self.name,
                Key=key,
                UpdateExpression="SET last_upload = :at",
                ExpressionAttributeValues=last,
            )

    def arrival(self, stream: str, sequence: int) -> dict[str, Any] | None:
        """The segment's arrival, if one is stored."""
        item = self.client.get_item(
            TableName=self.name, Key=self._key(stream, _segment_item(sequence)), ConsistentRead=True
        ).get("Item")
        return None if item is None else json.loads(item["arrival"]["S"])

    def note_reconciled(self, stream: str, below: int) -> None:
        """Remember that every sequence below ``below`` is accounted for (only ever raised,
        and only on a stream record that exists)."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression="SET reconciled = :r",
                ConditionExpression="attribute_exists(#s) AND "
                "(attribute_not_exists(reconciled) OR reconciled < :r)",
                ExpressionAttributeNames={"#s": "stream"},
                ExpressionAttributeValues={":r": {"N": str(below)}},
            )

    def require(self, stream: str) -> StreamRecord:
        """The stream's record, which the caller knows was created; a named error if not."""
        record = self.get(stream)
        if record is None:
            raise StreamNotReadyError(f"stream {stream} has no record in the live table")
        return record

    def get(self, stream: str) -> StreamRecord | None:
        item = self.client.get_item(
            TableName=self.name, Key=self._key(stream, STREAM_ITEM), ConsistentRead=True
        ).get("Item")
        return None if item is None else _record(item)

    def claim(self, stream: str, sequence: int, upload: str, *, now: float) -> Claimed:
        """Claim the segment's files in the output bucket for one upload of it, before its
        encode writes them: a published segment's files are never written over, and two
        uploads under one number never write them in turn.

        The claim is an item of its own (``claim#<sequence>``, which the arrivals' queries
        and an older version of this code never read). It is held for the upload's bytes
        (its ETag: the same bytes uploaded again share it, and write the same files) until
        their arrival is recorded or ``CLAIM_SECONDS`` pass; a failure does not end it
        (the same upload's other execution, an event delivered twice, may still be
        writing), so other bytes mending it wait for it to run out. It is refused
        while other bytes' claim stands, and counts for nothing where an arrival stands
        that the upload may not take the place of (``replaces``; a published one ends
        it). An arrival is recorded before its claim ends, so one of the two is always
        there to be seen.
        """
        for _ in range(3):
            try:
                self.client.update_item(
                    TableName=self.name,
                    Key=self._key(stream, _claim_item(sequence)),
                    UpdateExpression="SET etag = :e, #until = :until",
                    ConditionExpression="attribute_not_exists(etag) OR etag = :e OR #until < :now",
                    ExpressionAttributeNames={"#until": "until"},
                    ExpressionAttributeValues={
                        ":e": {"S": upload_etag(upload)},
                        ":now": {"N": repr(now)},
                        ":until": {"N": repr(now + CLAIM_SECONDS)},
                    },
                )
                break
            except self.client.exceptions.ConditionalCheckFailedException:
                holder = self._holder(stream, sequence)
                if holder:
                    return Claimed(False, holder=holder)
                # (else its arrival ended it between the refusal and the look: again)
        else:
            raise TransientError(f"segment {sequence} of {stream}: its claim kept changing")
        stored = self.arrival(stream, sequence)
        if stored is not None and not _replaceable(stored, upload):
            if not stored.get("failed"):
                self._end_claim(stream, sequence, upload)  # published: nothing to write
            return Claimed(False, arrival=stored)
        return Claimed(True)

    def _end_claim(self, stream: str, sequence: int, upload: str) -> None:
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.delete_item(
                TableName=self.name,
                Key=self._key(stream, _claim_item(sequence)),
                ConditionExpression="etag = :e",
                ExpressionAttributeValues={":e": {"S": upload_etag(upload)}},
            )

    def _holder(self, stream: str, sequence: int) -> str:
        """The ETag of the bytes that claimed the segment's files ("" where none did)."""
        item = self.client.get_item(
            TableName=self.name, Key=self._key(stream, _claim_item(sequence)), ConsistentRead=True
        ).get("Item", {})
        return str(item.get("etag", {}).get("S", ""))

    def record_arrival(self, stream: str, sequence: int, arrival: dict[str, Any]) -> bool:
        """Store a segment's arrival; False if it was already there (a duplicate), or if
        another upload claimed the segment's files.

        A failed arrival gives way to one from another upload of the segment (the venue
        sent it again, mended), never to a second delivery of the same upload's event;
        one to be tried again (``try_again``) gives way to any. A success ends the
        claim of the upload's bytes.
        """
        return self.store_arrival(stream, sequence, arrival).new

    def store_arrival(self, stream: str, sequence: int, arrival: dict[str, Any]) -> Stored:
        """``record_arrival``, the failed arrival the stored one took the place of, and
        whether the one standing where none was stored is uncounted: read from the write
        itself (its old item, or the one its condition failed on), at no extra cost."""
        upload = arrival.get("upload", "")
        failed = bool(arrival.get("failed"))
        holder = self._holder(stream, sequence) if not failed else ""
        if holder not in ("", upload_etag(upload)):
            return Stored(False, uncounted=self.uncounted(stream, sequence, upload))
        item = {**self._key(stream, _segment_item(sequence)), "arrival": {"S": json.dumps(arrival)}}
        if failed:
            item["failed_upload"] = {"S": "" if arrival.get("try_again") else upload}
        else:
            # Until ``count_published``: a publish cut off or throttled before it counted the
            # arrival finds it stored when it runs again, and counts it then.
            item["uncounted"] = {"S": upload}
        try:
            old = self.client.put_item(
                TableName=self.name,
                Item=item,
                ConditionExpression="attribute_not_exists(#s) OR "
                "(attribute_exists(failed_upload) AND failed_upload <> :u)",
                ExpressionAttributeNames={"#s": "stream"},
                ExpressionAttributeValues={":u": {"S": upload}},
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ).get("Attributes")
        except self.client.exceptions.ConditionalCheckFailedException as refused:
            standing = refused.response.get("Item", {})
            return Stored(False, uncounted=_uncounted_by(standing, upload))
        if not failed:
            self._end_claim(stream, sequence, upload)
        return Stored(True, None if old is None else json.loads(old["arrival"]["S"]))

    def uncounted(self, stream: str, sequence: int, upload: str) -> bool:
        """Whether the segment's arrival stored from ``upload`` is not yet counted as
        published (its publish stopped between storing and counting it)."""
        item = self.client.get_item(
            TableName=self.name,
            Key=self._key(stream, _segment_item(sequence)),
            ConsistentRead=True,
            ProjectionExpression="uncounted",
        ).get("Item", {})
        return _uncounted_by(item, upload)

    def count_published(self, stream: str, sequence: int, upload: str) -> bool:
        """Count the segment's arrival from ``upload`` as published, and note it counted,
        in one transaction: whether this call counted it. False if it was counted already
        (its condition failed: two runs of the upload at once, an event delivered twice,
        both found it uncounted, and the other counted it); nothing is counted twice, and
        a call that fails counts nothing (the run's retry, or its failure, counts it).
        The playlists' writer is told of the change by ``count_change``, after it (which
        also says whether the stream has a record)."""
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.name,
                            "Key": self._key(stream, _segment_item(sequence)),
                            "UpdateExpression": "REMOVE uncounted",
                            "ConditionExpression": "uncounted = :u",
                            "ExpressionAttributeValues": {":u": {"S": upload}},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.name,
                            "Key": self._key(stream, _PUBLISHED_ITEM),
                            "UpdateExpression": "ADD published :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except self.client.exceptions.TransactionCanceledException as cancelled:
            reasons = cancelled.response.get("CancellationReasons", [])
            arrival, count = ([r.get("Code") for r in reasons] + [None, None])[:2]
            if arrival == "ConditionalCheckFailed":
                return False
            # Another transaction on either item at once (TransactionConflict), or
            # throttled: nothing was counted, and the run is tried again.
            raise TransientError(
                f"segment {sequence} of {stream}: its count was cancelled ({arrival}, {count})"
            ) from None
        return True

    def published(self, stream: str, record: StreamRecord | None = None) -> int:
        """How many segments of the stream were published: those ``count_published``
        counted, and those an older version counted on the stream record (``record``'s,
        read if not given)."""
        record = record if record is not None else self.require(stream)
        item = self.client.get_item(
            TableName=self.name,
            Key=self._key(stream, _PUBLISHED_ITEM),
            ConsistentRead=True,
            ProjectionExpression="published",
        ).get("Item", {})
        return record.published + int(item.get("published", {}).get("N", "0"))

    def arrivals(self, stream: str, first: int = 0) -> dict[int, dict[str, Any]]:
        """Every arrival with a sequence number of ``first`` or more."""
        return dict(self.each_arrival(stream, first))

    def each_arrival(self, stream: str, first: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every arrival with a sequence number of ``first`` or more, in order, one at a
        time: a reader that keeps only what it needs of each holds a day's arrivals in a
        fraction of the memory (as dicts, 36 h of them take 225 MB)."""
        for item in self._query(stream, _segment_item(first), _segment_item(10**12 - 1)):
            yield int(item["item"]["S"].split("#", 1)[1]), json.loads(item["arrival"]["S"])

    def _query(self, stream: str, low: str, high: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.name,
            KeyConditionExpression="#s = :s AND #i BETWEEN :lo AND :hi",
            ExpressionAttributeNames={"#s": "stream", "#i": "item"},
            ExpressionAttributeValues={":s": {"S": stream}, ":lo": {"S": low}, ":hi": {"S": high}},
            ConsistentRead=True,
        ):
            yield from page.get("Items", [])

    def admit(self, stream: str, sequence: int) -> None:
        """Admit a segment for publishing, before its arrival is stored: ``StreamEndedError``
        if the stream ended before it. The record keeps the highest sequence admitted, and
        ``mark_ended`` ends a stream only at or past it, so a segment is either within the
        recorded end or refused, never published past it unseen, whichever comes first."""
        for _ in range(5):
            try:
                self.client.update_item(
                    TableName=self.name,
                    Key=self._key(stream, STREAM_ITEM),
                    UpdateExpression="SET admitted = :n",
                    ConditionExpression="attribute_exists(#s) "
                    "AND (attribute_not_exists(admitted) OR admitted < :n) "
                    "AND (attribute_not_exists(ending) OR end_last >= :n)",
                    ExpressionAttributeNames={"#s": "stream"},
                    ExpressionAttributeValues={":n": {"N": str(sequence)}},
                )
                return
            except self.client.exceptions.ConditionalCheckFailedException:
                pass
            # (Refused: the stream ended before it, or a higher one was admitted already;
            # or its ending, within which it is, was recorded by a version that kept no
            # end_last: mark_ended records no other.)
            record = self.require(stream)
            record.refuse_past_the_end(sequence)
            if record.ending is not None or (
                record.admitted is not None and record.admitted >= sequence
            ):
                return
        raise TransientError(f"segment {sequence} of {stream}: its admission kept changing")

    def mark_ended(self, stream: str, ending: dict[str, Any]) -> bool:
        """Record the end marker once, at or past every segment admitted for publishing
        (``admit``); False if the stream had one already, or if a segment past the
        ending's last sequence was admitted (the caller looks again)."""
        return self._set_ending(
            stream,
            ending,
            "attribute_exists(#s) AND attribute_not_exists(ending) "
            "AND (attribute_not_exists(admitted) OR admitted <= :n)",
            {"#s": "stream"},
            {},
        )

    def _set_ending(
        self,
        stream: str,
        ending: dict[str, Any],
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        """Write ``ending`` and its last sequence (``end_last``, what ``admit`` reads) if
        ``condition`` holds (``:n`` is the last sequence); whether it did."""
        try:
            self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression="SET ending = :e, end_last = :n",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":e": {"S": json.dumps(ending)},
                    ":n": {"N": str(ending["last_sequence"])},
                    **values,
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def count_change(self, stream: str) -> StreamRecord:
        """Say that something changed which the playlists' writer must look at; returns
        the stream's record as of then (an update returns its item at no extra cost)."""
        try:
            item = self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression="ADD pending :one",
                ConditionExpression="attribute_exists(#s)",
                ExpressionAttributeNames={"#s": "stream"},
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except self.client.exceptions.ConditionalCheckFailedException:
            # A publish for a stream no probe created (invoked out of order): by name,
            # not as DynamoDB's error.
            raise StreamNotReadyError(
                f"stream {stream} has no record in the live table; its probe did not run"
            ) from None
        return _record(item)

    def acquire(
        self, stream: str, owner: str, now: float, lease_seconds: float, *, advancing: bool = False
    ) -> bool:
        """Take the stream's writer lease if nobody holds a live one; ``advancing``: the
        writer advances the stream as of ``now``, which the record keeps (``advanced_to``)."""
        values = {
            ":me": {"S": owner},
            ":until": {"N": repr(now + lease_seconds)},
            ":now": {"N": repr(now)},
        }
        try:
            self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression="SET #o = :me, lease_until = :until"
                + (", advanced_to = :now" if advancing else ""),
                ConditionExpression="attribute_not_exists(#o) OR lease_until < :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def save(self, stream: str, owner: str, state: dict[str, Any] | None, seen: int) -> Saved:
        """Store the playlist state (None: leave it) and release the lease if nothing new
        arrived; an ended state also takes the stream out of the open index.

        Says which of ``Saved``'s outcomes it was.
        """
        names = {"#o": "owner"}
        values: dict[str, Any] = {":me": {"S": owner}}
        sets, removes = [], ["#o", "lease_until"]
        if state is not None:
            names["#st"] = "state"
            values[":state"] = {"B": self._packing(state)}
            sets.append("#st = :state")
        keep_names, keep_values = dict(names), dict(values)
        if state is not None and state.get("ended"):
            names["#open"] = "open"
            removes.append("#open")
        release = (f"SET {', '.join(sets)} " if sets else "") + f"REMOVE {', '.join(removes)}"
        try:
            self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression=release,
                ConditionExpression="#o = :me AND pending = :seen",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":seen": {"N": str(seen)}},
            )
            return Saved.RELEASED
        except self.client.exceptions.ConditionalCheckFailedException:
            pass
        try:
            self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression=f"SET {', '.join(sets)}" if sets else "SET #o = :me",
                ConditionExpression="#o = :me",
                ExpressionAttributeNames=keep_names,
                ExpressionAttributeValues=keep_values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return Saved.LOST
        return Saved.LOOK_AGAIN

    def fits(self, state: dict[str, Any], margin: int | None = None) -> bool:
        """Whether the stream record can hold ``state`` (``save`` would store it) and
        ``margin`` bytes more (``STATE_HEADROOM`` unless given: the entries up to an
        ending recorded when it cannot)."""
        room = MAX_STATE_BYTES - (STATE_HEADROOM if margin is None else margin)
        return len(self._packing(state)) <= room

    def _packing(self, state: dict[str, Any]) -> bytes:
        """``state`` as the record stores it, packed once for ``fits`` and ``save``."""
        if self._fitted is None or self._fitted[0] is not state:
            self._fitted = (state, _packed(state))
        return self._fitted[1]

    def cut_short(self, stream: str, owner: str, ending: dict[str, Any]) -> bool:
        """Record ``ending`` over the stream's ending, holding its lease (see
        ``publish._cut_short``): ``admit`` refuses a segment past it from then on. False
        if the lease ran out."""
        return self._set_ending(stream, ending, "#o = :me", {"#o": "owner"}, {":me": {"S": owner}})

    def release(self, stream: str, owner: str) -> None:
        """Give the lease up without storing anything (the writer failed)."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression="REMOVE #o, lease_until",
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": owner}},
            )

    def mark_stale(self, stream: str) -> None:
        """Say the playlists may be older than the state (``StreamRecord.stale``), and
        open the stream to the sweep again, where it had ended, so that a writer comes."""
        self.client.update_item(
            TableName=self.name,
            Key=self._key(stream, STREAM_ITEM),
            UpdateExpression="SET stale = :token, #open = :yes",
            ExpressionAttributeNames={"#open": "open"},
            ExpressionAttributeValues={":token": {"S": uuid.uuid4().hex}, ":yes": {"S": "1"}},
        )

    def clear_stale(self, stream: str, token: str) -> None:
        """Forget the mark ``token`` (the caller writes the playlists from the state next);
        a mark set since stands, for the next writer."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.name,
                Key=self._key(stream, STREAM_ITEM),
                UpdateExpression="REMOVE stale",
                ConditionExpression="stale = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            )

    def open_streams(self) -> list[str]:
        """Streams not yet closed, from a sparse index: closed streams cost nothing."""
        paginator = self.client.get_paginator("query")
        return [
            item["stream"]["S"]
            for page in paginator.paginate(
                TableName=self.name,
                IndexName=OPEN_INDEX,
                KeyConditionExpression="#open = :yes",
                ExpressionAttributeNames={"#open": "open"},
                ExpressionAttributeValues={":yes": {"S": "1"}},
            )
            for item in page.get("Items", [])
        ]


def upload_of(source: dict[str, Any] | None) -> str:
    """Which upload of a segment an event is about: its version where the bucket keeps
    versions, its ETag either way."""
    pin = Pin.of(source or {})
    return f"{pin.version_id or ''}/{pin.etag or ''}"


def upload_time(source: dict[str, Any], s3: Any) -> Callable[[], float]:
    """When S3 took the upload ``source`` pins (its ``LastModified``, in seconds), read
    when asked: S3's own time for these very bytes. (The event's ``eventTime`` is a
    copy a source record may lack, and a hand-made event carries its maker's.)"""

    def read() -> float:
        head = Bucket(s3, source["bucket"]).head(source["key"], Pin.of(source))
        return float(head["LastModified"].timestamp())

    return read


def upload_etag(upload: str) -> str:
    """The ETag part of what ``upload_of`` says ("" where it named none)."""
    return upload.partition("/")[2]


def replaces(arrival: dict[str, Any], source: dict[str, Any] | None) -> bool:
    """Whether an upload may take the place of a stored arrival: only of a failed one,
    and only as another upload than the one that failed, unless that one is to be tried
    again."""
    return _replaceable(arrival, upload_of(source))


def _uncounted_by(item: dict[str, Any], upload: str) -> bool:
    """Whether a stored arrival item is ``upload``'s and not yet counted as published."""
    return bool(upload) and item.get("uncounted", {}).get("S") == upload


def _replaceable(arrival: dict[str, Any], upload: str) -> bool:
    return bool(arrival.get("failed")) and (
        bool(arrival.get("try_again")) or arrival.get("upload") != upload
    )


def failed_attempt(
    error: str,
    upload: str,
    before: dict[str, Any] | None,
    started: int | None = None,
    execution: str | None = None,
) -> dict[str, Any]:
    """What a failed arrival notes of its attempt: which attempt of this upload it was,
    and whether the upload is to be tried again. The attempt is the one Reconcile
    ``started`` the execution as; else, after a failed arrival ``before`` of the same
    upload, the next, unless ``before`` is this ``execution``'s own (its step run again,
    by Retry): then the same."""
    attempt = 1
    if started is not None:
        attempt = started
    elif before is not None and before.get("failed") and before.get("upload") == upload:
        same_run = execution is not None and before.get("execution") == execution
        attempt = int(before.get("attempt", 1)) + (0 if same_run else 1)
    return {"attempt": attempt, "try_again": error in TRIED_AGAIN and attempt < MAX_ATTEMPTS}


def _record(item: dict[str, Any]) -> StreamRecord:
    return StreamRecord(
        config=json.loads(item["config"]["S"]) if "config" in item else None,
        state=_unpacked(item["state"]) if "state" in item else None,
        ending=json.loads(item["ending"]["S"]) if "ending" in item else None,
        pending=int(item["pending"]["N"]),
        closed="open" not in item,
        lowest_upload=int(item["lowest_upload"]["N"]) if "lowest_upload" in item else None,
        reconciled=int(item["reconciled"]["N"]) if "reconciled" in item else 0,
        published=int(item["published"]["N"]) if "published" in item else 0,
        admitted=int(item["admitted"]["N"]) if "admitted" in item else None,
        advanced_to=float(item["advanced_to"]["N"]) if "advanced_to" in item else None,
        created_at=float(item["created_at"]["N"]) if "created_at" in item else None,
        last_upload=float(item["last_upload"]["N"]) if "last_upload" in item else None,
        stale=item["stale"]["S"] if "stale" in item else None,
    )


# How ``_packed`` stores a state: xz, its durations first as whole microseconds (a
# 32-bit number each, which LZMA2 reads in fours), then the rest as JSON.
_XZ_MAGIC = b"\xfd7zXZ\x00"
_XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "lc": 0, "lp": 2, "pb": 2}]


def _packed(state: dict[str, Any]) -> bytes:
    """The playlist state as the stream record keeps it, compressed. An EVENT stream's
    state lists every segment's duration, and a DynamoDB item holds 400 KB: as text, 24 h
    of 1 s segments took 733 KB; as JSON through zlib, 36 h took 50 KB where an encoder
    cuts a few lengths and 464 KB where every length differs (a variable frame rate);
    as microseconds through xz, 344 KB, whatever the lengths (a playlist shows six
    decimals: nothing it shows is lost)."""
    listed = "durations" in state
    durations = array.array("i", (round(d * 1_000_000) for d in state.get("durations", ())))
    if sys.byteorder == "big":
        durations.byteswap()
    rest = json.dumps(state | {"durations": None} if listed else state, separators=(",", ":"))
    body = len(durations).to_bytes(4, "little") + durations.tobytes() + rest.encode()
    return lzma.compress(body, format=lzma.FORMAT_XZ, filters=_XZ_FILTERS)


def _unpacked(attribute: dict[str, Any]) -> Any:
    """A state as ``_packed`` stores it, or as an older deploy did: JSON through zlib,
    or text."""
    if "S" in attribute:
        return json.loads(attribute["S"])
    if not attribute["B"].startswith(_XZ_MAGIC):
        return json.loads(zlib.decompress(attribute["B"]))
    body = lzma.decompress(attribute["B"])
    count = int.from_bytes(body[:4], "little")
    durations = array.array("i")
    durations.frombytes(body[4 : 4 + 4 * count])
    if sys.byteorder == "big":
        durations.byteswap()
    state = json.loads(body[4 + 4 * count :])
    if "durations" in state:
        state["durations"] = [d / 1_000_000 for d in durations]
    return state
