"""Live media playlists that never lie: the pure rules, whatever stores the state.

A stream's playlists show a segment only once it and every earlier sequence number are
published (every rung is encoded by one job, so one state serves all rungs). Segments
finish out of order and S3 delivers events twice, so the state is "how far the
playlist has advanced" and the arrivals are "what has been published"; ``advance``
moves the playlist over every contiguous arrival, and turns a sequence number still
missing ``gap_after`` seconds after a later one arrived (or after the stream ended; one
still encoding then, as long as its job may run) into an ``EXT-X-GAP`` entry, so one
lost segment cannot stall the stream. A segment known to be uploaded is shown or marked
a gap, never skipped: the stream does not start above it.

A venue's encoder restarts (its timestamps start again), changes its settings or loses
its uplink; a segment whose timestamps do not continue the last one shown (gaps
counted), or whose form differs (codec, picture size, frame rate, audio layout), starts a
new discontinuity run: ``EXT-X-DISCONTINUITY`` before it, decided per sequence number in
sequence order, so however segments arrive the same ones carry the tag.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from workflow.formats import hls
from workflow.names import segment_name
from workflow.shapes import known_fields

# How far after where the last one shown ended (plus any gaps between) a segment's first
# timestamp may be before its timestamps count as not continuing them: more than a
# segment's audio/video skew, less than any restart or outage.
JUMP_TOLERANCE = 0.5
# How far before where the last one shown ended a segment may start and still continue
# it: a frame's rounding, or a variable frame rate's guess at the last frame's length.
# A clock that steps back further lays the segment's frames over the last one's end: a
# player taking it as continuous never shows those frames (the buffer keeps the newer)
# and runs that much behind the playlist's time from there on, so it starts a run.
STEP_BACK_TOLERANCE = 0.1
# The most sequence numbers a later arrival or the end marker turns into gaps past the
# last entry: an hour of 1 s segments lost. A number further ahead is a broken counter,
# not an outage: it is never waited for (nor shown), so it cannot make a playlist of a
# billion gaps, and the segments that continue the stream go on being shown.
MAX_SKIPPED = 3600
# How long a segment's job may still publish it after it was uploaded: an Express
# execution lives at most five minutes (``store.CLAIM_SECONDS``).
IN_FLIGHT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Arrival:
    """One segment published in every rung (or failed for good): duration and when, and
    (when the probe said) its first and last instants on the source's clock and its form."""

    duration: float | None  # None: not known (a failed segment's)
    at: float
    failed: bool = False
    start: float | None = None
    end: float | None = None
    form: str | None = None


