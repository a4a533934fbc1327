"""LivePublish: record a segment's arrival once and advance the stream's playlists.

Publishing records the segment's arrival (or failure) in the state table, then advances
the stream's playlists under a lease, following the rules of ``workflow.live.rules``;
the scheduled sweep and the END marker advance them too. A stream that ends is
published once more as a VOD asset of the VOD pipeline's shape.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import sys
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from workflow import events, metrics
from workflow.errors import EventError, TransientError
from workflow.failures import FailureRecord
from workflow.formats import hls
from workflow.formats.manifest import build_manifest
from workflow.keys import segments as aes128
from workflow.keys.service import key_service_uri
from workflow.keys.store import KeyStore
from workflow.live import rules
from workflow.live.config import IDLE_SECONDS, StreamSettings
from workflow.live.paths import StreamPaths
from workflow.live.store import (
    Saved,
    Stored,
    StreamRecord,
    StreamTable,
    failed_attempt,
    upload_of,
)
from workflow.names import AUDIO
from workflow.runtime import Clients, event_time
from workflow.settings import Settings
from workflow.shapes import known_fields
from workflow.storage import Bucket, transient_aws_errors

log = logging.getLogger(__name__)

# A writer's lease on a stream's playlists: far longer than writing a few playlists.
LEASE_SECONDS = 60.0
# How long a writer looks again while segments keep coming before it lets go (after the
# look in hand) and leaves them to the next writer (the next segment's publish, or the
# sweep): a long EVENT stream's look takes longer than a 1 s segment (36 h: 1.4
# CPU-seconds of a core), so a writer that looked until nothing came ran until its
# function timed out, its segment failed and the lease held every other writer off for
# a minute, again and again.
WRITER_SECONDS = 10.0
# The state's note of when the stream last showed or received a segment, or had one
# uploaded (the clock's seconds): what ``StreamSettings.idle_seconds`` counts from.
ACTIVE = "active"
# The state's note of how many segments were published (``StreamTable.published``)
# when its recording was made: an ended stream's recording is made again
# when segments were published since, never for failures (a venue pushing on after END).
RECORDED = "recorded"


@transient_aws_errors()
def publish_segment(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Record a segment's arrival (or its failure) once, then advance the playlists.

    A failed segment becomes a gap once what follows it is known (``rules.advance``);
    its error is kept in ``failures/live/<stream>/<sequence>.json``, the segment itself
    stays in ingest.
    """
    stream, sequence = event["stream"], int(event["sequence"])
    if event.get("error") is None and not isinstance(event.get("result"), dict):
        # (a state machine passes one or the other; a hand-made event may pass neither)
        raise EventError("the event has neither an 'error' nor a 'result' of the segment's encode")
    table = StreamTable(clients.dynamodb, settings.live_table)
    failure = None
    if event.get("error") is not None:
        failure = FailureRecord.of(
            {"stream": stream, "sequence": sequence}, event["error"], event.get("source"), clients
        )
        table.create(stream)
        upload = upload_of(event.get("source"))
        before = table.arrival(stream, sequence)
        source = event.get("source") or {}
        started, execution = source.get("attempt"), source.get("execution")
        attempt = failed_attempt(
            failure.error, upload, before, None if started is None else int(started), execution
        )
        if before is None or before.get("failed") or failure.error == "SegmentReusedError":
            # Which attempt failed, and whether Reconcile starts the upload again: an
            # operator tells a gap that may yet be filled from one that stays (out of
            # memory, a bad file). A segment published already keeps no record of a
            # failed upload of it (its event delivered again after it was mended), only
            # of other bytes sent under its number.
            Bucket(clients.s3, settings.output_bucket).put_json(
                StreamPaths(stream).failure_key(sequence), {**failure.to_dict(), **attempt}
            )
        arrival = {
            "duration": None,
            "at": clients.clock(),
            "failed": True,
            "error": failure.error,
            "upload": upload,
            **attempt,
            **({"execution": execution} if execution else {}),
        }
    else:
        result, probed = event["result"], event.get("segment") or {}
        uploaded = event_time((event.get("source") or {}).get("uploaded_at"))
        arrival = {
            "duration": result["duration"],
            "at": clients.clock(),
            "failed": False,
            "bytes": result["bytes"],
            "upload": upload_of(event.get("source")),
            # When S3 took the upload: where the segment's latency counts from.
            **({"uploaded": uploaded.timestamp()} if uploaded is not None else {}),
            # Where the probe found it on the source's clock, and its form: what decides
            # whether it continues the segment before (absent from an older job's probe).
            **{k: v for k, v in probed.items() if k in ("start", "end", "form") and v is not None},
        }
    # Another upload's segment under this number (a restarted encoder counting from 0
    # again) says nothing against the number's own segment: it is no arrival of it.
    reused = failure is not None and failure.error == "SegmentReusedError"
    if failure is None:
        # Encoded while the end marker landed below it: shown nowhere, so it fails by
        # name (the failure path records why) rather than succeed unseen.
        table.admit(stream, sequence)
    stored = Stored(False) if reused else table.store_arrival(stream, sequence, arrival)
    new, replaced = stored.new, stored.replaced
    # A run that stored the arrival and was cut off (its timeout) or failed (the stream
    # record throttled) before counting it finds it stored when run again, or when its
    # failure is recorded (Publish's Catch, its retries run out): it counts it then, and
    # clears a failure record it may have replaced, or the segment would stay out of an
    # ended stream's recording for good. Counting notes it counted in the same write, so
    # two runs of one upload at once (its event delivered twice) that both find it
    # uncounted count it once: the other is a duplicate (for an ended stream, else its
    # recording is made and announced again).
    again = not new and stored.uncounted
    published = again or (new and failure is None)
    counted = published and table.count_published(stream, sequence, arrival["upload"])
    if counted and (again or replaced is not None):
        _clear_failure(stream, sequence, settings, clients)
    record = table.count_change(stream)
    new = counted or (new and not published)
    metrics.about(stream=stream, sequence=sequence)
    if not new:
        metrics.count(metrics.LIVE_DUPLICATE_SEGMENTS)
    elif _already_passed(record, sequence):
        metrics.count(metrics.LIVE_LATE_SEGMENTS)
    outcome = advance_stream(stream, settings, clients)
    if failure is not None:
        cause = f"segment {sequence}: {failure.cause}"
        return {"stream": stream, "sequence": sequence, "error": failure.error, "cause": cause,
                **outcome}  # fmt: skip
    return {"stream": stream, "sequence": sequence, "duplicate": not new, **outcome}


