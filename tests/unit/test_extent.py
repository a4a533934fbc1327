"""A file's length against its container's own account of it, from hand-built bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.media.extent import cut_short, flv_last_video_ms

EBML_HEADER = b"\x1a\x45\xdf\xa3\x84" + b"\x42\x86\x81\x01"  # EBMLVersion 1
VOID = b"\xec\x83\x00\x00\x00"
SEGMENT_ID = b"\x18\x53\x80\x67"


def matroska(body: bytes, *, size_field: bytes | None = None, void: bool = False) -> bytes:
    """An EBML header, optionally a Void, and a Segment holding ``body``."""
    size = size_field if size_field is not None else b"\x01" + len(body).to_bytes(7, "big")
    return EBML_HEADER + (VOID if void else b"") + SEGMENT_ID + size + body


def reader(data: bytes):  # type: ignore[no-untyped-def]
    return lambda offset, count: data[offset : offset + count]


def check(family: str, data: bytes, head: int = 64 * 1024) -> str | None:
    return cut_short(family, data[:head], len(data), reader(data))


@pytest.mark.parametrize("void", [False, True])
def test_matroska_is_held_to_its_segment_size(void: bool) -> None:
    # GIVEN a Matroska file whose Segment declares its size
    whole = matroska(b"\x1f\x43\xb6\x75" + b"\x00" * 500, void=void)
    # THEN the whole file passes, and one cut a byte short is named with both sizes
    assert check("matroska", whole) is None
    assert check("matroska", whole + b"junk after the segment") is None
    message = check("matroska", whole[:-1])
    assert message == f"its header declares {len(whole)} bytes and the upload has {len(whole) - 1}"


@pytest.mark.parametrize("width", range(1, 9))
def test_matroska_of_unknown_size_declares_nothing(width: int) -> None:
    # GIVEN a Segment whose size has every value bit set, at any width: a writer that
    # could not go back (a pipe, a killed recording)
    unknown = ((1 << (7 * width)) - 1 | (1 << (7 * width))).to_bytes(width, "big")
    data = matroska(b"\x00" * 100, size_field=unknown)
    # THEN whatever its length, it is not called cut
    assert check("matroska", data[:60]) is None


def test_matroska_whose_segment_is_past_the_head_is_not_judged() -> None:
    # GIVEN a Void larger than the head before the Segment
    big_void = b"\xec\x01" + (70000).to_bytes(7, "big") + b"\x00" * 70000
    data = EBML_HEADER + big_void + SEGMENT_ID + b"\x88" + b"\x00" * 10
    # THEN it says nothing rather than guess
    assert check("matroska", data[:-5]) is None


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_avi_placeholder_sizes_declare_nothing(declared: int) -> None:
    data = b"RIFF" + declared.to_bytes(4, "little") + b"AVI LIST" + b"\x00" * 100
    assert check("avi", data) is None


def test_avi_is_held_to_its_riff_size() -> None:
    body = b"AVI LIST" + b"\x00" * 1000
    whole = b"RIFF" + len(body).to_bytes(4, "little") + body
    assert check("avi", whole) is None
    assert check("avi", whole[:-100]) is not None


def flv(tags: list[tuple[int, int]]) -> tuple[bytes, list[int]]:
    """An FLV of (type, data size) tags, each followed by its size; and the tag ends."""
    data = b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"
    ends = []
    for kind, size in tags:
        tag = bytes([kind]) + size.to_bytes(3, "big") + b"\x00" * 7 + b"\x5a" * size
        data += tag + len(tag).to_bytes(4, "big")
        ends.append(len(data))
    return data, ends


TAGS = [(18, 300), (9, 5000), (8, 40), (9, 1200), (8, 40), (9, 70000)]


def test_a_whole_flv_passes() -> None:
    data, _ = flv(TAGS)
    assert check("flv", data) is None


@given(st.integers(min_value=14, max_value=len(flv(TAGS)[0]) - 1))
def test_an_flv_cut_anywhere_but_between_tags_is_named(cut: int) -> None:
    # GIVEN an FLV cut at any byte past its header
    data, ends = flv(TAGS)
    # THEN it is called cut, unless the cut falls exactly where a tag ended (which no
    # byte of the file can tell from a whole one)
    result = check("flv", data[:cut])
    assert (result is None) == (cut in ends)
    if result is not None:
        assert result == f"it ends part-way through a tag (the upload has {cut} bytes)"


def test_a_source_that_cannot_be_read_at_an_offset_is_not_judged_as_flv() -> None:
    data, _ = flv(TAGS)
    assert cut_short("flv", data[:100], len(data) - 10, None) is None


@pytest.mark.parametrize("family", ["mp4", "mpegts", "mpeg"])
def test_other_containers_are_not_judged_here(family: str) -> None:
    assert cut_short(family, b"\x00" * 200, 10, reader(b"\x00" * 10)) is None


def flv_of(tags: list[tuple[int, int, bytes]]) -> bytes:
    """An FLV of (type, timestamp ms, body) tags, each followed by its size."""
    data = b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"
    for kind, stamp, body in tags:
        stamped = (stamp & 0xFFFFFF).to_bytes(3, "big") + bytes([stamp >> 24])
        tag = bytes([kind]) + len(body).to_bytes(3, "big") + stamped + b"\x00" * 3 + body
        data += tag + len(tag).to_bytes(4, "big")
    return data


def avc(offset: int) -> bytes:
    """An H.264 frame's video tag body with its composition offset (ms)."""
    return b"\x27\x01" + offset.to_bytes(3, "big", signed=True) + b"\x00" * 20


def test_an_flvs_video_ends_at_its_latest_frame_not_its_last_tag() -> None:
    # GIVEN H.264 in decode order (I, P, B, B: the P shown after the Bs), then audio alone
    video = [(9, 0, avc(67)), (9, 33, avc(167)), (9, 67, avc(33)), (9, 100, avc(0))]
    audio = [(8, 100 + 21 * n, b"\xaf\x01" + b"\x00" * 30) for n in range(200)]
    data = flv_of(video + audio)
    # THEN the latest presented frame is found walking back over the audio: the P at 200
    assert flv_last_video_ms(len(data), reader(data)) == 200
    # AND a file with no video tag, or whose tail is not a tag, says nothing
    assert flv_last_video_ms(len(flv_of(audio)), reader(flv_of(audio))) is None
    assert flv_last_video_ms(len(data) - 3, reader(data[:-3])) is None