@dataclass(frozen=True)
class Anchor:
    """Where the last segment shown ended on the source's clock, its form, and the
    seconds of gaps shown since: what the next segment must continue; and its length,
    what a gap with nothing to measure it by is shown as (once a window slides past it)."""

    end: float
    form: str | None
    gap: float = 0.0
    length: float | None = None

    def continued_by(self, arrival: Arrival) -> bool:
        if arrival.start is None:
            return True
        if arrival.form is not None and self.form is not None and arrival.form != self.form:
            return False
        return -STEP_BACK_TOLERANCE <= arrival.start - (self.end + self.gap) <= JUMP_TOLERANCE


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the playlist: a segment, or a gap where one never came."""

    sequence: int
    duration: float
    gap: bool = False
    discontinuity: bool = False

    @property
    def uri(self) -> str:
        return segment_name(self.sequence)


@dataclass(frozen=True)
class Ending:
    """The stream's end marker: its last sequence number and when the marker came, and
    the numbers uploaded before it that were on their way then (neither published nor
    failed: their jobs were running), as ``[first, last]`` ranges.

    A number still missing ``gap_after`` after the marker (or after a later one arrived)
    is a gap, unless it was on its way: then only the longest an execution lives
    (``IN_FLIGHT_SECONDS``) after the marker gives it up, for a stream that has ended
    loses no live edge by waiting, and would otherwise close on a gap where every
    segment was uploaded, only slower to encode (a cold start, a throttled account)
    than ``gap_after``."""

    last_sequence: int
    at: float
    on_its_way: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        # (Read back from the stream record's JSON as lists.)
        object.__setattr__(self, "on_its_way", tuple((a, b) for a, b in self.on_its_way))

    def waits_for(self, sequence: int) -> bool:
        """Whether ``sequence`` was on its way when the marker came."""
        return any(first <= sequence <= last for first, last in self.on_its_way)


@dataclass(frozen=True)
class LivePlaylist:
    """What the playlists hold: the newest ``window`` entries (window 0: all, an EVENT).

    ``first_sequence`` is None until the stream's first segment is known;
    ``discontinuity_sequence`` counts the discontinuities that slid out of the window.
    """

    first_sequence: int | None = None
    entries: tuple[Entry, ...] = field(default_factory=tuple)
    ended: bool = False
    gaps: int = 0
    discontinuity_sequence: int = 0
    anchor: Anchor | None = None

    @property
    def next_sequence(self) -> int | None:
        return self.entries[-1].sequence + 1 if self.entries else self.first_sequence

    @property
    def media_sequence(self) -> int:
        return self.entries[0].sequence if self.entries else (self.first_sequence or 0)

    def to_dict(self) -> dict[str, Any]:
        """A compact form for the state table (which compresses it: ``store._packed``)."""
        return {
            "first_sequence": self.first_sequence,
            "media_sequence": self.media_sequence,
            "durations": [e.duration for e in self.entries],
            "gap_sequences": [e.sequence for e in self.entries if e.gap],
            "discontinuities": [e.sequence for e in self.entries if e.discontinuity],
            "discontinuity_sequence": self.discontinuity_sequence,
            "anchor": None if self.anchor is None else asdict(self.anchor),
            "ended": self.ended,
            "gaps": self.gaps,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LivePlaylist:
        gaps = set(data["gap_sequences"])
        # A state stored before discontinuities were kept has none.
        breaks = set(data.get("discontinuities", ()))
        start = int(data["media_sequence"])
        entries = tuple(
            Entry(start + i, float(d), (start + i) in gaps, (start + i) in breaks)
            for i, d in enumerate(data["durations"])
        )
        anchor = data.get("anchor")
        return cls(
            data["first_sequence"],
            entries,
            bool(data["ended"]),
            int(data["gaps"]),
            int(data.get("discontinuity_sequence", 0)),
            None if anchor is None else Anchor(**known_fields(Anchor, anchor)),
        )


def advance(
    playlist: LivePlaylist,
    arrivals: Mapping[int, Arrival],
    *,
    now: float,
    gap_after: float,
    window: int,
    nominal_duration: float,
    ending: Ending | None = None,
    lowest_upload: int | None = None,
) -> LivePlaylist:
    """The playlist after taking every arrival it can, in sequence order.

    A missing sequence number becomes a gap (as long as ``_gap_run`` finds) once a later one
    has waited ``gap_after`` seconds, or the end marker has, either at most
    ``MAX_SKIPPED`` ahead of it (one on its way when the marker came waits longer:
    ``Ending``); a failed segment is a gap as soon as the run of gaps it
    starts is known (the next segment that did not fail came, or a number still missing
    in the run was waited for), or once it has waited ``gap_after`` itself (an uplink
    lost after it). Duplicates and
    arrivals behind the playlist change nothing. Without a
    declared first sequence the stream starts at 0, or, once its lowest arrival has
    waited ``gap_after`` (the same patience a gap gets), at the lowest sequence number
    that arrived or was uploaded (``lowest_upload``): a first segment still on its way
    then becomes a gap like any other, never a hole before the playlist. ``window`` > 0
    keeps only the newest entries. The playlist ends once it has passed
    ``ending.last_sequence``.
    """
    if playlist.ended:
        return playlist
    first = playlist.first_sequence
    if first is None:
        first = _first_sequence(arrivals, now, gap_after, ending, lowest_upload)
        if first is None:
            return playlist
        playlist = replace(playlist, first_sequence=first)
    entries = list(playlist.entries)
    sequence = playlist.next_sequence or first
    gaps, anchor = playlist.gaps, playlist.anchor
    last = ending.last_sequence if ending else None
    run_end, run_each = sequence, nominal_duration  # the run of gaps being shown

    looked: dict[int, bool] = {}  # a run's numbers are asked twice: ahead, then in turn

    def waited(sequence: int) -> bool:
        if sequence not in looked:
            looked[sequence] = _waited(arrivals, sequence, now, gap_after, ending)
        return looked[sequence]

    while last is None or sequence <= last:
        arrival = arrivals.get(sequence)
        if arrival is not None and not arrival.failed:
            broken = anchor is not None and not anchor.continued_by(arrival)
            duration = nominal_duration if arrival.duration is None else arrival.duration
            entries.append(Entry(sequence, duration, discontinuity=broken))
            # One without times (probed by an older deploy) leaves nothing to compare with.
            anchor = (
                None if arrival.end is None else Anchor(arrival.end, arrival.form, 0.0, duration)
            )
        elif arrival is not None or waited(sequence):
            known = arrival.duration if arrival is not None else None
            if sequence >= run_end:
                run = _gap_run(
                    arrivals, sequence, last, anchor, entries, nominal_duration, waited,
                    settled=now - gap_after,
                )  # fmt: skip
                if run is None and known is None:
                    break  # its length is known once the number after it is
                run_end, run_each = run or (sequence, run_each)
            duration = run_each if known is None else known
            entries.append(Entry(sequence, duration, gap=True))
            gaps += 1
            if anchor is not None:
                anchor = replace(anchor, gap=anchor.gap + duration)
        else:
            break
        sequence += 1
    ended = last is not None and sequence > last
    grown = replace(playlist, entries=tuple(entries), ended=ended, gaps=gaps, anchor=anchor)
    return windowed(grown, window, nominal_duration)


def windowed(playlist: LivePlaylist, window: int, segment_seconds: float) -> LivePlaylist:
    """``playlist`` with only its newest ``window`` entries (0: all), counting the
    discontinuities that slid out; more where those would last under three of its target
    durations (``segment_seconds``'): a live playlist may not be shorter (RFC 8216
    6.2.2), and a stream's segments may be shorter than it declared."""
    if window <= 0 or len(playlist.entries) <= window:
        return playlist
    shortest = 3 * live_target(segment_seconds)
    kept = len(playlist.entries) - window
    while kept > 0 and sum(e.duration for e in playlist.entries[kept:]) < shortest:
        kept -= 1
    slid = sum(e.discontinuity for e in playlist.entries[:kept])
    return replace(
        playlist,
        entries=playlist.entries[kept:],
        discontinuity_sequence=playlist.discontinuity_sequence + slid,
    )


