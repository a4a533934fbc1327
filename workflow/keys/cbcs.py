"""CMAF common encryption, scheme ``cbcs`` (ISO/IEC 23001-7 10.4): what HLS
``METHOD=SAMPLE-AES`` and DASH ``ContentProtection`` players decrypt with ClearKey (or,
given the same key through SPEKE, a commercial DRM system).

An init segment gains, per track, an ``encv``/``enca`` sample entry whose ``sinf`` names
the original format (``frma``), the scheme (``schm``) and the key (``tenc``: the key id,
the pattern, the constant IV), and a ``pssh`` of the common system (W3C ClearKey) naming
the key id. A fragment's samples are encrypted in place with AES-128-CBC, the IV
restarting at every subsample:

- video (H.264, vidflow's one video codec): each slice NAL unit keeps its length, header
  and the start of its slice header clear, and then one 16-byte block in ten is
  encrypted (pattern 1:9); other NAL units (parameter sets, SEI) stay clear. Each
  ``traf`` gains ``senc`` (the samples' subsamples), ``saiz`` and ``saio``, and its
  ``trun`` data offset moves by as much as the ``moof`` grew.
- audio (AAC): every whole block of every sample is encrypted (pattern 1:0).

The IV is constant per asset (derived from its key id), so every chunk of an asset
writes the same init and any retried chunk the same bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from workflow.errors import TranscodeError
from workflow.media.cmaf import CONTAINERS, Box, boxes

SCHEME = b"cbcs"
# The common PSSH system id (W3C "Common SystemID", what ClearKey reads key ids from).
COMMON_SYSTEM = bytes.fromhex("1077efecc0b24d02ace33c1e52e2fb4b")
BLOCK = 16
# Bytes of a slice NAL unit kept clear after its length field: its header and enough of
# the slice header for a decoder to parse it (Apple's SAMPLE-AES keeps 32).
SLICE_CLEAR = 32
_CLEAR_MAX = 0xFFFF  # a subsample's clear byte count is 16 bits

_VIDEO = {b"avc1", b"avc3"}
_AUDIO = {b"mp4a"}
# Bytes from a visual sample entry's start to its child boxes (ISO 14496-12 8.5.2.2).
_VISUAL_ENTRY = 8 + 78


def key_line(key_uri: str) -> str:
    """The ``EXT-X-KEY`` tag of a cbcs media playlist, for its init and every segment
    (their key id and IV are in the init segment); ``identity``: the URI answers the key."""
    return f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{key_uri}",KEYFORMAT="identity"'


def constant_iv(key_id: str) -> bytes:
    """The asset's constant IV: fixed by its key id, so every chunk writes the same one."""
    return hashlib.sha256(b"vidflow-cbcs-iv:" + bytes.fromhex(key_id)).digest()[:BLOCK]


@dataclass(frozen=True)
class Track:
    """What encrypting a track's fragments needs to know from its init segment."""

    video: bool
    length_size: int  # bytes of each NAL unit's length field (video)


def protect_init(init: bytes, key_id: str) -> tuple[bytes, Track]:
    """``init`` (``ftyp`` + ``moov`` of one track) as a cbcs-protected init, and what its
    fragments are encrypted by."""
    kid = bytes.fromhex(key_id)
    tracks: list[Track] = []

    def edit(data: bytes, box: Box) -> bytes | None:
        if box.kind == b"stsd":
            body, track = _protected_stsd(data, box, kid, constant_iv(key_id))
            tracks.append(track)
            return _box(b"stsd", body)
        if box.kind == b"moov":
            children = _rebuilt(data, box.body.start, box.end, edit)
            return _box(b"moov", children + _pssh(kid))
        return None

    protected = _rebuilt(init, 0, len(init), edit)
    if len(tracks) != 1:
        raise TranscodeError(f"a CMAF init segment has {len(tracks)} tracks, not one")
    return protected, tracks[0]


def protect_fragments(media: bytes, track: Track, key: bytes, key_id: str) -> bytes:
    """The ``moof``/``mdat`` pairs of ``media`` with their samples encrypted."""
    iv = constant_iv(key_id)
    out = []
    top = list(boxes(media))
    for index, box in enumerate(top):
        before = top[index - 1].kind if index else None
        if box.kind == b"moof":
            following = top[index + 1] if index + 1 < len(top) else None
            if following is None or following.kind != b"mdat":
                raise TranscodeError("a CMAF fragment's moof is not followed by its mdat")
            out.append(_protected_fragment(media, box, following, track, key, iv))
        elif box.kind == b"mdat" and before != b"moof":
            raise TranscodeError("a CMAF fragment's mdat has no moof before it")
        elif box.kind != b"mdat":
            out.append(media[box.start : box.end])
    return b"".join(out)


