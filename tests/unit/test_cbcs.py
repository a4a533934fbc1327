"""cbcs common encryption of CMAF segments, checked against ffmpeg's own cbcs decryption
(mov demuxer ``-decryption_key``) on segments ffmpeg wrote with vidflow's muxing options."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflow.errors import TranscodeError
from workflow.keys import cbcs
from workflow.local.binaries import ffmpeg_binary
from workflow.media import cmaf, encode

KEY = bytes(range(16))
KEY_ID = "0123456789abcdef0123456789abcdef"
SOURCES = {
    "video": ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3", "-c:v", "libx264"],
    "audio": ["-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "aac"],
}


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per kind, a whole fragmented MP4 of one track, as the chunk jobs' muxer writes it
    (three fragments for the video: a keyframe every second)."""
    options = [
        arg
        for pair in encode.CMAF_FORMAT_OPTIONS.split(":")
        for arg in ("-" + pair.partition("=")[0], pair.partition("=")[2])
    ]
    made = {}
    for kind, source in SOURCES.items():
        made[kind] = tmp_path_factory.mktemp("cbcs") / f"{kind}.mp4"
        subprocess.run(
            [ffmpeg_binary(), "-loglevel", "error", *source, "-g", "25", *options,
             "-f", "mp4", str(made[kind])],
            check=True,
        )  # fmt: skip
    return made


@pytest.fixture(params=sorted(SOURCES))
def segment(request: pytest.FixtureRequest, segments: dict[str, Path]) -> Path:
    return segments[request.param]


