"""Live media playlists that never lie: the pure rules, whatever stores the state.

A rung's playlist shows a segment only once it and every earlier sequence number are
published in that rung. Segments finish out of order and S3 delivers events twice, so
the state is "what has arrived" plus "how far the playlist has advanced"; ``advance``
moves the playlist forward over every contiguous arrival, and turns a sequence number
that is still missing ``gap_after`` seconds after a later one arrived into an
``EXT-X-GAP`` entry, so one lost segment cannot stall the stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Arrival:
    """One segment published in one rung: its duration, URI, and when it was published."""

    duration: float
    uri: str
    at: float


@dataclass(frozen=True)
class Entry:
    """One line of the playlist: a segment, or a gap where one never came."""

    sequence: int
    duration: float
    uri: str
    gap: bool = False


@dataclass(frozen=True)
class LivePlaylist:
    """What one rung's playlist holds: the newest ``window`` entries (0: all, an EVENT)."""

    first_sequence: int = 0
    entries: tuple[Entry, ...] = field(default_factory=tuple)
    ended: bool = False

    @property
    def next_sequence(self) -> int:
        return self.entries[-1].sequence + 1 if self.entries else self.first_sequence

    @property
    def media_sequence(self) -> int:
        return self.entries[0].sequence if self.entries else self.first_sequence


def advance(
    playlist: LivePlaylist,
    arrivals: Mapping[int, Arrival],
    *,
    now: float,
    gap_after: float,
    window: int,
    nominal_duration: float,
) -> LivePlaylist:
    """The playlist after taking every arrival it can, in sequence order.

    A missing sequence number becomes a gap (of ``nominal_duration``) only once a later
    one has been waiting ``gap_after`` seconds; duplicates and arrivals behind the
    playlist change nothing. ``window`` > 0 keeps only the newest entries.
    """
    if playlist.ended:
        return playlist
    entries = list(playlist.entries)
    sequence = playlist.next_sequence
    later = sorted(s for s in arrivals if s > sequence)
    while True:
        if sequence in arrivals:
            arrival = arrivals[sequence]
            entries.append(Entry(sequence, arrival.duration, arrival.uri))
        elif any(arrivals[s].at <= now - gap_after for s in later if s > sequence):
            entries.append(Entry(sequence, nominal_duration, f"gap-{sequence:06d}.ts", gap=True))
        else:
            break
        sequence += 1
    if window > 0:
        entries = entries[-window:]
    return replace(playlist, entries=tuple(entries))


def end(playlist: LivePlaylist) -> LivePlaylist:
    """The playlist once the stream has ended: nothing more is appended."""
    return replace(playlist, ended=True)


def render(playlist: LivePlaylist, *, target_duration: float, window: int) -> str:
    """The media playlist text: sliding window (``window`` > 0) or EVENT, ENDLIST when ended.

    ``EXT-X-TARGETDURATION`` must not change while a live playlist runs, so it is the
    stream's declared target, never derived from the entries so far.
    """
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:8" if any(e.gap for e in playlist.entries) else "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(target_duration)}",
        f"#EXT-X-MEDIA-SEQUENCE:{playlist.media_sequence}",
    ]
    if window <= 0:
        lines.append("#EXT-X-PLAYLIST-TYPE:EVENT")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    for entry in playlist.entries:
        if entry.gap:
            lines.append("#EXT-X-GAP")
        lines += [f"#EXTINF:{entry.duration:.6f},", entry.uri]
    if playlist.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
