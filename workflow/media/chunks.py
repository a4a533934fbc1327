"""Cut a source into chunks by time, on keyframes where its index lists them, and each
chunk into HLS segments."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from workflow.shapes import known_fields

# Seconds before a cut that a chunk starts decoding where the container has no index
# (MPEG-TS and the like): their demuxers seek to a packet, not to a keyframe, so the
# decode must begin far enough back to meet a keyframe at or before the cut. The chunk
# job checks that it did and goes further back if not (``encode.FIRST_FRAME``).
UNINDEXED_MARGIN = 3.0
# The most seconds a chunk may decode before its start to meet a keyframe: a source
# with keyframes further apart is refused (the probe, where its index lists them) or
# fails its first chunk that finds none this far back (the chunk job), rather than
# decode from the file's start for every chunk of it. Real footage measures 0.4-7 s;
# phones and OBS write 1-10 s.
MAX_KEYFRAME_INTERVAL = 120.0
# ... or, at a low frame rate, as many frames as that is at 30 fps: decoding costs frames,
# and a still picture's video at 1 fps (a cover over an audio track, a timelapse), keyed
# every 250 frames by x264's default, decodes less than 10 s of 25 fps does.
MAX_KEYFRAME_FRAMES = 3600


def keyframe_reach(rate: float | None, seconds: float = MAX_KEYFRAME_INTERVAL) -> float:
    """The longest span without a keyframe a video at ``rate`` fps may have, in seconds:
    ``seconds``, or ``MAX_KEYFRAME_FRAMES`` frames where that is longer."""
    return max(seconds, MAX_KEYFRAME_FRAMES / rate) if rate and rate > 0 else seconds


@dataclass
class FrameIndex:
    """Where the video's frames start and end (seconds), and the keyframe times its
    container's own index lists: none where it has no index (``by_time``)."""

    start: float
    end: float
    keyframes: list[float] = field(default_factory=list)

    @property
    def by_time(self) -> bool:
        return not self.keyframes

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "keyframes": self.keyframes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameIndex:
        return cls(float(data["start"]), float(data["end"]), list(data["keyframes"]))


@dataclass(frozen=True)
class Chunk:
    """A time range of the source encoded by one job into every rung: exactly the frames
    presented in ``[start, end)``.

    ``start``/``end`` are source timestamps in seconds; ``segment_starts`` are the
    absolute times where each HLS segment of the chunk begins (the first is ``start``).
    ``margin`` is how far before ``start`` its decode begins (see ``UNINDEXED_MARGIN``).
    """

    index: int
    start: float
    end: float
    first_segment: int
    segment_starts: list[float]
    margin: float = 0.0

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def item(self) -> str:
        """The chunk's name as a work item: its result and error records are named so."""
        return chunk_item(self.index)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**known_fields(cls, data))


def chunk_item(index: int) -> str:
    """The work item's name of the chunk numbered ``index``."""
    return f"video-{index:05d}"


def refused_hole(chunk_seconds: float, segment_seconds: float) -> float:
    """The shortest pause between two frames that holds a whole chunk however the plan
    cuts (no chunk is longer than a chunk and a segment): that chunk's job finds nothing
    to encode and fails the job, so the probe, which sees an MP4's every frame time,
    refuses it before hundreds of chunks are queued."""
    return 2 * (chunk_seconds + segment_seconds)


def plan_chunks(
    index: FrameIndex, chunk_seconds: float, segment_seconds: float, slots: int = 0
) -> list[Chunk]:
    """Cut every ``chunk_seconds``, moved to the nearest listed keyframe within half a
    segment of the target, so a chunk rarely decodes frames it does not encode.

    A chunk is at least one segment long unless the whole source is shorter, and
    whatever remains once it is within a chunk and a segment is one last chunk.

    ``slots`` is how many chunks the Map runs at once. Where there are more chunks than
    slots and they would leave the last wave part empty, they are cut shorter, in whole
    segments, longest first, until the waves are full: with two slots, 60 s in 12 s
    chunks is five, the fifth alone while a slot idles; as 12, 12, 12, 8, 8 and 8 both
    slots finish within a segment of each other.
    """
    cuts = _cuts(index, itertools.repeat(chunk_seconds), segment_seconds)
    lengths = _full_waves(len(cuts), index.end - index.start, segment_seconds, slots)
    if lengths:
        # The last chunk is what remains after the others.
        cuts = _cuts(index, lengths[:-1], segment_seconds, exact=True)
    margin = UNINDEXED_MARGIN if index.by_time else 0.0
    chunks: list[Chunk] = []
    first_segment = 0
    for start, stop in itertools.pairwise([*cuts, index.end]):
        segments = segment_starts(start, stop, segment_seconds)
        chunks.append(Chunk(len(chunks), start, stop, first_segment, segments, margin))
        first_segment += len(segments)
    return chunks


def _cuts(
    index: FrameIndex, lengths: Iterable[float], segment_seconds: float, *, exact: bool = False
) -> list[float]:
    """Where chunks of about ``lengths`` start, each cut near its target (``_cut_near``):
    until what remains is within a chunk and a segment, or, ``exact``, one per length."""
    cuts = [index.start]
    for length in lengths:
        if not exact and index.end - cuts[-1] <= length + segment_seconds:
            break
        cut = _cut_near(index.keyframes, cuts[-1], index.end, length, segment_seconds)
        # Far from zero a float cannot move by a chunk: stop rather than loop forever.
        if cut <= cuts[-1] or cut >= index.end:
            break
        cuts.append(cut)
    return cuts


def _full_waves(count: int, duration: float, segment_seconds: float, slots: int) -> list[float]:
    """Chunk lengths, in whole segments and longest first, that fill every wave of
    ``slots`` with as many waves as ``count`` chunks make; none where they already do,
    where they fit in one wave, or where the source has too few segments."""
    if slots < 2 or count <= slots or count % slots == 0:
        return []
    wanted = -(-count // slots) * slots
    segments = len(segment_starts(0.0, duration, segment_seconds))
    if wanted > segments:
        return []
    base, longer = divmod(segments, wanted)
    return [segment_seconds * (base + 1)] * longer + [segment_seconds * base] * (wanted - longer)


def _cut_near(
    keyframes: list[float], previous: float, end: float, chunk_seconds: float, segment: float
) -> float:
    """The cut after ``previous``: its target time, or the listed keyframe nearest to it
    within half a segment that leaves at least a segment on both sides."""
    target = round(previous + chunk_seconds, 6)
    low = max(target - segment / 2, previous + segment)
    high = min(target + segment / 2, end - segment)
    near = keyframes[bisect.bisect_left(keyframes, low) : bisect.bisect_right(keyframes, high)]
    return min(near, key=lambda k: abs(k - target)) if near else target


def segment_starts(start: float, stop: float, segment_seconds: float) -> list[float]:
    """Segment start times from ``start`` every ``segment_seconds``; no tail under a quarter."""
    starts = [start]
    for k in itertools.count(1):
        t = round(start + k * segment_seconds, 6)
        # Far from zero a float cannot move by a segment: stop rather than loop forever.
        if t > stop - segment_seconds / 4 or t >= stop or t <= starts[-1]:
            return starts
        starts.append(t)
    raise AssertionError("unreachable")
