"""Whether an upload is as long as its container says it is.

A file cut short (an upload stopped part-way, a copy of a partial download) whose header
still declares the whole file would otherwise be read as far as it goes and published
under the whole file's duration: a Matroska file's duration and an FLV's sit in their
headers, and a Matroska or AVI file cut before its index is planned by time. Each
container that records its own length is held to it here, from a few bytes: Matroska its
Segment's size, AVI its RIFF chunk's, FLV the size of its last tag, which every tag
writes after itself. A recording whose writer died before it set these (an unknown
Matroska size, AVI's placeholder) declares nothing and is read as far as it goes, as
MPEG-TS and MPEG-PS, which record no length at all, always are.
"""

from __future__ import annotations

from collections.abc import Callable

_EBML = 0x1A45DFA3
_SEGMENT = 0x18538067
_VOID = 0xEC
_AVI_UNSET = (0, 0xFFFFFFFF)  # ffmpeg writes -1 and fixes it on close; others leave 0
_FLV_HEADER = 13  # the 9-byte header and the first PreviousTagSize
_FLV_TAG_HEADER = 11
_FLV_TAG_TYPES = (8, 9, 18)  # audio, video, script data
_FLV_VIDEO = 9
_FLV_AVC_FRAME = 7  # codec id of H.264 video tags, whose body carries a composition offset
# The most tags walked back from the end for the last video tags: minutes of audio alone.
_FLV_TAGS_BACK = 20_000
_FLV_REORDER = 16  # the most frames an H.264 decoder holds back: the last of these is last


def cut_short(
    family: str, head: bytes, size: int, read_at: Callable[[int, int], bytes] | None
) -> str | None:
    """Say how a file of ``size`` bytes falls short of what its container declares, or
    None where it does not (or declares nothing).

    ``head`` is the file's first bytes; ``read_at(offset, count)`` reads elsewhere
    (None where the source cannot be read at an offset, which only FLV needs).
    """
    if family == "matroska":
        end = _matroska_end(head)
    elif family == "avi":
        end = _avi_end(head)
    elif family == "flv" and read_at is not None:
        return _flv_cut(size, read_at)
    else:
        return None
    if end is not None and end > size:
        return f"its header declares {end} bytes and the upload has {size}"
    return None


def _matroska_end(head: bytes) -> int | None:
    """Where the first Segment ends by its declared size; None where it is unknown."""
    at = 0
    while True:
        element = _ebml_element(head, at)
        if element is None:
            return None  # not within the head: say nothing rather than guess
        ident, data, length = element
        if ident == _SEGMENT:
            return None if length is None else data + length
        if ident not in (_EBML, _VOID) or length is None:
            return None
        at = data + length


def _ebml_element(data: bytes, at: int) -> tuple[int, int, int | None] | None:
    """The element at ``at``: its ID, where its data starts and its size (None: unknown)."""
    ident = _vint(data, at, keep_marker=True)
    if ident is None:
        return None
    ident_value, ident_width = ident
    size = _vint(data, at + ident_width, keep_marker=False)
    if size is None:
        return None
    length, size_width = size
    unknown = length == (1 << (7 * size_width)) - 1
    return ident_value, at + ident_width + size_width, None if unknown else length


def _vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer: its value and its width in bytes."""
    if at >= len(data) or data[at] == 0:
        return None
    width = 8 - data[at].bit_length() + 1
    if at + width > len(data):
        return None
    value = int.from_bytes(data[at : at + width], "big")
    if not keep_marker:
        value &= (1 << (7 * width)) - 1
    return value, width


def _avi_end(head: bytes) -> int | None:
    declared = int.from_bytes(head[4:8], "little")
    return None if declared in _AVI_UNSET else 8 + declared


def flv_last_video_ms(size: int, read_at: Callable[[int, int], bytes]) -> int | None:
    """When an FLV's last video frame is presented, in ms: the latest of its last
    ``_FLV_REORDER`` video tags (stored in decode order), walking its tags back from the
    end (each is followed by its own size); None where no video tag is found. An FLV
    declares only its longest track's duration: a video shorter than its audio ends here.
    """
    end, stamps = size, []
    for _ in range(_FLV_TAGS_BACK):
        found = _flv_tag_ending_at(end, read_at, _FLV_TAG_HEADER + 5)
        if found is None:
            break
        start, tag = found
        if tag[0] & 0x1F == _FLV_VIDEO:
            stamp = int.from_bytes(tag[4:7], "big") | tag[7] << 24
            body = tag[_FLV_TAG_HEADER:]
            if len(body) == 5 and body[0] & 0x0F == _FLV_AVC_FRAME and body[1] == 1:
                stamp += int.from_bytes(body[2:5], "big", signed=True)
            stamps.append(stamp)
            if len(stamps) == _FLV_REORDER:
                break
        end = start
    return max(stamps, default=None)


def _flv_cut(size: int, read_at: Callable[[int, int], bytes]) -> str | None:
    """An FLV ends with its last tag's size; a cut one ends mid-tag, on arbitrary bytes."""
    if size <= _FLV_HEADER or _flv_tag_ending_at(size, read_at, _FLV_TAG_HEADER):
        return None  # (no tag at all: the demuxer says what is wrong with that)
    return f"it ends part-way through a tag (the upload has {size} bytes)"


def _flv_tag_ending_at(
    end: int, read_at: Callable[[int, int], bytes], count: int
) -> tuple[int, bytes] | None:
    """The tag whose size is written just before ``end``: where it starts and its first
    ``count`` bytes; None where those bytes are not such a tag's."""
    last = int.from_bytes(read_at(end - 4, 4), "big")
    start = end - 4 - last
    if last <= _FLV_TAG_HEADER or start < _FLV_HEADER:
        return None
    tag = read_at(start, count)
    if (
        len(tag) < _FLV_TAG_HEADER
        or tag[0] & 0x1F not in _FLV_TAG_TYPES
        or int.from_bytes(tag[1:4], "big") != last - _FLV_TAG_HEADER
    ):
        return None
    return start, tag