def _clear_failure(stream: str, sequence: int, settings: Settings, clients: Clients) -> None:
    """Delete the failure record of a segment published in a failed upload's place (tried
    again, or mended): it no longer says what became of the segment. After the arrival
    is counted, and never failing the publish: a retry would find the arrival stored and
    count it no more (nor make the recording again, for a stream already ended)."""
    try:
        Bucket(clients.s3, settings.output_bucket).delete_keys(
            [StreamPaths(stream).failure_key(sequence)]
        )
    except (BotoCoreError, ClientError, TransientError) as exc:
        log.warning("segment %d of %s: its failure record stays: %s", sequence, stream, exc)


def _already_passed(record: StreamRecord, sequence: int) -> bool:
    """Whether the playlists went past ``sequence`` before it came (shown as a gap)."""
    if not record.state:
        return False
    shown = rules.LivePlaylist.from_dict(record.state).next_sequence
    return shown is not None and sequence < shown


def advance_stream(
    stream: str, settings: Settings, clients: Clients, now: float | None = None
) -> dict[str, Any]:
    """Advance the stream's playlists as of ``now`` (the clock's time if None), if no
    other writer is doing it right now.

    Holding the lease, look at the arrivals, write the playlists, store the state;
    look again while arrivals keep coming. Whoever is refused the lease can leave:
    the holder sees the refused writer's arrival before it lets go, unless it has looked
    for ``WRITER_SECONDS`` (the next writer, at the latest the sweep, sees it). A writer
    that fails (S3 or DynamoDB trouble) gives the lease up at once, and its retry looks
    again.
    """
    table = StreamTable(clients.dynamodb, settings.live_table)
    owner = uuid.uuid4().hex
    started = clients.clock()
    while True:
        # The lease runs on the clock, whatever time the playlists are advanced to.
        at = clients.clock()
        if at - started >= WRITER_SECONDS:
            table.release(stream, owner)
            return {"writer": True, "behind": True, "ended": False}
        if not table.acquire(stream, owner, at, LEASE_SECONDS, advancing=now is None):
            return {"writer": False}
        try:
            outcome = _advance_once(
                stream, table, settings, clients, owner, at if now is None else now
            )
        except BaseException:
            table.release(stream, owner)
            raise
        if outcome is not None:
            return outcome