def _protected_stsd(data: bytes, stsd: Box, kid: bytes, iv: bytes) -> tuple[bytes, Track]:
    head = data[stsd.body.start : stsd.body.start + 8]  # version, flags, entry count
    entries = list(boxes(data, stsd.body.start + 8, stsd.end))
    if len(entries) != 1:
        raise TranscodeError(f"a CMAF track has {len(entries)} sample descriptions, not one")
    entry = entries[0]
    if entry.kind in _VIDEO:
        kind, pattern = b"encv", 0x19  # 1 block encrypted, 9 skipped
        track = Track(True, _length_size(data, entry))
    elif entry.kind in _AUDIO:
        kind, pattern = b"enca", 0x10  # every block (1:0; ffmpeg refuses 0:0)
        track = Track(False, 0)
    else:
        raise TranscodeError(f"cbcs encryption has no rule for {entry.kind.decode()} samples")
    tenc = _full_box(b"tenc", 1, 0, bytes([0, pattern, 1, 0]) + kid + bytes([len(iv)]) + iv)
    sinf = _box(
        b"sinf",
        _box(b"frma", entry.kind)
        + _full_box(b"schm", 0, 0, SCHEME + struct.pack(">I", 0x00010000))
        + _box(b"schi", tenc),
    )
    return head + _box(kind, data[entry.start + 8 : entry.end] + sinf), track


def _length_size(data: bytes, entry: Box) -> int:
    for child in boxes(data, entry.start + _VISUAL_ENTRY, entry.end):
        if child.kind == b"avcC":
            return int(data[child.body.start + 4] & 0b11) + 1
    raise TranscodeError(f"a {entry.kind.decode()} sample entry has no decoder configuration")


def _pssh(kid: bytes) -> bytes:
    body = COMMON_SYSTEM + struct.pack(">I", 1) + kid + struct.pack(">I", 0)  # no data
    return _full_box(b"pssh", 1, 0, body)


def _protected_fragment(
    data: bytes, moof: Box, mdat: Box, track: Track, key: bytes, iv: bytes
) -> bytes:
    children = list(boxes(data, moof.body.start, moof.end))
    trafs = [c for c in children if c.kind == b"traf"]
    if len(trafs) != 1:
        raise TranscodeError(f"a CMAF fragment has {len(trafs)} track fragments, not one")
    traf = trafs[0]
    parts = {c.kind: c for c in boxes(data, traf.body.start, traf.end)}
    if b"tfhd" not in parts or b"trun" not in parts:
        raise TranscodeError("a CMAF track fragment lacks its tfhd or trun")
    sizes, data_offset, offset_at = _sample_sizes(data, parts[b"tfhd"], parts[b"trun"])
    start = moof.start + data_offset
    if start < mdat.body.start or start + sum(sizes) > mdat.end:
        raise TranscodeError("a CMAF fragment's samples lie outside its mdat")
    samples, subsamples = [], []
    for size in sizes:
        sample = bytearray(data[start : start + size])
        ranges = _video_ranges(sample, track) if track.video else _whole_blocks(size)
        _encrypt_ranges(sample, ranges, key, iv, skip=9 if track.video else 0)
        samples.append(bytes(sample))
        subsamples.append(ranges)
        start += size
    senc_body = struct.pack(">I", len(sizes)) + b"".join(
        struct.pack(">H", len(r)) + b"".join(struct.pack(">HI", *pair) for pair in r)
        for r in subsamples
    )
    info = [6 * len(r) + 2 for r in subsamples]
    if any(v >= 0x100 for v in info):  # saiz sizes are one byte each
        raise TranscodeError("a video sample has more NAL units than cbcs can describe")
    if moof.header != 8 or traf.header != 8:
        raise TranscodeError("a CMAF fragment is too large to protect")
    saiz = _full_box(b"saiz", 0, 0, bytes([0]) + struct.pack(">I", len(info)) + bytes(info))
    senc = _full_box(b"senc", 0, 2, senc_body)  # flags 2: subsamples
    saio_size = 8 + 4 + 4 + 4
    # Where senc's first sample entry will be, from the moof's start (default-base-is-moof).
    before_traf = sum(c.end - c.start for c in children if c.start < traf.start)
    traf_body = traf.end - traf.body.start
    senc_entries = 8 + before_traf + 8 + traf_body + len(saiz) + saio_size + 12 + 4
    saio = _full_box(b"saio", 0, 0, struct.pack(">II", 1, senc_entries))
    grown = len(saiz) + len(saio) + len(senc)
    body = bytearray(data[traf.body.start : traf.end])
    at = offset_at - traf.body.start
    body[at : at + 4] = struct.pack(">i", data_offset + grown)
    new_traf = _box(b"traf", bytes(body) + saiz + saio + senc)
    new_moof = _box(
        b"moof", b"".join(new_traf if c is traf else data[c.start : c.end] for c in children)
    )
    mdat_bytes = bytearray(data[mdat.start : mdat.end])
    first = moof.start + data_offset - mdat.start
    mdat_bytes[first : first + sum(sizes)] = b"".join(samples)
    return new_moof + bytes(mdat_bytes)


