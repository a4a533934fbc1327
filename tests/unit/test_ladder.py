"""The ABR ladder: rungs never exceed the source, keep its shape and stay even."""

from __future__ import annotations

import pytest

from workflow.errors import ConfigurationError
from workflow.media.ladder import (
    OWN_RUNG_ABOVE,
    Rendition,
    build_ladder,
    h264_level,
    parse_ladder,
)

LADDER = "1080:5000,720:2800,480:1400,360:800"
SIDES = (1080, 720, 480, 360)

SOURCES = [
    pytest.param(1920, 1080, id="1080p-landscape"),
    pytest.param(1080, 1920, id="1080p-portrait"),
    pytest.param(3840, 2160, id="2160p"),
    pytest.param(4096, 2304, id="largest-allowed"),
    pytest.param(1280, 720, id="720p"),
    pytest.param(720, 1280, id="720p-portrait"),
    pytest.param(1440, 1080, id="4-3"),
    pytest.param(1920, 800, id="scope"),
    pytest.param(1080, 1080, id="square"),
    pytest.param(854, 480, id="480p"),
    pytest.param(1918, 1078, id="cropped"),
    pytest.param(1170, 2532, id="phone-screen"),
    pytest.param(640, 480, id="vga"),
]


def _short_long(width: int, height: int) -> tuple[int, int]:
    return min(width, height), max(width, height)


@pytest.mark.parametrize(("width", "height"), SOURCES)
def test_every_rung_is_even_and_never_larger_than_the_source(width: int, height: int) -> None:
    # GIVEN a source of this display size
    # WHEN the default ladder is built for it
    rungs = build_ladder(width, height, 30.0, LADDER)

    # THEN every rung fits inside the source and has even dimensions (4:2:0 chroma)
    assert rungs
    for rung in rungs:
        assert rung.width % 2 == 0 and rung.height % 2 == 0, rung
        assert rung.width <= width and rung.height <= height, rung


@pytest.mark.parametrize(("width", "height"), SOURCES)
def test_every_rung_keeps_the_source_aspect_within_a_pixel(width: int, height: int) -> None:
    # GIVEN a source of this display size
    short, long_ = _short_long(width, height)

    # WHEN the ladder is built
    rungs = build_ladder(width, height, 30.0, LADDER)

    # THEN each rung keeps the orientation, and its long side is the one its short side
    # implies at the source's aspect ratio, give or take one pixel of rounding to even
    for rung in rungs:
        assert (rung.width >= rung.height) == (width >= height), rung
        r_short, r_long = _short_long(rung.width, rung.height)
        assert abs(r_long - r_short * long_ / short) <= 1.0, rung


@pytest.mark.parametrize(("width", "height"), SOURCES)
def test_rungs_are_the_spec_sides_that_fit_largest_first(width: int, height: int) -> None:
    # GIVEN a source whose short side is at least the smallest rung
    short, _ = _short_long(width, height)
    fitting = [side for side in SIDES if side <= short]
    own = [short] if short < SIDES[0] and short > fitting[0] * OWN_RUNG_ABOVE else []

    # WHEN the ladder is built
    rungs = build_ladder(width, height, 30.0, LADDER)

    # THEN exactly the rungs no larger than the source remain, named and sized by short
    # side, under one at the source's own size where it is well above the largest of them
    assert [r.name for r in rungs] == [f"{side}p" for side in own + fitting]
    assert [min(r.width, r.height) for r in rungs] == [s - s % 2 for s in own] + fitting
    assert [r.kbps for r in rungs][len(own) :] == [
        dict(zip(SIDES, (5000, 2800, 1400, 800), strict=True))[s] for s in fitting
    ]