def _advance_once(
    stream: str,
    table: StreamTable,
    settings: Settings,
    clients: Clients,
    owner: str,
    now: float,
) -> dict[str, Any] | None:
    """One look at the stream, holding its lease; None if the writer must look again."""
    record = table.require(stream)
    if record.advanced_to is not None and record.advanced_to > now:
        # A sweep due before a publisher's look: that publisher may have written its
        # playlists and died before it stored them; advanced as of an earlier time, they
        # would shrink (fewer gaps due). Never as of before a publisher's look, then.
        now = record.advanced_to
    ending = rules.Ending(**known_fields(rules.Ending, record.ending)) if record.ending else None
    if record.config is None:
        # No segment of the stream has been probed yet: nothing to show yet.
        state = record.state
        stored = table.arrivals(stream)
        if (ending is None and _idle_unset(stream, table, stored, record, now)) or (
            ending is not None and _unplayable(stored, ending, record.lowest_upload, now)
        ):
            state = rules.LivePlaylist(first_sequence=0, ended=True).to_dict()
            # Nothing was ever playable: it ends with no recording, its failures counted.
            failed = sum(a["failed"] for a in stored.values())
            ended = events.live_stream_ended(stream, 0, failed, 0.0, {}, clients.utc_now())
            output = Bucket(clients.s3, settings.output_bucket)
            events.announce(ended, settings.event_bus, output, clients)
        if table.save(stream, owner, state, record.pending) is Saved.LOOK_AGAIN:
            return None
        return {"writer": True, "ended": bool(state and state["ended"])}
    config = StreamSettings.from_dict(record.config)
    before = (
        rules.LivePlaylist.from_dict(record.state)
        if record.state
        else rules.LivePlaylist(first_sequence=config.first_sequence)
    )
    if before.ended:
        return _refresh_recording(stream, table, record, config, before, settings, clients, owner)
    stored = table.arrivals(stream, before.next_sequence or 0)
    arrivals = _arrivals(stored)
    noted = [] if record.last_upload is None else [record.last_upload]
    active = max(
        [(record.state or {}).get(ACTIVE, now), *noted, *(a.at for a in arrivals.values())]
    )
    if ending is None and _idle(
        stream, table, config, before, arrivals, active, record.admitted, now
    ):
        return None  # ended: look again, with the ending
    # Every entry this change adds (an outage longer than the window, too: its events and
    # latencies), then the window the playlists show.
    grown = rules.advance(
        before,
        arrivals,
        now=now,
        gap_after=config.gap_seconds,
        window=0,
        nominal_duration=config.segment_seconds,
        ending=ending,
        lowest_upload=record.lowest_upload,
    )
    after = rules.windowed(grown, config.window, config.segment_seconds)
    if ending is not None and _beyond_reach(after, arrivals, ending, now, config.gap_seconds):
        # An ending the playlists can never reach (a stray 123456789.ts published before
        # they began, which END and the idle timeout end at): the stream ends at what it
        # shows rather than stay open for good.
        why = f"its end, segment {ending.last_sequence}, is past any its playlists can reach"
        _cut_short(stream, table, owner, after, now, why)
        return None
    # A sweep advances as of its schedule, which may be before the arrivals it shows: the
    # stream's last activity never goes back (else it ends idle that much early).
    state = after.to_dict() | {ACTIVE: max(now, active) if after != before else active}
    state |= {RECORDED: table.published(stream, record)} if after.ended else {}
    if after.next_sequence != before.next_sequence and not table.fits(state):
        if ending is None:
            _outgrown(stream, table, before, arrivals, record.admitted, now)
            return None  # ended: look again
        if not table.fits(state, margin=0):
            # An ending too far past the state's room (an encoder's backlog of hours, then
            # END): the stream ends at what it shows rather than stall for good.
            _cut_short(stream, table, owner, before, now)
            return None
    recording: dict[str, Any] | None = None
    stale = record.stale
    wrote = after != before or stale is not None
    if wrote:
        if stale is not None:
            table.clear_stale(stream, stale)  # written again from the state next
        output = Bucket(clients.s3, settings.output_bucket)
        key_uri = _key_uri(stream, config, settings)
        _write_live_playlists(
            output,
            StreamPaths(stream),
            config,
            after,
            master=not before.entries or stale is not None,
            key_uri=key_uri,
        )
        recording = (
            publish_recording(
                stream, table, output, config, after, settings, clients, key_uri=key_uri
            )
            if after.ended
            else None
        )
        # Announced before the state is saved: a writer that dies in between leaves the
        # same change for the next one, whose announcements the markers make no-ops.
        found = _outcomes(stream, before, grown, arrivals, recording, output, settings, clients)
        for outcome in found:
            if outcome.detail_type == events.LIVE_STREAM_GAP:
                metrics.count(metrics.LIVE_GAPS, _announce_gaps(outcome, settings, output, clients))
            else:
                events.announce(outcome, settings.event_bus, output, clients)
        _measure_latency(before, grown, stored, clients.clock())
    # Nothing changed (a sweep of a stream with nothing new): the record keeps its state,
    # rather than have it packed and written again (at 36 h of 1 s segments, 343 KB,
    # that many write units, a minute for each open stream).
    kept = after == before and record.state is not None and record.state.get(ACTIVE) == active
    if _saved(table, stream, owner, None if kept else state, record.pending, wrote=wrote):
        return {"writer": True, "next_sequence": after.next_sequence, "ended": after.ended}
    return None


