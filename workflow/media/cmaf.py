"""Fragmented MP4 (CMAF) segments: split what ffmpeg writes into an init and a media part.

ffmpeg's ``segment`` muxer writes each segment as a whole fragmented MP4 (``ftyp`` +
``moov`` + ``moof``/``mdat``), keeping the source's timestamps in ``tfdt`` (see
``commands.CMAF_FORMAT_OPTIONS``). HLS (``EXT-X-MAP``) and DASH both want the
``ftyp``+``moov`` once per rendition and the fragments alone, so each segment is split
here. Every chunk of a rendition must describe its samples the same way (same ``stsd``:
codec, profile, level, SPS/PPS) and present them the same way (same edit list: the
B-frame delay), or a player could not continue from one chunk to the next;
``sample_description_digest`` lets the publisher check that.

The muxer measures each segment's B-frame delay from the frames it is given, so a source
whose frames are not evenly spaced (a phone's jittery clock, a variable rate) gets a
different edit list in every other segment; ``with_common_edit`` rewrites each segment
to one edit per rung, its frames still presented at the same instants.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from workflow.errors import TranscodeError

# The boxes of an init segment that hold only boxes, down to each track's sample table.
CONTAINERS = {b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl"}
# ... and those of a fragment, down to its track runs.
FRAGMENT = {b"moof", b"traf"}
# The frames of one edit for every segment of a rung: x264 holds back two at most (its
# B-pyramid's reorder delay), and one more takes a jittery clock's frames that come a
# little late, so that each fragment's tfdt stays its first presented frame's time.
EDIT_FRAMES = 3
# trun flags: the run's optional fields, then each sample's, in the order they come.
_TRUN_DATA_OFFSET, _TRUN_FIRST_FLAGS = 0x1, 0x4
_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_OFFSET = 0x100, 0x200, 0x400, 0x800


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


def common_edit(timescale: int, frame_rate: float) -> int:
    """The edit (its ``media_time``, in ``timescale`` ticks) every segment of a video rung
    at ``frame_rate`` is rewritten to: ``EDIT_FRAMES`` frames at that rate."""
    return round(EDIT_FRAMES * timescale / frame_rate)


def with_common_edit(split: SplitSegment, media_time: int) -> SplitSegment:
    """``split`` with its track's one edit set to ``media_time``, every frame presented
    when it was before.

    The muxer made the first frame's decode time (``tfdt``) its presentation time and
    put the segment's own delay in the edit. Every composition offset moves by the
    difference between the two edits; where that would take one below zero (the frames
    before the segment's keyframe came slower than the rung's edit allows: a variable
    rate), the fragment's decode times start earlier instead. A segment without
    composition offsets (no B-frames) has no delay to move and is returned as it is.
    """
    edit = _one_edit(split.init)
    own = _media_time(split.init, edit)
    init = bytearray(split.init)
    media = bytearray(split.media)
    offsets = [
        o for run in _find(split.media, b"trun", inside=FRAGMENT) for o in _offsets(media, run)
    ]
    if not offsets:
        return split
    earlier = max(0, own - min(value for _, value in offsets) - media_time)
    shift = media_time - own + earlier
    for position, value in offsets:
        # not below zero now, so the same bytes whether the run's offsets are signed or not
        struct.pack_into(">I", media, position, value + shift)
    for tfdt in _find(split.media, b"tfdt", inside=FRAGMENT):
        wide = media[tfdt.body.start] == 1
        position = tfdt.body.start + 4
        form = ">Q" if wide else ">I"
        (decoded,) = struct.unpack_from(form, media, position)
        if decoded < earlier:
            raise TranscodeError("an fMP4 fragment's decode time would go below zero")
        struct.pack_into(form, media, position, decoded - earlier)
    _set_media_time(init, edit, media_time)
    return SplitSegment(init=bytes(init), media=bytes(media))


def _one_edit(init: bytes) -> Box:
    edits = list(_find(init, b"elst"))
    if len(edits) != 1 or struct.unpack_from(">I", init, edits[0].body.start + 4)[0] != 1:
        raise TranscodeError("an fMP4 init segment has not the one edit its muxer writes")
    return edits[0]


def _media_time(init: bytes, elst: Box) -> int:
    if init[elst.body.start] == 1:
        return int(struct.unpack_from(">q", init, elst.body.start + 16)[0])
    return int(struct.unpack_from(">i", init, elst.body.start + 12)[0])


def _set_media_time(init: bytearray, elst: Box, media_time: int) -> None:
    if init[elst.body.start] == 1:
        struct.pack_into(">q", init, elst.body.start + 16, media_time)
    else:
        struct.pack_into(">i", init, elst.body.start + 12, media_time)


def _offsets(media: bytes | bytearray, trun: Box) -> list[tuple[int, int]]:
    """Where each sample's composition offset lies in ``trun``, and its value."""
    version = media[trun.body.start]
    flags = int.from_bytes(media[trun.body.start + 1 : trun.body.start + 4], "big")
    if not flags & _TRUN_OFFSET:
        return []
    (count,) = struct.unpack_from(">I", media, trun.body.start + 4)
    optional = (_TRUN_DATA_OFFSET, _TRUN_FIRST_FLAGS)
    position = trun.body.start + 8 + 4 * sum(bool(flags & f) for f in optional)
    before = 4 * sum(bool(flags & f) for f in (_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS))
    found = []
    for _ in range(count):
        position += before
        if position + 4 > trun.end:
            raise TranscodeError("an fMP4 track run ends inside its samples")
        (value,) = struct.unpack_from(">i" if version == 1 else ">I", media, position)
        found.append((position, int(value)))
        position += 4
    return found


def timescale(init: bytes) -> int:
    """The first track's media timescale (``mdhd``), in ticks per second."""
    for box in _find(init, b"mdhd"):
        version = init[box.body.start]
        offset = box.body.start + (20 if version == 1 else 12)
        return int(struct.unpack_from(">I", init, offset)[0])
    raise TranscodeError("an fMP4 init segment has no media header (mdhd)")


def _find(
    data: bytes,
    kind: bytes,
    start: int = 0,
    end: int | None = None,
    inside: set[bytes] = CONTAINERS,
) -> Iterator[Box]:
    for box in boxes(data, start, end):
        if box.kind == kind:
            yield box
        elif box.kind in inside:
            yield from _find(data, kind, box.body.start, box.end, inside)
