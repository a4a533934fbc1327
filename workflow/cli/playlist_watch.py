"""What a player may rely on in a live media playlist, checked on every read of it.

A reader polls a rung's ``live.m3u8`` again and again; each text it reads must list the
segments from ``EXT-X-MEDIA-SEQUENCE`` on, one each, in order, with no hole, and compared
with the last text it read the media sequence never goes back and nothing once listed
disappears, unless the sliding window dropped it from the head (then the media sequence
moved past it). A gap (``EXT-X-GAP``) is reported too: the soak sends every segment, so a
gap means one was lost. Once ``EXT-X-ENDLIST`` is read the playlist must not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_URI = re.compile(r"^seg_(\d+)\.ts$")


@dataclass(frozen=True)
class Reading:
    """One read of a media playlist: its media sequence, the sequence number each segment
    line carries, which of them are gaps, and whether it has ended."""

    media_sequence: int
    sequences: tuple[int, ...]
    gaps: frozenset[int]
    ended: bool

    @classmethod
    def parse(cls, text: str) -> Reading:
        media_sequence, sequences, gaps, ended, gap_next = 0, [], set(), False, False
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                media_sequence = int(line.split(":", 1)[1])
            elif line == "#EXT-X-GAP":
                gap_next = True
            elif line == "#EXT-X-ENDLIST":
                ended = True
            elif found := _URI.match(line):
                sequences.append(int(found.group(1)))
                if gap_next:
                    gaps.add(sequences[-1])
                gap_next = False
        return cls(media_sequence, tuple(sequences), frozenset(gaps), ended)


@dataclass
class PlaylistWatch:
    """Every reading of one playlist, checked against the playlist rules and the last one."""

    name: str
    last: Reading | None = None
    readings: int = 0
    violations: list[str] = field(default_factory=list)

    def observe(self, text: str) -> list[str]:
        """Check one read; return (and keep) what it broke."""
        now = Reading.parse(text)
        broke = []
        expected = tuple(range(now.media_sequence, now.media_sequence + len(now.sequences)))
        if now.sequences != expected:
            broke.append(
                f"lists {_short(now.sequences)} from media sequence {now.media_sequence}: "
                + _what(now.sequences, now.media_sequence)
            )
        if now.gaps:
            broke.append(f"shows gaps at {sorted(now.gaps)}")
        before = self.last
        if before is not None:
            if now.media_sequence < before.media_sequence:
                broke.append(
                    f"media sequence went back from {before.media_sequence} to {now.media_sequence}"
                )
            kept = {s for s in before.sequences if s >= now.media_sequence}
            if dropped := sorted(kept - set(now.sequences)):
                broke.append(f"shrank: {_short(tuple(dropped))} no longer listed")
            if before.ended and now != before:
                broke.append("changed after EXT-X-ENDLIST")
        self.last = now
        self.readings += 1
        self.violations += [f"{self.name}: {b}" for b in broke]
        return broke


def _what(sequences: tuple[int, ...], media_sequence: int) -> str:
    if len(set(sequences)) < len(sequences):
        return "a segment twice"
    if list(sequences) != sorted(sequences):
        return "out of order"
    if sequences and sequences[0] != media_sequence:
        return "not starting at the media sequence"
    return "a hole"


def _short(sequences: tuple[int, ...]) -> str:
    if len(sequences) <= 8:
        return str(list(sequences))
    return f"[{sequences[0]}..{sequences[-1]}] ({len(sequences)})"