def _saved(
    table: StreamTable,
    stream: str,
    owner: str,
    state: dict[str, Any] | None,
    seen: int,
    *,
    wrote: bool,
) -> bool:
    """Save the writer's state (``StreamTable.save``); False where it must look again.

    A writer that ``wrote`` playlists and finds its lease gone was slower than the
    lease (an S3 write stalled and retried): the next writer may have written newer
    playlists before its own landed, which would then show less than the state, for
    good once the stream has ended. It marks them stale, and looks again: it, or the
    writer holding the lease, writes them again from the state."""
    saved = table.save(stream, owner, state, seen)
    if saved is Saved.LOST and wrote:
        log.warning("stream %s: the lease ran out as its playlists were written", stream)
        table.mark_stale(stream)
        return False
    return saved is not Saved.LOOK_AGAIN


def _outgrown(
    stream: str,
    table: StreamTable,
    shown: rules.LivePlaylist,
    arrivals: dict[int, rules.Arrival],
    admitted: int | None,
    now: float,
) -> None:
    """End a stream whose playlist state is about to outgrow its record (one DynamoDB
    item) at the last segment it has, as its end marker would: the playlists close, the
    recording is made, and a later segment fails with ``StreamEndedError``, where a save
    would fail with DynamoDB's ValidationException on every segment and sweep for good."""
    last = _last_known(shown, arrivals, admitted, shown.first_sequence)
    for _ in range(5):
        if table.mark_ended(stream, {"last_sequence": last, "at": now}):
            log.error(
                "stream %s: %d entries are nearly as many as its record holds: ended at "
                "segment %d (a longer broadcast needs a new stream name, or fewer, longer "
                "segments)", stream, len(shown.entries), last,
            )  # fmt: skip
            return
        # Refused: a segment was admitted as the writer looked (a look at a state this
        # big outlasts a 1 s segment), or an ending was recorded meanwhile.
        record = table.require(stream)
        if record.ending is not None or record.admitted is None or record.admitted <= last:
            return
        last = record.admitted


def _beyond_reach(
    shown: rules.LivePlaylist,
    arrivals: dict[int, rules.Arrival],
    ending: rules.Ending,
    now: float,
    gap_after: float,
) -> bool:
    """Whether a stream's ending lies past every number its playlists can reach from the
    one they wait for (``rules.MAX_SKIPPED`` on), with nothing arrived within that reach
    ``gap_after`` since the ending: they would wait for it for good."""
    waiting = shown.next_sequence
    if shown.ended or waiting is None:
        return False
    reach = waiting + rules.MAX_SKIPPED
    return (
        ending.last_sequence > reach
        and now - ending.at >= gap_after
        and not any(waiting <= s <= reach for s in arrivals)
    )


def _cut_short(
    stream: str,
    table: StreamTable,
    owner: str,
    shown: rules.LivePlaylist,
    now: float,
    why: str = "its end is further than its record can hold",
) -> None:
    """End a stream whose ending lies further past its shown entries than its record can
    hold at the last entry it shows, lowering the ending: segments published past it are
    in neither its playlists nor its recording (logged as an error), where every later
    save would fail with DynamoDB's ValidationException and the stream never close."""
    last = _last_known(shown, {}, None, shown.first_sequence)
    if table.cut_short(stream, owner, {"last_sequence": last, "at": now}):
        log.error(
            "stream %s: %s: ended at segment %d, the last it shows; any segment published "
            "past it is in no playlist", stream, why, last,
        )  # fmt: skip


def _last_known(
    shown: rules.LivePlaylist,
    arrivals: dict[int, rules.Arrival],
    admitted: int | None,
    first: int | None,
) -> int:
    """The last segment a stream has: shown, arrived, or admitted for publishing (its
    arrival on its way); the one before ``first`` where it has none."""
    known = [*(e.sequence for e in shown.entries), *arrivals]
    return max([*known, *([] if admitted is None else [admitted])], default=(first or 0) - 1)