@pytest.mark.parametrize(
    ("width", "height", "ladder", "top"),
    [
        # cropped a little from 1080p: kept 720p alone before
        (1918, 1078, LADDER, ("1078p", 1918, 1078, round(5000 * 1918 * 1078 / (1920 * 1080)))),
        # PAL 16:9, by the pixels 720p's bitrate is for (576/720 squared)
        (1024, 576, LADDER, ("576p", 1024, 576, 1792)),
        # a 2.40:1 film: by its pixels (1920x800 of 1080p's 1920x1080), not its short side
        (1920, 800, LADDER, ("800p", 1920, 800, 3704)),
        (639, 359, "360:800,240:400", ("359p", 638, 358, round(800 * 639 * 359 / (640 * 360)))),
        # a source next to a rung keeps that rung as its top: the same picture
        (1290, 726, LADDER, ("720p", 1280, 720, 2800)),
    ],
)
def test_a_source_between_two_rungs_keeps_its_own_size_as_its_top_rung(
    width: int, height: int, ladder: str, top: tuple[str, int, int, int]
) -> None:
    # WHEN the ladder is built for a source whose short side lies between two rungs
    rungs = build_ladder(width, height, 30.0, ladder)
    # THEN its top rung is its own size (floored to even), at the larger rung's bitrate
    # scaled to its pixels, above the rung under it
    assert (rungs[0].name, rungs[0].width, rungs[0].height, rungs[0].kbps) == top
    assert rungs[0].kbps >= rungs[1].kbps


def test_a_1080p_source_gets_the_familiar_16_9_sizes() -> None:
    # GIVEN a 1920x1080 source
    # WHEN the default ladder is built
    rungs = build_ladder(1920, 1080, 30.0, LADDER)

    # THEN the sizes are 16:9 with the long side rounded to the nearest even number
    # (480 * 16 / 9 = 853.3, the nearest even is 854)
    assert [(r.width, r.height) for r in rungs] == [
        (1920, 1080),
        (1280, 720),
        (854, 480),
        (640, 360),
    ]


def test_a_portrait_source_gets_portrait_rungs() -> None:
    # GIVEN a phone video held upright
    # WHEN the ladder is built
    rungs = build_ladder(1080, 1920, 30.0, LADDER)

    # THEN "720p" means 720 wide and 1280 tall
    assert [(r.width, r.height) for r in rungs] == [
        (1080, 1920),
        (720, 1280),
        (480, 854),
        (360, 640),
    ]


def test_a_720p_source_is_never_upscaled_to_1080p() -> None:
    # GIVEN a 1280x720 source
    # WHEN the ladder is built
    rungs = build_ladder(1280, 720, 30.0, LADDER)

    # THEN the 1080p rung is dropped and the largest rung is the source's own size
    assert "1080p" not in [r.name for r in rungs]
    assert (rungs[0].width, rungs[0].height) == (1280, 720)


@pytest.mark.parametrize(
    ("width", "height"),
    [(320, 180), (180, 320), (16, 16), (352, 288), (200, 100)],
)
def test_a_source_smaller_than_every_rung_gets_one_rung_at_its_own_size(
    width: int, height: int
) -> None:
    # GIVEN a source whose short side is below the smallest rung (360)
    # WHEN the ladder is built
    rungs = build_ladder(width, height, 30.0, LADDER)

    # THEN there is exactly one rung, at the source's own (even) size
    assert len(rungs) == 1
    (rung,) = rungs
    assert (rung.width, rung.height) == (width, height)
    assert rung.name == f"{min(width, height)}p"
    # and its bitrate is no more than the smallest rung's, and not absurdly low
    assert 64 <= rung.kbps <= 800


def test_a_small_rung_bitrate_follows_its_pixel_area() -> None:
    # GIVEN a 320x180 source: a quarter of the pixels of the 360p rung (800 kbps)
    # WHEN the ladder is built
    (rung,) = build_ladder(320, 180, 30.0, LADDER)

    # THEN it gets a quarter of that rung's bitrate
    assert rung.kbps == 200


