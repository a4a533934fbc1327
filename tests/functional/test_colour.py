"""What every rung says it is (its colour, its profile and level) against what it is."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import av
import pytest

from tests.functional.test_probe import _probe
from workflow.local.binaries import ffmpeg_binary
from workflow.local.template import load_template
from workflow.media import encode, picture, runner
from workflow.media.chunks import Chunk
from workflow.media.ladder import build_ladder


def _rung_colour(source: Path, facts: Any, workdir: Path) -> tuple[int, int, int]:
    """The colour properties of a 360p rung made of ``source``."""
    (rung,) = ladder = build_ladder(facts.display_width, facts.display_height, 30.0, "360:600")
    (workdir / rung.name).mkdir(parents=True)
    command = encode.build_chunk_command(
        str(source), "mov", 0.0, Chunk(0, 0.0, 2.0, 0, [0.0]), ladder, workdir, final=True,
        binary=ffmpeg_binary(), source_filters=picture.source_filters(facts),
    )  # fmt: skip
    runner.run_ffmpeg(command, 120)
    with av.open(str(next((workdir / rung.name).glob("seg_*")))) as container:
        c = container.streams.video[0].codec_context
        return c.colorspace, c.color_primaries, c.color_trc


@pytest.mark.parametrize(
    ("name", "colour"),
    [
        # HD that says nothing: its 360p rung says BT.709, which an SD rung is not
        # taken to be (without, it said nothing: (2, 2, 2))
        ("untagged_720p", (1, 1, 1)),
        # SD that says nothing: BT.601 (smpte170m), as players take it anyway
        ("h264_aac_2gop", (6, 6, 6)),
        # SD that says its matrix is BT.709 (and nothing else) is BT.709 throughout
        ("bt709_tagged", (1, 1, 1)),
    ],
)
def test_every_rung_says_the_colour_its_pixels_have(
    name: str, colour: tuple[int, int, int], clip: Any, tmp_path: Path
) -> None:
    source = clip(name)
    facts = _probe(source).facts
    assert _rung_colour(source, facts, tmp_path) == colour


def _x264_presets() -> list[str]:
    template = load_template(Path(__file__).parents[2] / "sam-template.yaml")
    return [str(p) for p in template["Parameters"]["X264Preset"]["AllowedValues"]]


@pytest.mark.parametrize("preset", _x264_presets())
def test_every_preset_makes_the_profile_and_level_the_playlists_name(
    preset: str, clip: Any, tmp_path: Path
) -> None:
    # GIVEN a rung encoded at any x264 preset the template lets an operator choose
    source = clip("half_second")
    facts = _probe(source).facts
    (rung,) = ladder = build_ladder(facts.display_width, facts.display_height, 30.0, "240:400")
    (tmp_path / rung.name).mkdir()
    command = encode.build_chunk_command(
        str(source), "mov", 0.0, Chunk(0, 0.0, 0.5, 0, [0.0]), ladder, tmp_path, final=True,
        binary=ffmpeg_binary(), preset=preset,
    )  # fmt: skip
    runner.run_ffmpeg(command, 120)
    # WHEN its first SPS is read (profile_idc, the constraint flags, level_idc)
    segment = tmp_path / rung.name / "seg_00000.ts"
    stream = subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-i", str(segment), "-c:v", "copy",
         "-f", "h264", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    sps = stream.index(b"\x00\x00\x01\x67") + 4
    # THEN it is the avc1.PPCCLL the playlists give as CODECS (ultrafast, which turns off
    # the 8x8 transform, made Constrained Baseline, avc1.42c0.., under avc1.6400.. High)
    assert f"avc1.{stream[sps : sps + 3].hex()}" == rung.codecs