def _idle(
    stream: str,
    table: StreamTable,
    config: StreamSettings,
    shown: rules.LivePlaylist,
    arrivals: dict[int, rules.Arrival],
    active: float,
    admitted: int | None,
    now: float,
) -> bool:
    """End a stream that has had no new segment for its ``idle_seconds`` as its end marker
    would, at the last segment it has (or is publishing: ``admitted``): its encoder died,
    or lost its uplink for good, without sending END. Whether it ended (or the writer
    must look again: a segment came as it looked)."""
    if not config.idle_seconds or now - active < config.idle_seconds:
        return False
    first = shown.first_sequence if shown.first_sequence is not None else config.first_sequence
    last = _last_known(shown, arrivals, admitted, first)
    if table.mark_ended(stream, {"last_sequence": last, "at": now}):
        log.warning(
            "stream %s: no new segment for %.0f s (idle_seconds %g): ended at segment %d",
            stream, now - active, config.idle_seconds, last,
        )  # fmt: skip
    return True


def _refresh_recording(
    stream: str,
    table: StreamTable,
    record: StreamRecord,
    config: StreamSettings,
    ended: rules.LivePlaylist,
    settings: Settings,
    clients: Clients,
    owner: str,
) -> dict[str, Any] | None:
    """An ended stream's recording made again if segments were published since it was
    made: one that came after its gap was shown live, or that Reconcile started after its
    event was lost, is in the recording, as the live playlists (closed for good) cannot
    show it. A failure (a venue pushing on after END) changes nothing."""
    assert record.state is not None
    published = table.published(stream, record)
    output = Bucket(clients.s3, settings.output_bucket)
    key_uri = _key_uri(stream, config, settings)
    more, stale = record.state.get(RECORDED) != published, record.stale
    wrote = more or stale is not None
    if stale is not None:
        # Closed playlists a stale writer may have written over: written again, and the
        # recording (with the live master it rewrites) made again.
        table.clear_stale(stream, stale)
        _write_live_playlists(output, StreamPaths(stream), config, ended, master=False,
                              key_uri=key_uri)  # fmt: skip
    if wrote:
        recording = publish_recording(
            stream, table, output, config, ended, settings, clients, key_uri=key_uri
        )
        if recording is not None and more:
            # Subscribers told the end's counts and URLs (none, where nothing was
            # playable) learn the recording's new ones: an outcome of its own.
            remade = _recording_ended(
                stream, recording, output, settings, clients.utc_now(), published
            )
            events.announce(remade, settings.event_bus, output, clients)
    state = record.state | {RECORDED: published}
    if _saved(table, stream, owner, state, record.pending, wrote=wrote):
        return {"writer": True, "next_sequence": ended.next_sequence, "ended": True}
    return None


def _measure_latency(
    before: rules.LivePlaylist,
    after: rules.LivePlaylist,
    stored: dict[int, dict[str, Any]],
    now: float,
) -> None:
    """Each segment this change put in every rung's playlist: seconds since its upload."""
    shown = before.next_sequence
    for entry in after.entries:
        arrival = stored.get(entry.sequence) or {}
        if (shown is None or entry.sequence >= shown) and not entry.gap and "uploaded" in arrival:
            metrics.seconds(metrics.LIVE_SEGMENT_LATENCY, max(now - arrival["uploaded"], 0.0))


def _outcomes(
    stream: str,
    before: rules.LivePlaylist,
    after: rules.LivePlaylist,
    arrivals: dict[int, rules.Arrival],
    recording: dict[str, Any] | None,
    output: Bucket,
    settings: Settings,
    clients: Clients,
) -> list[events.Outcome]:
    """The events a change of the playlists makes: the first entry starts the stream,
    each new gap is one, and the end marker's last entry ends it."""
    paths, at = StreamPaths(stream), clients.utc_now()
    shown_before = before.next_sequence
    new = [e for e in after.entries if shown_before is None or e.sequence >= shown_before]
    found: list[events.Outcome] = []
    if not before.entries and after.entries:
        url = events.object_url(output.name, paths.live_master_key, settings.playback_base_url)
        found.append(events.live_stream_started(stream, after.entries[0].sequence, url, at))
    for (gap, reason), run in itertools.groupby(new, lambda e: _gap_reason(e, arrivals)):
        if gap:
            sequences = [e.sequence for e in run]
            found.append(events.live_stream_gap(stream, sequences[0], sequences[-1], reason, at))
    if after.ended and recording is None:
        # Nothing was playable: it ends with no recording, its gaps counted.
        found.append(events.live_stream_ended(stream, 0, after.gaps, 0.0, {}, at))
    elif recording is not None:
        found.append(_recording_ended(stream, recording, output, settings, at))
    return found


