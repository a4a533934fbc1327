"""Independent facts about a source, decoded with PyAV rather than vidflow's probe."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import av


@dataclass(frozen=True)
class Decoded:
    frames: int
    duration: float
    first_pts: float


def decode_video(path: Path, container_format: str | None = None) -> Decoded:
    """Decode every video frame of ``path``; the duration ends after the last frame."""
    with av.open(str(path), format=container_format) as container:
        stream = container.streams.video[0]
        times = []
        for frame in container.decode(stream):
            if frame.pts is not None:
                times.append(float(frame.pts * stream.time_base))
    times.sort()
    step = min((b - a for a, b in pairwise(times) if b > a), default=0.0)
    return Decoded(len(times), times[-1] - times[0] + step, times[0])