def _gap_run(
    arrivals: Mapping[int, Arrival],
    sequence: int,
    last: int | None,
    anchor: Anchor | None,
    entries: list[Entry],
    nominal: float,
    waited: Callable[[int], bool],
    settled: float,
) -> tuple[int, float] | None:
    """Where the run of gaps from ``sequence`` ends (the next segment that came) and how
    long each of its gaps is shown: the source's time from the last segment shown to
    that one, shared among them, where that is at most a target duration each (one
    clock that ran on through the outage); else the length of the last segment shown
    (an encoder cutting 1 s segments loses 1 s a segment, whatever the target); else
    ``nominal``.

    While a number of the run is still to come (not ``waited`` for long enough), the
    run ends at its first failed segment that arrived after ``settled`` (None if that
    is ``sequence``): a failed segment shown before the ones after it finish encoding
    would share a later segment's time with them, or guess its own, and either way the
    next one to come could start a false discontinuity. One that arrived by
    ``settled`` may have nothing coming after it (an uplink lost): it is shown as long
    as the last segment shown. Numbers past ``last`` never come."""
    shown = anchor.length if anchor is not None and anchor.length else nominal
    typical = next((e.duration for e in reversed(entries) if not e.gap), shown)
    for later in range(sequence + 1, sequence + MAX_SKIPPED + 1):
        if last is not None and later > last:
            return later, typical  # the stream ends in this run: nothing follows it
        found = arrivals.get(later)
        if found is not None and not found.failed:
            break
        if found is None and not waited(later):
            # Shown up to its first failure still in its wait, each timed on its own:
            # one failure a second must not hold the run (and its gap events) for good.
            run = range(sequence, later)
            fresh = next((n for n in run if n in arrivals and arrivals[n].at > settled), later)
            return None if fresh == sequence else (fresh, typical)
    else:
        return sequence + MAX_SKIPPED + 1, typical
    if anchor is None or found.start is None:
        return later, typical
    each = (found.start - anchor.end - anchor.gap) / (later - sequence)
    # (A share within a frame's rounding is no time lost: a number skipped on a clock
    # that ran on. Shown that long, a gap read #EXTINF:0.000001; it is shown as long as
    # the others, and the segment after it starts a run.)
    return later, (each if STEP_BACK_TOLERANCE <= each <= live_target(nominal) else typical)


