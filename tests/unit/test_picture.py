"""The filters every picture made from a source starts from (``workflow.media.picture``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import ffmpeg
import pytest

from workflow.media import picture


@dataclass(frozen=True)
class _Source:
    interlaced: bool = False
    hdr: str | None = None
    assumed_colour: dict[str, str] = field(default_factory=dict)


def test_a_progressive_sdr_source_is_taken_as_decoded() -> None:
    assert picture.source_filters(_Source()) == ()
    assert picture.chain(()) == ""


@pytest.mark.parametrize(("hdr", "transfer"), [("pq", "smpte2084"), ("hlg", "arib-std-b67")])
def test_an_hdr_source_is_tone_mapped_to_bt709_sdr_in_8_bits(hdr: str, transfer: str) -> None:
    filters = picture.source_filters(_Source(hdr=hdr))
    names = [name for name, _ in filters]
    # linear light from the source's transfer, the tone curve, then BT.709 8-bit 4:2:0
    assert names[0] == "zscale" and filters[0][1]["tin"] == transfer
    assert filters[0][1]["t"] == "linear" and filters[0][1]["pin"] == "2020"
    assert names.index("tonemap") < len(names) - 2
    assert filters[-2] == ("zscale", {"t": "709", "m": "709", "r": "tv"})
    assert filters[-1] == ("format", {"pix_fmts": "yuv420p"})


def test_an_interlaced_hdr_source_is_deinterlaced_first_unless_its_frames_are_apart() -> None:
    source = _Source(interlaced=True, hdr="hlg")
    assert picture.source_filters(source)[0] == picture.DEINTERLACE
    assert picture.source_filters(source)[1:] == picture.tone_map("hlg")
    assert picture.source_filters(source, deinterlace=False) == picture.tone_map("hlg")


def test_an_unknown_transfer_is_refused() -> None:
    with pytest.raises(ValueError, match="no tone map from 'hdr10plus'"):
        picture.tone_map("hdr10plus")


def test_the_probe_names_only_the_hdr_transfers() -> None:
    # AVCOL_TRC_SMPTE2084 and AVCOL_TRC_ARIB_STD_B67; BT.709 (1) and BT.2020 10-bit SDR
    # (14) are not HDR
    assert picture.HDR_TRANSFERS == {16: "pq", 18: "hlg"}


def test_filters_read_the_same_as_a_graph_chain_and_as_ffmpeg_python_nodes() -> None:
    filters = picture.source_filters(_Source(interlaced=True, hdr="pq"))
    chain = picture.chain(filters)
    assert chain.startswith("bwdif=mode=send_frame:parity=auto:deint=interlaced,zscale=tin=")
    assert chain.endswith(",format=pix_fmts=yuv420p,")
    stream = picture.applied(ffmpeg.input("in.mp4").video, filters)
    args = ffmpeg.compile(stream.output("out.mp4"))
    graph = args[args.index("-filter_complex") + 1]
    nodes = [re.sub(r"\[\w+(:\w+)?\]", "", node) for node in graph.split(";")]
    assert [_sorted(node) for node in nodes] == [_sorted(f) for f in chain[:-1].split(",")]


def _sorted(node: str) -> tuple[str, list[str]]:
    name, _, options = node.partition("=")
    return name, sorted(options.split(":"))


UNSAID = {"colorspace": 2, "color_primaries": 2, "color_trc": 2}


@pytest.mark.parametrize(
    ("height", "matrix", "primaries"),
    [(1080, "bt709", "bt709"), (720, "bt709", "bt709"), (576, "smpte170m", "bt470bg"),
     (480, "smpte170m", "smpte170m"), (360, "smpte170m", "smpte170m")],
)  # fmt: skip
def test_an_untagged_picture_is_taken_as_players_take_it_by_its_size(
    height: int, matrix: str, primaries: str
) -> None:
    assumed = picture.assumed_colour(height, UNSAID)
    assert assumed["colorspace"] == matrix and assumed["color_primaries"] == primaries


def test_only_what_a_picture_leaves_unsaid_is_assumed_and_said_first() -> None:
    # GIVEN a 1080p source that names its matrix (BT.601, unusually) but nothing else
    assumed = picture.assumed_colour(1080, {**UNSAID, "colorspace": 6})
    # THEN the rest is of the matrix's family, not of its size
    assert assumed == {"color_primaries": "smpte170m", "color_trc": "smpte170m"}
    assert picture.assumed_colour(360, {**UNSAID, "colorspace": 1}) == {
        "color_primaries": "bt709",
        "color_trc": "bt709",
    }
    # THEN its frames are told the rest before anything else is done to them
    filters = picture.source_filters(_Source(interlaced=True, assumed_colour=assumed))
    assert filters[0] == ("setparams", assumed) and filters[1] == picture.DEINTERLACE
    # AND a source that says all of it is told nothing
    assert picture.assumed_colour(1080, {k: 1 for k in UNSAID}) == {}