@pytest.mark.parametrize(
    ("width", "height", "kbps"),
    [(1920, 120, 800), (120, 1920, 800), (4096, 64, 800), (960, 120, 400), (320, 240, 356)],
)
def test_a_very_wide_or_tall_small_source_gets_a_bitrate_for_its_pixels(
    width: int, height: int, kbps: int
) -> None:
    # GIVEN a banner below every rung by its short side, with as many pixels as the 360p
    # rung (1920x120 is 640x360's 230,400), or half as many, or an ordinary 4:3 source
    # WHEN the ladder is built
    (rung,) = build_ladder(width, height, 30.0, LADDER)
    # THEN its bitrate follows its pixels (the smallest rung's at most), where its short
    # side alone gave 1920x120 89 kbps (VMAF 50), and a 4:3 source's stays as it was
    assert rung.kbps == kbps


def test_a_small_source_with_odd_sides_is_not_upscaled() -> None:
    # GIVEN a source below every rung whose sides are odd
    # WHEN the ladder is built
    (rung,) = build_ladder(426, 239, 30.0, LADDER)

    # THEN its one rung is even and still no larger than the source
    assert rung.width % 2 == 0 and rung.height % 2 == 0
    assert rung.width <= 426 and rung.height <= 239


def test_a_rung_equal_to_the_source_height_is_not_wider_than_the_source() -> None:
    # GIVEN a 1283x720 source (odd width, e.g. after a crop)
    # WHEN the ladder is built
    rungs = build_ladder(1283, 720, 30.0, LADDER)

    # THEN no rung is wider than the source
    assert all(r.width <= 1283 for r in rungs), rungs


def test_parse_ladder_sorts_largest_first() -> None:
    # GIVEN a ladder written smallest first, with spaces
    # WHEN it is parsed
    rungs = parse_ladder(" 360:800, 1080:5000 ,720:2800")

    # THEN the rungs come back largest first
    assert rungs == [(1080, 5000), (720, 2800), (360, 800)]


@pytest.mark.parametrize(
    "spec",
    ["", "720", "720:", "720:fast", "720:2800,", "8:100", "720:0", "720:-5", "a:b:c",
     "720:2800,720:1500",
     # two rungs of one size once made even; a smaller rung costing as much or more
     "1080:5000,1079:4000", "360:200,180:900", "720:2800,480:2800"],
)  # fmt: skip
def test_a_malformed_ladder_is_a_configuration_error(spec: str) -> None:
    # GIVEN a LADDER value that is not side:kbps pairs in range
    # WHEN / THEN parsing it fails with the workflow's configuration error
    with pytest.raises(ConfigurationError):
        parse_ladder(spec)


@pytest.mark.parametrize(
    ("width", "height", "fps", "level"),
    [
        # H.264 Table A-1: (MaxMBPS, MaxFS) per level; 16x16 macroblocks
        (720, 480, 30.0, "3.0"),  # 1350 MB/frame, 40 500 MB/s: exactly level 3.0
        (1280, 720, 30.0, "3.1"),  # 3600 MB/frame: the 3.1 frame-size limit
        (1280, 720, 60.0, "3.2"),  # 216 000 MB/s: exactly level 3.2
        (1920, 1080, 30.0, "4.0"),  # 8160 MB/frame, 244 800 MB/s <= 245 760
        (1920, 1080, 60.0, "4.2"),  # 489 600 MB/s <= 522 240
        (3840, 2160, 30.0, "5.1"),  # 32 400 MB/frame, 972 000 MB/s <= 983 040
        (3840, 2160, 60.0, "5.2"),  # 1 944 000 MB/s <= 2 073 600
        (640, 360, 0.0, "3.0"),  # an unknown rate is treated as 1 fps
    ],
)
def test_h264_level_is_the_lowest_that_fits(
    width: int, height: int, fps: float, level: str
) -> None:
    # GIVEN a frame size and rate
    # WHEN the level is chosen
    # THEN it is the lowest level (3.0 upwards) whose limits it meets
    assert h264_level(width, height, fps) == level