def _sample_sizes(data: bytes, tfhd: Box, trun: Box) -> tuple[list[int], int, int]:
    """The fragment's sample sizes, its data offset, and where in ``data`` that offset is."""
    (tf_flags,) = struct.unpack_from(">I", data, tfhd.body.start)
    tf_flags &= 0xFFFFFF
    if tf_flags & 0x1 or not tf_flags & 0x20000:
        raise TranscodeError("a CMAF fragment's offsets are not relative to its moof")
    at = tfhd.body.start + 8  # version/flags, track id
    at += 4 if tf_flags & 0x2 else 0
    at += 4 if tf_flags & 0x8 else 0
    default_size = struct.unpack_from(">I", data, at)[0] if tf_flags & 0x10 else None
    (flags,) = struct.unpack_from(">I", data, trun.body.start)
    flags &= 0xFFFFFF
    (count,) = struct.unpack_from(">I", data, trun.body.start + 4)
    if not flags & 0x1:
        raise TranscodeError("a CMAF fragment's trun has no data offset")
    offset_at = trun.body.start + 8
    (data_offset,) = struct.unpack_from(">i", data, offset_at)
    at = offset_at + 4 + (4 if flags & 0x4 else 0)
    fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
    sizes = []
    for _ in range(count):
        values = struct.unpack_from(">" + "I" * len(fields), data, at)
        row = dict(zip(fields, values, strict=True))
        at += 4 * len(fields)
        size = row.get(0x200, default_size)
        if size is None:
            raise TranscodeError("a CMAF fragment does not say its sample sizes")
        sizes.append(size)
    return sizes, data_offset, offset_at


def _video_ranges(sample: bytearray, track: Track) -> list[tuple[int, int]]:
    """A video sample's subsamples (clear bytes, protected bytes): each slice NAL unit
    protected after its first ``SLICE_CLEAR`` bytes, in whole blocks."""
    ranges: list[tuple[int, int]] = []
    clear, at = 0, 0
    while at < len(sample):
        if at + track.length_size > len(sample):
            raise TranscodeError("a video sample ends inside a NAL unit length")
        size = int.from_bytes(sample[at : at + track.length_size], "big")
        body = at + track.length_size
        if body + size > len(sample):
            raise TranscodeError("a video sample's NAL unit runs past its end")
        protected = 0
        # H.264 coded slices (types 1 to 5, IDR included); never parameter sets or SEI
        if size >= SLICE_CLEAR + BLOCK and 1 <= sample[body] & 0x1F <= 5:
            protected = (size - SLICE_CLEAR) // BLOCK * BLOCK
        clear += track.length_size + size - protected
        if protected:
            while clear > _CLEAR_MAX:
                ranges.append((_CLEAR_MAX, 0))
                clear -= _CLEAR_MAX
            ranges.append((clear, protected))
            clear = 0
        at = body + size
    while clear:
        ranges.append((min(clear, _CLEAR_MAX), 0))
        clear -= ranges[-1][0]
    return ranges


def _whole_blocks(size: int) -> list[tuple[int, int]]:
    """An audio sample as one subsample: the partial block first and clear, then every
    whole block protected."""
    return [(size % BLOCK, size - size % BLOCK)]


def _encrypt_ranges(
    sample: bytearray, ranges: list[tuple[int, int]], key: bytes, iv: bytes, skip: int
) -> None:
    """Encrypt each subsample's protected bytes in place: one CBC chain per subsample
    from ``iv``, over one block in every ``1 + skip``."""
    at = 0
    for clear, protected in ranges:
        at += clear
        blocks = [at + n * BLOCK for n in range(0, protected // BLOCK, 1 + skip)]
        if blocks:
            plain = b"".join(sample[b : b + BLOCK] for b in blocks)
            encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
            sealed = encryptor.update(plain) + encryptor.finalize()
            for n, b in enumerate(blocks):
                sample[b : b + BLOCK] = sealed[n * BLOCK : (n + 1) * BLOCK]
        at += protected


Edit = Callable[[bytes, Box], "bytes | None"]


def _rebuilt(data: bytes, start: int, end: int, edit: Edit) -> bytes:
    """The boxes of ``data[start:end]`` with ``edit``'s replacements, containers
    (``cmaf.CONTAINERS``) rebuilt around their edited children, sizes and all."""
    out = []
    for box in boxes(data, start, end):
        replaced = edit(data, box)
        if replaced is not None:
            out.append(replaced)
        elif box.kind in CONTAINERS:
            out.append(_box(box.kind, _rebuilt(data, box.body.start, box.end, edit)))
        else:
            out.append(data[box.start : box.end])
    return b"".join(out)


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version << 24 | flags) + body)


def encrypt_rung(init: Path, fragments: list[Path], key: bytes, key_id: str) -> None:
    """Protect a rung's init segment and its fragments in place."""
    protected, track = protect_init(init.read_bytes(), key_id)
    init.write_bytes(protected)
    for path in fragments:
        path.write_bytes(protect_fragments(path.read_bytes(), track, key, key_id))