def _first_sequence(
    arrivals: Mapping[int, Arrival],
    now: float,
    gap_after: float,
    ending: Ending | None,
    lowest_upload: int | None,
) -> int | None:
    if 0 in arrivals:
        return 0
    ended_long_ago = ending is not None and now - ending.at >= gap_after
    if not arrivals:
        return (0 if lowest_upload is None else lowest_upload) if ended_long_ago else None
    lowest = min(arrivals)
    if now - arrivals[lowest].at >= gap_after or ended_long_ago:
        return lowest if lowest_upload is None else min(lowest, lowest_upload)
    return None


def _waited(
    arrivals: Mapping[int, Arrival],
    sequence: int,
    now: float,
    gap_after: float,
    ending: Ending | None,
) -> bool:
    if ending is not None and ending.waits_for(sequence):
        # Its job was running when the stream ended, which has no live edge to keep:
        # only its job's longest life gives it up, whatever came after it.
        return now - ending.at >= max(gap_after, IN_FLIGHT_SECONDS)
    reach = sequence + MAX_SKIPPED
    if ending is not None and ending.last_sequence <= reach and now - ending.at >= gap_after:
        return True
    return any(a.at <= now - gap_after for s, a in arrivals.items() if sequence < s <= reach)


def render(
    playlist: LivePlaylist,
    *,
    target_duration: float,
    window: int,
    vod: bool = False,
    key: Callable[[Entry], str] | None = None,
) -> str:
    """The media playlist text: sliding window (``window`` > 0), EVENT, or VOD; with
    ``key``, each segment after the ``EXT-X-KEY`` tag ``key`` gives for it.

    ``EXT-X-TARGETDURATION`` must not change while a live playlist runs, so it is the
    stream's declared target: LiveProbe refuses a segment that would not fit it.
    """
    return hls.media_playlist(
        [
            hls.SegmentEntry(
                e.uri,
                e.duration,
                gap=e.gap,
                discontinuity=e.discontinuity,
                key=None if key is None or e.gap else key(e),
            )
            for e in playlist.entries
        ],
        playlist_type="VOD" if vod else "EVENT" if window <= 0 else None,
        media_sequence=playlist.media_sequence,
        discontinuity_sequence=playlist.discontinuity_sequence,
        ended=playlist.ended or vod,
        fixed_target=live_target(target_duration),
    )


def live_target(segment_seconds: float) -> int:
    """A stream's ``EXT-X-TARGETDURATION``: its segment length rounded up, for its life."""
    return max(1, math.ceil(segment_seconds))


def fits(duration: float, segment_seconds: float) -> bool:
    """Whether a segment of ``duration`` fits a stream's target (RFC 8216 rounding)."""
    return hls.rounded_duration(duration) <= live_target(segment_seconds)
