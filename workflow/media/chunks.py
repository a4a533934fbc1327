"""Cut a source into keyframe-aligned chunks and each chunk into HLS segments."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FrameIndex:
    """Keyframe times (seconds) and the number of frames from each keyframe to the next."""

    keyframes: list[float] = field(default_factory=list)
    gop_frames: list[int] = field(default_factory=list)
    end: float = 0.0

    @property
    def frame_count(self) -> int:
        return sum(self.gop_frames)

    def to_dict(self) -> dict[str, Any]:
        return {"keyframes": self.keyframes, "gop_frames": self.gop_frames, "end": self.end}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameIndex:
        return cls(list(data["keyframes"]), list(data["gop_frames"]), float(data["end"]))


@dataclass(frozen=True)
class Chunk:
    """A run of whole GOPs encoded by one job into every rung.

    ``start``/``end`` are source timestamps in seconds; ``segment_starts`` are the
    absolute times where each HLS segment of the chunk begins (the first is ``start``).
    """

    index: int
    start: float
    end: float
    frames: int
    first_segment: int
    segment_starts: list[float]

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def item(self) -> str:
        """The chunk's name as a work item: its result and error records are named so."""
        return f"video-{self.index:05d}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


def plan_chunks(index: FrameIndex, chunk_seconds: float, segment_seconds: float) -> list[Chunk]:
    """Cut at the keyframes nearest to every ``chunk_seconds``, never inside a GOP.

    A chunk is at least one segment long unless the whole source is shorter, and
    whatever remains once it is within a chunk and a segment is one last chunk.
    """
    keys, gops, end = index.keyframes, index.gop_frames, index.end
    chunks: list[Chunk] = []
    first_segment = 0
    i = 0
    while i < len(keys):
        start = keys[i]
        j = None
        if end - start > chunk_seconds + segment_seconds:
            j = _next_cut(keys, i, end, start + chunk_seconds, segment_seconds)
        stop = keys[j] if j is not None else end
        segments = segment_starts(start, stop, segment_seconds)
        chunks.append(
            Chunk(
                index=len(chunks),
                start=start,
                end=stop,
                frames=sum(gops[i : j if j is not None else len(keys)]),
                first_segment=first_segment,
                segment_starts=segments,
            )
        )
        first_segment += len(segments)
        i = j if j is not None else len(keys)
    return chunks


def _next_cut(
    keys: list[float], i: int, end: float, target: float, min_length: float
) -> int | None:
    """The keyframe nearest ``target`` that leaves at least ``min_length`` on both sides."""
    best = None
    for j in range(i + 1, len(keys)):
        if keys[j] - keys[i] < min_length or end - keys[j] < min_length:
            continue
        if best is None or abs(keys[j] - target) < abs(keys[best] - target):
            best = j
        if keys[j] > target:
            break
    return best


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
