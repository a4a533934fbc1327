"""Fragmented MP4 (CMAF) segments: split what ffmpeg writes into an init and a media part.

ffmpeg's ``segment`` muxer writes each segment as a whole fragmented MP4 (``ftyp`` +
``moov`` + ``moof``/``mdat``), keeping the source's timestamps in ``tfdt`` (see
``commands.CMAF_FORMAT_OPTIONS``). HLS (``EXT-X-MAP``) and DASH both want the
``ftyp``+``moov`` once per rendition and the fragments alone, so each segment is split
here. Every chunk of a rendition must describe its samples the same way (same ``stsd``:
codec, profile, level, SPS/PPS) and present them the same way (same edit list: the
B-frame delay), or a player could not continue from one chunk to the next;
``sample_description_digest`` lets the publisher check that.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from workflow.errors import TranscodeError

# The boxes of an init segment that hold only boxes, down to each track's sample table.
CONTAINERS = {b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl"}


@dataclass(frozen=True)
class Box:
    kind: bytes
    start: int
    end: int
    header: int

    @property
    def body(self) -> slice:
        return slice(self.start + self.header, self.end)


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid end to end in ``data[start:end]``; a damaged size is a TranscodeError."""
    end = len(data) if end is None else end
    offset = start
    while offset < end:
        if end - offset < 8:
            raise TranscodeError("an MP4 segment ends inside a box header")
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise TranscodeError(f"an MP4 box {kind!r} claims {size} bytes that are not there")
        yield Box(kind, offset, offset + size, header)
        offset += size


@dataclass(frozen=True)
class SplitSegment:
    init: bytes
    media: bytes


def split_segment(data: bytes) -> SplitSegment:
    """``ftyp``+``moov`` (the init segment) and the fragments that follow them."""
    top = list(boxes(data))
    kinds = [b.kind for b in top]
    if kinds[:2] != [b"ftyp", b"moov"] or b"moof" not in kinds:
        raise TranscodeError(f"an fMP4 segment has boxes {kinds}, not ftyp, moov, moof...")
    media_start = top[2].start
    media = b"".join(data[b.start : b.end] for b in top[2:] if b.kind != b"mfra")
    return SplitSegment(init=data[:media_start], media=media)


def sample_description_digest(init: bytes) -> str:
    """A digest of every track's ``stsd`` and ``elst``: equal digests play with the same init."""
    digest = hashlib.sha256()
    for box in sorted([*_find(init, b"stsd"), *_find(init, b"elst")], key=lambda b: b.start):
        digest.update(init[box.start : box.end])
    return digest.hexdigest()


def timescale(init: bytes) -> int:
    """The first track's media timescale (``mdhd``), in ticks per second."""
    for box in _find(init, b"mdhd"):
        version = init[box.body.start]
        offset = box.body.start + (20 if version == 1 else 12)
        return int(struct.unpack_from(">I", init, offset)[0])
    raise TranscodeError("an fMP4 init segment has no media header (mdhd)")


def _find(data: bytes, kind: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    for box in boxes(data, start, end):
        if box.kind == kind:
            yield box
        elif box.kind in CONTAINERS:
            yield from _find(data, kind, box.body.start, box.end)
