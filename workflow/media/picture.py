"""What every picture made from a source starts from: its frames as decoded, told the
colour the source leaves unsaid, made whole where the source is interlaced and brought
to SDR where it is HDR; and the range every rung is made in.

The rungs, the images and the quality scores' reference all take these filters first, so
a score compares a rung with the picture it was made from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# A filter: its name and options, as ffmpeg-python's ``filter`` takes them.
Filter = tuple[str, dict[str, str]]

# Each frame the decoder flags interlaced (a 1080i broadcast feed) is made one whole
# frame, the same number of frames out as in.
DEINTERLACE: Filter = ("bwdif", {"mode": "send_frame", "parity": "auto", "deint": "interlaced"})

# The range every rung is made in, and its scores' reference scaled to: limited, as
# players expect (a full-range source, a phone's or a webcam's, is converted).
RUNG_RANGE = "tv"

# An HDR source's transfer, as the probe names it, from the codec's ``color_trc``.
HDR_TRANSFERS = {16: "pq", 18: "hlg"}
_ZSCALE_TRANSFER = {"pq": "smpte2084", "hlg": "arib-std-b67"}
# The light an HDR picture's reference (diffuse) white is given, in nits (ITU-R BT.2408):
# it becomes SDR's white, and what is brighter is rolled off by the tone curve.
REFERENCE_WHITE_NITS = "203"


def tone_map(hdr: str) -> tuple[Filter, ...]:
    """BT.2020 PQ or HLG to BT.709 SDR, in linear light: without it an 8-bit H.264 rung
    carries the HDR signal as it is, washed out and grey on every SDR screen, under tags
    a player cannot honour in H.264. ``mobius`` keeps what is darker than its knee as it
    is and rolls the highlights off; the primaries are taken as BT.2020's, as PQ and HLG
    video's are (a phone's HLG, an HDR10 master)."""
    if hdr not in _ZSCALE_TRANSFER:
        raise ValueError(f"no tone map from {hdr!r}: only {sorted(_ZSCALE_TRANSFER)}")
    linear = {
        "tin": _ZSCALE_TRANSFER[hdr],
        "pin": "2020",
        "min": "2020_ncl",
        "t": "linear",
        "npl": REFERENCE_WHITE_NITS,
    }
    return (
        ("zscale", linear),
        ("format", {"pix_fmts": "gbrpf32le"}),
        ("zscale", {"p": "709"}),
        ("tonemap", {"tonemap": "mobius", "desat": "0"}),
        # Back to the 8-bit 4:2:0 the rungs are made of, once for them all.
        ("zscale", {"t": "709", "m": "709", "r": RUNG_RANGE}),
        ("format", {"pix_fmts": "yuv420p"}),
    )


# How ffmpeg numbers a colour property its source leaves unsaid (AVCOL_*_UNSPECIFIED).
UNSPECIFIED = 2
# ffmpeg's numbers for the matrices that say which family a picture is of.
_HD_MATRIX, _SD_MATRICES = 1, (5, 6)


def assumed_colour(height: int, given: dict[str, int]) -> dict[str, str]:
    """The colour properties a picture ``height`` lines high leaves unsaid (``given``,
    ffmpeg's numbers by ``setparams`` name), as players take them: of the family its
    matrix names, if it names BT.709 or BT.601; else BT.709 above 576 lines and BT.601
    (NTSC's, PAL's primaries at 576) at or below. Said in every rung, they keep an HD
    source's colours in its SD rungs, which a player would otherwise decode as BT.601
    (Apple's do, by the rung's size)."""
    matrix = given["colorspace"]
    hd = matrix == _HD_MATRIX if matrix in (_HD_MATRIX, *_SD_MATRICES) else height > 576
    conventional = {
        "colorspace": "bt709" if hd else "smpte170m",
        "color_primaries": "bt709" if hd else "bt470bg" if height == 576 else "smpte170m",
        "color_trc": "bt709" if hd else "smpte170m",
    }
    return {name: value for name, value in conventional.items() if given[name] == UNSPECIFIED}


class Picture(Protocol):
    """What a probe found about a source's picture (``SourceFacts``, a live segment's)."""

    @property
    def interlaced(self) -> bool: ...

    @property
    def hdr(self) -> str | None: ...

    @property
    def assumed_colour(self) -> dict[str, str]: ...


def source_filters(source: Picture, *, deinterlace: bool = True) -> tuple[Filter, ...]:
    """The filters ``source``'s decoded frames go through before anything is made of them:
    the colour it leaves unsaid said, then deinterlaced, then tone-mapped, as it needs;
    without ``deinterlace`` (frames that are not consecutive: keyframes alone), no
    deinterlacer."""
    said: tuple[Filter, ...] = ()
    if source.assumed_colour:
        said = (("setparams", dict(source.assumed_colour)),)
    fields = (DEINTERLACE,) if deinterlace and source.interlaced else ()
    return said + fields + (tone_map(source.hdr) if source.hdr else ())


def chain(filters: Sequence[Filter]) -> str:
    """``filters`` as the start of a filter graph's chain: ``name=k=v:k=v,`` each."""
    return "".join(
        f"{name}={':'.join(f'{key}={value}' for key, value in options.items())},"
        for name, options in filters
    )


def applied(stream: Any, filters: Sequence[Filter]) -> Any:
    """An ffmpeg-python ``stream`` taken through ``filters``."""
    for name, options in filters:
        stream = stream.filter(name, **options)
    return stream