def frames(path: Path, key: bytes | None) -> tuple[list[str], str]:
    """Each decoded frame's digest, and what ffmpeg said."""
    extra = [] if key is None else ["-decryption_key", key.hex()]
    run = subprocess.run(
        [ffmpeg_binary(), "-loglevel", "error", *extra, "-i", str(path), "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
    )
    digests = [line.rsplit(",", 1)[-1].strip() for line in run.stdout.splitlines()]
    return [d for d in digests if d and not d.startswith("#")], run.stderr


def protect(whole: bytes) -> tuple[bytes, bytes]:
    split = cmaf.split_segment(whole)
    init, track = cbcs.protect_init(split.init, KEY_ID)
    return init, cbcs.protect_fragments(split.media, track, KEY, KEY_ID)


def children(data: bytes, start: int = 0, end: int | None = None) -> Iterator[cmaf.Box]:
    """Every box under ``data[start:end]``, depth first, into sample entries too."""
    containers = cmaf.CONTAINERS | {b"sinf", b"schi", b"moof", b"traf"}
    for box in cmaf.boxes(data, start, end):
        yield box
        if box.kind in containers:
            yield from children(data, box.body.start, box.end)
        elif box.kind == b"stsd":
            yield from children(data, box.body.start + 8, box.end)
        elif box.kind in (b"encv", b"enca"):
            fixed = 78 if box.kind == b"encv" else 28
            yield from children(data, box.body.start + fixed, box.end)


def test_ffmpeg_decrypts_every_frame_exactly_with_the_key_only(
    segment: Path, tmp_path: Path
) -> None:
    clear, said = frames(segment, None)
    assert clear and not said
    init, media = protect(segment.read_bytes())
    protected = tmp_path / "protected.mp4"
    protected.write_bytes(init + media)
    # With the key, every frame decodes to the very same picture or sound
    assert frames(protected, KEY) == (clear, "")
    # Without it (or with another key) the samples are noise to the decoder
    for key in (None, os.urandom(16)):
        garbled, said = frames(protected, key)
        assert garbled != clear and said


def test_the_init_names_the_scheme_the_key_and_the_original_format(segment: Path) -> None:
    split = cmaf.split_segment(segment.read_bytes())
    init, _ = protect(segment.read_bytes())
    found = {box.kind: init[box.body] for box in children(init)}
    original = b"avc1" if b"encv" in found else b"mp4a"
    assert found[b"frma"] == original and original not in found
    assert found[b"schm"][4:8] == b"cbcs"
    tenc = found[b"tenc"]
    assert tenc[0] == 1  # version 1: the pattern is in it
    assert tenc[5] == (0x19 if original == b"avc1" else 0x10)
    assert tenc[6:8] == bytes([1, 0])  # protected; constant IV (no per-sample IV)
    assert tenc[8:24] == bytes.fromhex(KEY_ID)
    assert tenc[24] == 16 and tenc[25:41] == cbcs.constant_iv(KEY_ID)
    pssh = found[b"pssh"]
    assert pssh[4:20] == cbcs.COMMON_SYSTEM and pssh[24:40] == bytes.fromhex(KEY_ID)
    # Every chunk of an asset writes the same init, and the clear one is untouched
    assert protect(segment.read_bytes())[0] == init
    assert cmaf.split_segment(segment.read_bytes()).init == split.init


def test_video_keeps_nal_headers_clear_in_whole_block_subsamples(
    segments: dict[str, Path],
) -> None:
    split = cmaf.split_segment(segments["video"].read_bytes())
    _, track = cbcs.protect_init(split.init, KEY_ID)
    media = cbcs.protect_fragments(split.media, track, KEY, KEY_ID)
    senc = [media[b.body] for b in children(media) if b.kind == b"senc"]
    assert len(senc) == 3  # one per fragment: a keyframe every second of three
    sample_count = struct.unpack_from(">I", senc[0], 4)[0]
    assert sample_count == 25
    # The first sample (IDR): SEI and parameter sets clear; its slice's first bytes too
    (subsamples,) = struct.unpack_from(">H", senc[0], 8)
    pairs = [struct.unpack_from(">HI", senc[0], 10 + 6 * n) for n in range(subsamples)]
    assert all(protected % 16 == 0 for _, protected in pairs)
    assert pairs[0][0] >= 4 + cbcs.SLICE_CLEAR and pairs[0][1] > 0
    # Where the samples moved to is where ffmpeg reads them (the round trip above); and
    # the sizes in bytes are unchanged: only moof grew
    grown = len(media) - len(split.media)
    added = sum(b.end - b.start for b in children(media) if b.kind in (b"senc", b"saiz", b"saio"))
    assert grown == added


def test_what_cbcs_cannot_describe_is_a_named_error(segment: Path) -> None:
    split = cmaf.split_segment(segment.read_bytes())
    renamed = split.init.replace(b"avc1", b"vp09").replace(b"mp4a", b"Opus")
    with pytest.raises(TranscodeError, match="no rule for"):
        cbcs.protect_init(renamed, KEY_ID)
    _, track = cbcs.protect_init(split.init, KEY_ID)
    moof = next(b for b in cmaf.boxes(split.media) if b.kind == b"moof")
    with pytest.raises(TranscodeError, match="not followed by its mdat"):
        cbcs.protect_fragments(split.media[moof.start : moof.end], track, KEY, KEY_ID)
    with pytest.raises(TranscodeError, match="has no moof before it"):
        cbcs.protect_fragments(split.media[moof.end :], track, KEY, KEY_ID)


def test_the_iv_is_the_asset_s_own() -> None:
    other = hashlib.md5(b"x").hexdigest()
    assert cbcs.constant_iv(KEY_ID) == cbcs.constant_iv(KEY_ID) != cbcs.constant_iv(other)
    line = cbcs.key_line("https://k.example/keys/job-1")
    assert (
        line
        == '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="https://k.example/keys/job-1",KEYFORMAT="identity"'
    )


def test_a_sample_with_more_nal_units_than_saiz_can_size_is_a_named_error() -> None:
    # GIVEN a fragment whose one video sample holds 43 slices (43 subsamples: 260 bytes of
    # auxiliary information, where saiz has one byte per sample)
    sample = b"".join(struct.pack(">I", 60) + bytes([0x65]) + bytes(59) for _ in range(43))

    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(body), kind) + body

    def fragment(offset: int) -> bytes:
        tfhd = box(b"tfhd", struct.pack(">II", 0x020000, 1))  # default-base-is-moof
        trun = box(b"trun", struct.pack(">IIiI", 0x201, 1, offset, len(sample)))
        return box(b"moof", box(b"mfhd", bytes(8)) + box(b"traf", tfhd + trun))

    moof = fragment(len(fragment(0)) + 8)
    with pytest.raises(TranscodeError, match="more NAL units than cbcs can describe"):
        cbcs.protect_fragments(moof + box(b"mdat", sample), cbcs.Track(True, 4), KEY, KEY_ID)