def _recording_ended(
    stream: str,
    recording: dict[str, Any],
    output: Bucket,
    settings: Settings,
    at: str,
    published: int | None = None,
) -> events.Outcome:
    """``Live Stream Ended`` for a stream's recording (made again: ``published``)."""
    paths, source = StreamPaths(stream), recording["source"]
    urls = {
        name: events.object_url(output.name, key, settings.playback_base_url)
        for name, key in (("master", paths.master_key), ("manifest", paths.manifest_key))
    }
    segments = source["last_sequence"] - source["first_sequence"] + 1 - source["gaps"]
    return events.live_stream_ended(
        stream, segments, source["gaps"], source["duration"], urls, at, published
    )


def _announce_gaps(
    run: events.Outcome, settings: Settings, output: Bucket, clients: Clients
) -> int:
    """Announce a run of gaps; how many gaps were announced now. A writer that died after
    announcing part of it (its marker names where that part ended) leaves the next one
    to announce the rest, as a run of its own: never a gap twice."""
    first, last = int(run.detail["sequence"]), int(run.detail["last_sequence"])
    if not settings.event_bus:
        return 0
    while first <= last:
        outcome = events.live_stream_gap(
            run.detail["stream"], first, last, run.detail["reason"], run.detail["at"]
        )
        if events.announce(outcome, settings.event_bus, output, clients):
            return last - first + 1
        told = output.get_json(outcome.marker_key)
        first = int(told.get("last_sequence", first)) + 1
    return 0


def _gap_reason(entry: rules.Entry, arrivals: dict[int, rules.Arrival]) -> tuple[bool, str]:
    """Whether an entry is a gap, and why: its segment ``failed``, or was ``missing``.
    One event tells each run of gaps alike: an outage of an hour is one, not thousands
    that would outlast the function putting them."""
    arrival = arrivals.get(entry.sequence)
    return entry.gap, "failed" if arrival is not None and arrival.failed else "missing"


def live_timeline(
    stream: str, table: StreamTable, record: StreamRecord, config: StreamSettings, now: float
) -> tuple[rules.LivePlaylist, dict[int, dict[str, Any]]]:
    """Every segment and gap the stream has shown (or would show as of ``now``), from its
    first, whatever window its playlists slide: the timeline a clip's times count on; and
    the stored arrivals it was built from."""
    first = rules.LivePlaylist.from_dict(record.state).first_sequence if record.state else None
    if first is None:
        return rules.LivePlaylist(), {}
    stored = table.arrivals(stream, first)
    timeline = rules.advance(
        rules.LivePlaylist(first_sequence=first),
        _arrivals(stored),
        now=now,
        gap_after=config.gap_seconds,
        window=0,
        nominal_duration=config.segment_seconds,
        ending=rules.Ending(**known_fields(rules.Ending, record.ending)) if record.ending else None,
        lowest_upload=record.lowest_upload,
    )
    return timeline, stored


def _recorded(
    stream: str, table: StreamTable, config: StreamSettings, first: int, last: int
) -> tuple[rules.LivePlaylist, dict[int, tuple[int, ...]]]:
    """An ended stream's every sequence from ``first`` to ``last`` as its recording shows
    it, and each published segment's bytes in each rung (``config.rungs``' order).

    The arrivals are read one at a time and only what the recording needs of each is
    kept: held as stored, 36 h of 1 s segments took 225 MB, and the recording 471 MB of
    its writer's 512 (out of memory on every retry: a long broadcast with no recording).
    """
    arrivals: dict[int, rules.Arrival] = {}
    sizes: dict[int, tuple[int, ...]] = {}
    for sequence, stored in table.each_arrival(stream, first):
        if stored.get("error") == "SequenceJumpError":
            continue  # (see ``_arrivals``)
        arrivals[sequence] = _arrival(stored)
        if not stored["failed"]:
            sizes[sequence] = tuple(stored["bytes"][name] for name in config.rungs)
    recording = rules.advance(
        rules.LivePlaylist(first_sequence=first),
        arrivals,
        now=math.inf,
        gap_after=0.0,
        window=0,
        nominal_duration=config.segment_seconds,
        ending=rules.Ending(last, -math.inf),
    )
    return recording, sizes


def _arrivals(stored: dict[int, dict[str, Any]]) -> dict[int, rules.Arrival]:
    """Stored arrivals as the playlist rules read them. An upload refused for a number
    past the stream's reach (``SequenceJumpError``: a broken counter, or a backlog's
    segment that overtook the rest) is none: its number is not where the stream is, so it
    neither makes the numbers before it waited for (the whole reach a gap) nor stands
    for its own (the venue's segment of that number may still come, or Reconcile's
    retry of the refused upload, if the stream got within reach before its retries ran
    out)."""
    return {
        sequence: _arrival(a)
        for sequence, a in stored.items()
        if a.get("error") != "SequenceJumpError"
    }