@pytest.mark.parametrize(("width", "height"), [(3000, 200), (200, 3000)])
def test_h264_level_allows_a_very_long_side(width: int, height: int) -> None:
    # 188 macroblocks across: level 3.1 allows 169 (sqrt(8 x 3600)), 3.2 allows 202
    assert h264_level(width, height, 30.0) == "3.2"
    assert h264_level(2700, 200, 30.0) == "3.1"  # 169 across: 3.1 allows 169, 3.0 113


@pytest.mark.parametrize(
    ("kbps", "level"),
    [
        (5_000, "4.0"),  # the default top rung: its size decides
        (22_000, "4.1"),  # peak 24,200 fits 4.0's 25,000, a 44,000 kbit buffer does not
        (35_000, "4.1"),  # 38,500 peak and 70,000 kbit buffer: 4.1 holds 62,500/78,125
        (40_000, "5.0"),  # an 80,000 kbit buffer does not fit 4.1 or 4.2
        (160_000, "6.1"),  # 320,000 kbit of buffer: 5.1 to 6.0 hold 300,000
        (500_000, "6.2"),
    ],
)
def test_h264_level_allows_the_rungs_bitrate(kbps: int, level: str) -> None:
    # GIVEN a 1080p30 rung at a bitrate (its peak 1.1 and its VBV buffer 2 times it)
    # THEN the level allows its peak and its buffer, not only its size: a stream above
    # its signalled level's may be refused by a decoder
    assert h264_level(1920, 1080, 30.0, kbps) == level
    (rung,) = build_ladder(1920, 1080, 30.0, f"1080:{kbps}")
    assert rung.level == level


@pytest.mark.parametrize("spec", ["16:100", "31:100", "0:100"])
def test_a_rung_too_small_to_score_is_refused(spec: str) -> None:
    # (libvmaf, which scores every chunk's rungs, crashes on a picture 16 pixels across)
    with pytest.raises(ConfigurationError, match="sides from 32"):
        parse_ladder(spec)


@pytest.mark.parametrize("spec", ["360:500001", "360:99999999", "360:0"])
def test_a_bitrate_no_level_allows_is_refused(spec: str) -> None:
    # (360:99999999 reached ffmpeg, which failed: "Numerical result out of range")
    with pytest.raises(ConfigurationError, match="bitrates 1 to 500000 kbps"):
        parse_ladder(spec)


def test_h264_level_uses_level_6_0_for_4k_60() -> None:
    # GIVEN the largest allowed frame size at 60 fps
    # WHEN / THEN the lowest level that allows it, 6.0, is chosen
    assert h264_level(4096, 2304, 60.0) == "6.0"


@pytest.mark.parametrize(
    ("level", "codecs"),
    [
        ("3.0", "avc1.64001e"),
        ("3.1", "avc1.64001f"),
        ("4.0", "avc1.640028"),
        ("5.1", "avc1.640033"),
    ],
)
def test_codecs_string_is_rfc6381_high_profile_with_level(level: str, codecs: str) -> None:
    # GIVEN a High-profile rung at a level
    rung = Rendition("720p", 1280, 720, 2800, level)

    # WHEN / THEN its CODECS is avc1 + profile_idc 0x64 + constraints 00 + level_idc in hex
    assert rung.codecs == codecs


def test_rate_control_caps_are_above_the_target_bitrate() -> None:
    # GIVEN a rung at 2800 kbps
    rung = Rendition("720p", 1280, 720, 2800, "3.1")

    # WHEN / THEN the VBV cap allows a 10% peak (rounded up to a whole kbps) and
    # buffers two seconds at the target
    assert 3080 <= rung.maxrate_kbps <= 3081
    assert rung.bufsize_kbps == 5600


def test_a_rendition_survives_a_round_trip_through_a_dict() -> None:
    # GIVEN every rung of a ladder
    rungs = build_ladder(1920, 1080, 29.97, LADDER)

    # WHEN each goes through to_dict / from_dict (as it does through S3)
    # THEN it comes back equal
    assert [Rendition.from_dict(r.to_dict()) for r in rungs] == rungs
