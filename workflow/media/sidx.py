"""A fragmented MP4's segment index (``sidx``, ISO/IEC 14496-12 8.16.3).

A file written for DASH on demand (``ffmpeg -movflags dash+global_sidx``, MP4Box, Shaka
Packager) lists its fragments in a ``sidx`` box ahead of them, and ffmpeg, finding one,
reads the fragments only as it reaches them: opened, the file lists the samples of its
first fragment alone. The index says where every fragment starts and how long it lasts,
in a few bytes per fragment near the file's head; this reads it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

# Top-level boxes walked before giving up (ftyp, free, moov, a sidx per track, ...).
_TOP_BOXES = 32
_REFERENCE = struct.Struct(">III")
# The largest a sidx can be: its version 1 header and 65,535 references.
_LARGEST = 44 + 65_535 * _REFERENCE.size


@dataclass(frozen=True)
class SegmentIndex:
    # Where the first subsegment starts (seconds on the track's media timeline), where
    # each that starts with a stream access point (a keyframe) does, and where the last
    # ends.
    earliest: float
    keyframes: list[float]
    end: float
    # The byte just past the last subsegment: a file shorter than this is cut short.
    last_byte: int


def segment_index(
    read_at: Callable[[int, int], bytes], size: int, track: int
) -> SegmentIndex | None:
    """The ``sidx`` of track ``track`` among the boxes before the file's first fragment;
    None where there is none, or it indexes other indexes rather than media (a
    hierarchical index, which ffmpeg's planning by time covers)."""
    offset = 0
    for _ in range(_TOP_BOXES):
        header = read_at(offset, 16)
        if len(header) < 8:
            return None
        box_size, kind = struct.unpack(">I4s", header[:8])
        if box_size == 1 and len(header) == 16:
            box_size = struct.unpack(">Q", header[8:])[0]
        elif box_size == 0:
            box_size = size - offset
        if box_size < 8 or kind in (b"moof", b"mdat"):
            return None
        if kind == b"sidx":
            found = _parse(read_at(offset, min(box_size, _LARGEST)), offset + box_size)
            if found is not None and found[0] == track:
                return found[1]
        offset += box_size
    return None


def _parse(box: bytes, after: int) -> tuple[int, SegmentIndex] | None:
    if len(box) < 32:
        return None
    version = box[8]
    track, timescale = struct.unpack(">II", box[12:20])
    if version == 0:
        earliest, first_offset = struct.unpack(">II", box[20:28])
        at = 28
    else:
        earliest, first_offset = struct.unpack(">QQ", box[20:36])
        at = 36
    if timescale == 0 or len(box) < at + 4:
        return None
    count = struct.unpack(">H", box[at + 2 : at + 4])[0]
    at += 4
    if count == 0 or len(box) < at + count * _REFERENCE.size:
        return None
    keyframes = []
    time, byte = earliest, after + first_offset
    for n in range(count):
        sizing, duration, access = _REFERENCE.unpack_from(box, at + n * _REFERENCE.size)
        if sizing >> 31:
            return None  # a reference to another sidx
        if access >> 31:
            keyframes.append(time / timescale)
        time += duration
        byte += sizing & 0x7FFFFFFF
    return track, SegmentIndex(earliest / timescale, keyframes, time / timescale, byte)