def _arrival(stored: dict[str, Any]) -> rules.Arrival:
    """A stored arrival as the playlist rules read it; its form's text is one object for
    every segment of that form (a stream has few), not one for each."""
    form = stored.get("form")
    return rules.Arrival(
        stored["duration"],
        stored["at"],
        stored["failed"],
        start=stored.get("start"),
        end=stored.get("end"),
        form=None if form is None else sys.intern(form),
    )


def _unplayable(
    arrivals: dict[int, dict[str, Any]],
    ending: rules.Ending,
    lowest_upload: int | None,
    now: float,
) -> bool:
    """Whether an ended stream without settings can be closed empty: nothing was
    uploaded, or every segment up to the last failed, or nothing has come for the
    default ``idle_seconds`` since the marker (one naming segments never uploaded). A
    segment still on its way will either set the stream up or fail, so the stream
    waits for it, but not for good."""
    heard = max([ending.at, *(a["at"] for a in arrivals.values())])
    if ending.last_sequence < 0 or now - heard >= IDLE_SECONDS:
        return True
    first = min([*arrivals, *([] if lowest_upload is None else [lowest_upload])], default=0)
    return all(
        s in arrivals and arrivals[s]["failed"] for s in range(first, ending.last_sequence + 1)
    )


def _idle_unset(
    stream: str,
    table: StreamTable,
    arrivals: dict[int, dict[str, Any]],
    record: StreamRecord,
    now: float,
) -> bool:
    """End a stream that never had settings (each of its uploads failed before one could
    fix them: a stray file, a venue that gave up; or came to nothing, deleted before it
    was read) once nothing has come for the default ``idle_seconds`` since its last
    arrival, or since its record was made where it has none, as one with settings would
    be: else it stays open, and swept, for good. Whether it did (not if a segment came as
    the writer looked)."""
    since = max((a["at"] for a in arrivals.values()), default=record.created_at)
    if since is None or now - since < IDLE_SECONDS:
        return False
    last = max(arrivals, default=(record.lowest_upload or 0) - 1)
    if not table.mark_ended(stream, {"last_sequence": last, "at": now}):
        return False
    log.warning(
        "stream %s: nothing playable, and no new segment for %.0f s: ended at segment %d",
        stream, IDLE_SECONDS, last,
    )  # fmt: skip
    return True


def _nominal_variants(config: StreamSettings) -> list[hls.VariantEntry]:
    """The live master's lines: nothing is measured yet, so each rung's target rates."""
    audio = config.audio_kbps if config.has_audio else 0
    return [
        hls.VariantEntry(
            uri=f"{rung.name}/live.m3u8",
            bandwidth=(rung.maxrate_kbps + audio) * 1000,
            average_bandwidth=(rung.kbps + audio) * 1000,
            width=rung.width,
            height=rung.height,
            frame_rate=config.frame_rate,
            codecs=rung.codecs + (",mp4a.40.2" if config.has_audio else ""),
        )
        for rung in config.renditions
    ]


def _audio_entry(config: StreamSettings, playlist_name: str) -> hls.AudioEntry | None:
    if not config.has_audio:
        return None
    return hls.AudioEntry(uri=f"{AUDIO}/{playlist_name}", group=hls.AUDIO_GROUP, channels=2)


def _key_uri(stream: str, config: StreamSettings, settings: Settings) -> str | None:
    """Where players fetch an encrypted stream's key (a rotating one's period keys are
    under it, ``<key uri>/<period>``); None for a clear stream."""
    if config.encryption == "none":
        return None
    return key_service_uri(settings.key_service_url, StreamPaths(stream).asset)


def _rung_texts(
    playlist: rules.LivePlaylist,
    config: StreamSettings,
    key_uri: str | None,
    **rendering: Any,
) -> dict[str, bytes]:
    """Each rung's playlist text: one text for all where the stream is clear, else each
    segment under its own IV (``<rung>/<segment>``'s) and its period's key."""
    if key_uri is None:
        text = rules.render(playlist, **rendering).encode()
        return dict.fromkeys(config.rungs, text)
    return {
        name: rules.render(playlist, key=_segment_keys(key_uri, name, config), **rendering).encode()
        for name in config.rungs
    }


def _segment_keys(key_uri: str, rung: str, config: StreamSettings) -> Callable[[rules.Entry], str]:
    """The ``EXT-X-KEY`` tag of each of a rung's segments."""

    def line(entry: rules.Entry) -> str:
        period = config.key_period(entry.sequence)
        uri = key_uri if period is None else f"{key_uri}/{period}"
        return aes128.segment_key_line(uri, f"{rung}/{entry.uri}")

    return line


def _write_live_playlists(
    output: Bucket,
    paths: StreamPaths,
    config: StreamSettings,
    playlist: rules.LivePlaylist,
    *,
    master: bool,
    key_uri: str | None = None,
) -> None:
    """Every rung's live playlist (one text where the stream is clear: every rung has
    the same segments), then the live master the first time there is anything to play."""
    texts = _rung_texts(
        playlist,
        config,
        key_uri,
        target_duration=config.segment_seconds,
        window=config.window,
    )
    output.put_all({paths.live_playlist_key(name): texts[name] for name in config.rungs})
    if master:
        body = hls.master_playlist(
            _nominal_variants(config),
            _audio_entry(config, "live.m3u8"),
            captions=config.captions,
        )
        output.put_bytes(paths.live_master_key, body.encode())


def publish_recording(
    stream: str,
    table: StreamTable,
    output: Bucket,
    config: StreamSettings,
    ended: rules.LivePlaylist,
    settings: Settings,
    clients: Clients,
    *,
    key_uri: str | None = None,
) -> dict[str, Any] | None:
    """The whole stream as a VOD asset of the VOD pipeline's shape, master written last;
    returns its manifest. A stream none of whose segments was playable (every one
    failed, or never came) has none: None.

    Every sequence from the first to the last is in it: a segment that came after its
    gap was shown live is in the recording; one that never came stays a gap. It keeps
    the live playlists' discontinuities (the same rules, over every arrival): its
    segments are the live ones, so each run keeps its own timestamps, and players
    (hls.js, Safari, ffmpeg) join runs at the tags as they did live.
    """
    paths = StreamPaths(stream)
    first = ended.first_sequence or 0
    last = ended.entries[-1].sequence if ended.entries else first - 1
    recording, sizes = _recorded(stream, table, config, first, last)
    entries = recording.entries
    if all(e.gap for e in entries):
        return None  # nothing was playable: no recording
    texts = _rung_texts(
        recording,
        config,
        key_uri,
        target_duration=config.segment_seconds,
        window=0,
        vod=True,
    )
    shown = [e for e in entries if not e.gap]
    uris = [e.uri for e in shown]  # (one name per segment, whichever rung lists it)
    playlists = {
        name: [
            hls.SegmentEntry(uri, e.duration, sizes[e.sequence][rung])
            for uri, e in zip(uris, shown, strict=True)
        ]
        for rung, name in enumerate(config.rungs)
    }
    del sizes, shown, uris
    output.put_all({f"{paths.prefix}{name}/index.m3u8": texts[name] for name in playlists})
    variants = hls.measured_variants(config.renditions, playlists, config.frame_rate)
    audio = _audio_entry(config, "index.m3u8")
    manifest = build_manifest(
        job_id=f"live-{stream}",
        source={
            "stream": stream,
            "first_sequence": first,
            "last_sequence": last,
            "gaps": sum(e.gap for e in entries),
            "duration": round(sum(e.duration for e in entries), 6),
            "frame_rate": config.frame_rate,
        },
        segment_seconds=config.segment_seconds,
        chunks=len(entries),
        audio_kbps=config.audio_kbps,
        renditions=list(zip(config.renditions, variants, strict=True)),
        playlists=playlists,
        audio=audio,
        timings={},
        encryption=None
        if key_uri is None
        else {
            "method": config.encryption,
            "key_id": KeyStore.of(settings, clients).key_id(paths.asset),
            "key_uri": key_uri,
            **({"key_rotation_segments": config.key_rotation} if config.key_rotation else {}),
        },
    )
    output.put_json(paths.manifest_key, manifest)
    # The live master declared each rung's target rates, before anything was measured;
    # now that every segment exists it declares what they measure, as RFC 8216 4.3.4.2
    # asks (the MPEG-TS overhead and the VBV's overshoot put them 6-14 % above).
    measured = [
        dataclasses.replace(v, uri=f"{rung.name}/live.m3u8")
        for rung, v in zip(config.renditions, variants, strict=True)
    ]
    live = hls.master_playlist(
        measured, _audio_entry(config, "live.m3u8"), captions=config.captions
    )
    output.put_bytes(paths.live_master_key, live.encode())
    master = hls.master_playlist(variants, audio, captions=config.captions)
    output.put_bytes(paths.master_key, master.encode())
    return manifest
