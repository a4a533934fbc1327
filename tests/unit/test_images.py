"""Thumbnails, sprite sheets, the VTT sprite map and the poster for one video.

Command lines, grids, the VTT map and the poster choice, without running anything; the
images from real ffmpeg runs are tests/functional/test_images_ffmpeg.py's.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from workflow.media.images import (
    STATS_FRAME_BYTES,
    build_images_command,
    choose_poster,
    image_pieces,
    poster_command,
    seekable,
    sprite_grid,
    thumbnail_count,
    thumbnails_vtt,
)
from workflow.media.sniff import ALLOWED_DEMUXERS

WORKDIR = Path("/tmp/vidflow-images")
PRESIGNED = "https://ingest.s3.amazonaws.com/uploads/clip.mp4?X-Amz-Signature=abc"
CUE = re.compile(
    r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n"
    r"(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)\n"
)


def images_command(**overrides: object) -> list[str]:
    options: dict[str, Any] = dict(
        source=PRESIGNED,
        demuxer="mov",
        start=1.5,
        duration=24.0,
        workdir=WORKDIR,
        interval=5.0,
        thumb_width=160,
        binary="/opt/bin/ffmpeg",
    )
    options.update(overrides)
    return build_images_command(**options)


def input_options(args: list[str]) -> dict[str, str | None]:
    """Options before ``-i``; a bare flag maps to None."""
    before = args[1 : args.index("-i")]
    options: dict[str, str | None] = {}
    i = 0
    while i < len(before):
        value = before[i + 1] if i + 1 < len(before) else "-"
        if value.startswith("-") and not re.fullmatch(r"-\d.*", value):
            options[before[i]], i = None, i + 1
        else:
            options[before[i]], i = value, i + 2
    return options


def filters(args: list[str]) -> dict[str, dict[str, str]]:
    """Each filter of the graph by name, with its options (positional ones as ``0``, ``1``)."""
    graph = args[args.index("-filter_complex") + 1]
    found: dict[str, dict[str, str]] = {}
    for statement in graph.split(";"):
        spec = re.sub(r"\[[^\]]*\]", "", statement)
        name, _, text = spec.partition("=")
        parts = re.split(r"(?<!\\):", text) if text else []
        options: dict[str, str] = {}
        for position, part in enumerate(parts):
            key, eq, value = part.partition("=")
            options.update({key: value} if eq else {str(position): part})
        found.setdefault(name, options)
    return found


def output_options(args: list[str], path_suffix: str) -> dict[str, str]:
    """Options of the output whose path ends in ``path_suffix``."""
    (index,) = [i for i, a in enumerate(args) if a.endswith(path_suffix)]
    start = max(i for i, a in enumerate(args[:index]) if a == "-map")
    block = args[start:index]
    return dict(zip(block[::2], block[1::2], strict=True))


# Commands, without running ffmpeg.


@pytest.mark.parametrize("demuxer", ALLOWED_DEMUXERS)
def test_the_source_is_read_once_keyframes_only_with_its_demuxer(demuxer: str) -> None:
    # GIVEN a presigned source and the demuxer the probe chose
    # WHEN the images command is built
    args = images_command(demuxer=demuxer)
    options = input_options(args)

    # THEN the binary is the one given, there is one input, and only keyframes are decoded
    assert args[0] == "/opt/bin/ffmpeg"
    assert args.count("-i") == 1
    assert args[args.index("-i") + 1] == PRESIGNED
    assert options["-f"] == demuxer
    assert options["-protocol_whitelist"] == "https,tls,tcp"
    assert options["-skip_frame"] == "nokey"
    assert "-copyts" in args


@pytest.mark.parametrize("demuxer", ["hls", "concat", "lavfi", ""])
def test_a_demuxer_outside_the_allow_list_is_refused(demuxer: str) -> None:
    # GIVEN a demuxer vidflow does not allow
    # WHEN / THEN neither command is built
    with pytest.raises(ValueError):
        images_command(demuxer=demuxer)
    with pytest.raises(ValueError):
        poster_command("/data/x", demuxer, 3.0, 640, 360, WORKDIR / "poster.jpg")


def test_ticks_count_from_the_first_keyframe_and_take_the_frame_before_them() -> None:
    # GIVEN a video whose first keyframe is at 1.5 s, 24 s long, sampled every 5 s
    # WHEN the images command is built
    chain = filters(images_command())

    # THEN timestamps are shifted to the first keyframe (less a millisecond's tolerance),
    # ticks every 5 s take the latest frame at or before them, and there are 5 ticks
    assert chain["setpts"]["0"] == r"max(PTS-1.501000/TB\,0)"
    assert chain["fps"] == {"fps": "1/5.000000", "round": "up", "start_time": "0"}
    assert chain["tpad"]["stop_mode"] == "clone"
    assert chain["trim"] == {"end_frame": "5"}


def test_thumbnails_sprites_and_stats_are_written_from_the_same_frames() -> None:
    # GIVEN 1000 s sampled every 2 s at 160 px
    # WHEN the images command is built
    args = images_command(duration=1000.0, interval=2.0)
    chain = filters(args)

    # THEN thumbnails keep the display aspect with square pixels, sheets are 10x10,
    # and the stats are 32x18 grey bytes
    assert chain["scale"]["w"] == "160"
    assert "dar" in chain["scale"]["h"]
    assert chain["setsar"] == {"0": "1"}
    assert chain["tile"]["0"] == "10x10"
    thumbs = output_options(args, "thumbnails/%05d.jpg")
    sprites = output_options(args, "sprites/%03d.jpg")
    stats = output_options(args, "stats.gray")
    assert thumbs["-start_number"] == sprites["-start_number"] == "0"
    assert thumbs["-q:v"] == "3"
    assert stats["-f"] == "rawvideo"
    assert stats["-pix_fmt"] == "gray"
    assert args[args.index("-filter_complex") + 1].count("split=3") == 1


@pytest.mark.parametrize(
    ("count", "pieces"),
    [
        (1, [(0, 1)]),
        (100, [(0, 100)]),
        (101, [(0, 100), (100, 1)]),
        (720, [*((k * 100, 100) for k in range(7)), (700, 20)]),
    ],
)
def test_the_images_are_made_in_pieces_of_one_sprite_sheet(
    count: int, pieces: list[tuple[int, int]]
) -> None:
    # an hour sampled every 5 s is 720 ticks: 8 pieces of at most 500 s of video
    assert image_pieces(count) == pieces


@pytest.mark.parametrize(
    ("demuxer", "keyframes", "pieces"),
    [("mov", 1800, 8), ("matroska", 900, 8), ("mpegts", 0, 8), ("mpeg", 0, 8),
     ("flv", 0, 1), ("matroska", 0, 1), ("avi", 0, 1)],
)  # fmt: skip
def test_a_source_without_an_index_or_bisection_is_one_piece(
    demuxer: str, keyframes: int, pieces: int
) -> None:
    # an hour at 5 s; FLV, Matroska without cues and AVI without idx1 seek by reading
    # from the start, so each piece would read all before its own part
    assert len(image_pieces(720, seekable(demuxer, keyframes))) == pieces
    assert image_pieces(720, seekable=False) == [(0, 720)]


@pytest.mark.parametrize("demuxer", ["mov", "mpegts"])
def test_a_later_piece_seeks_to_its_first_tick_and_numbers_from_it(demuxer: str) -> None:
    # GIVEN 1000 s from a first keyframe at 1.5 s, sampled every 2 s: 500 ticks, 10x10 sheets
    # WHEN the command for the piece of ticks 200-299 is built
    args = images_command(demuxer=demuxer, duration=1000.0, interval=2.0, first=200, ticks=100)
    options, chain = input_options(args), filters(args)

    # THEN it seeks by the source's own timestamps to tick 200 (401.5 s), 10 s earlier
    # where the demuxer bisects, and keeps keyframes only
    expected = {"mov": "401.501000", "mpegts": "391.501000"}[demuxer]
    assert options["-ss"] == expected
    assert options["-seek_timestamp"] == "1"
    assert "-noaccurate_seek" in options
    assert options["-skip_frame"] == "nokey"
    # AND frames before tick 200 count as at it, 100 ticks are made, numbered from 200
    # and on sheet 2, and the time of the first frame decoded is written down
    graph = args[args.index("-filter_complex") + 1]
    assert chain["setpts"]["0"] == r"max(PTS-401.501000/TB\,0)"
    assert "trim=end_frame=100" in graph
    assert f"metadata=file={WORKDIR}/first-frame.txt:mode=print" in graph
    assert output_options(args, "thumbnails/%05d.jpg")["-start_number"] == "200"
    assert output_options(args, "sprites/%03d.jpg")["-start_number"] == "2"


def test_the_first_piece_reads_from_the_start() -> None:
    args = images_command(duration=1000.0, interval=2.0, first=0, ticks=100)
    assert "-ss" not in input_options(args)
    assert filters(args)["trim"] == {"end_frame": "100"}
    assert "first-frame" not in args[args.index("-filter_complex") + 1]


@pytest.mark.parametrize(("back", "seek"), [(50.0, "351.501000"), (400.001, None), (1e6, None)])
def test_a_piece_made_again_seeks_further_back_down_to_the_start(
    back: float, seek: str | None
) -> None:
    # GIVEN tick 200 at 401.501 s: a seek 400.001 s or more before it is the start (1.5 s)
    args = images_command(duration=1000.0, interval=2.0, first=200, ticks=100, back=back)

    # THEN it seeks that far back, or reads from the start with nothing to check
    assert input_options(args).get("-ss") == seek
    assert ("first-frame" in args[args.index("-filter_complex") + 1]) == (seek is not None)


@pytest.mark.parametrize(("first", "ticks"), [(50, 50), (100, 0), (400, 101), (500, 1), (-100, 1)])
def test_a_piece_that_is_not_whole_sheets_of_the_ticks_is_refused(first: int, ticks: int) -> None:
    # 500 ticks in sheets of 100
    with pytest.raises(ValueError, match="not a piece"):
        images_command(duration=1000.0, interval=2.0, first=first, ticks=ticks)


@pytest.mark.parametrize("width", [15, 161, 0])
def test_a_thumbnail_width_that_is_odd_or_tiny_is_refused(width: int) -> None:
    with pytest.raises(ValueError):
        images_command(thumb_width=width)


@pytest.mark.parametrize(
    ("duration", "interval", "count"),
    [
        (24.0, 5.0, 5),
        (25.0, 5.0, 5),
        (25.01, 5.0, 6),
        (25.001, 5.0, 6),
        (0.5, 10.0, 1),
        (0.04, 1.0, 1),
        (24.0000001, 4.0, 6),
        (67.000267, 1.0, 67),
    ],
)
def test_one_thumbnail_per_started_interval(duration: float, interval: float, count: int) -> None:
    assert thumbnail_count(duration, interval) == count


@pytest.mark.parametrize("frames", [1, 2, 299, 2008, 5005, 7013, 107892])
def test_every_cue_of_a_2997_fps_video_lasts_at_least_a_millisecond(frames: int) -> None:
    # GIVEN a 29.97 fps video whose last frame ends a fraction of a millisecond past a tick
    duration = frames * 1001 / 30000

    # WHEN its sprite map is written at one thumbnail a second
    parsed = cues(thumbnails_vtt(thumbnail_count(duration, 1.0), 1.0, duration, 160, 90))

    # THEN every cue, as a player reads it, ends after it begins, the last with the video
    assert all(end > begin for begin, end, *_ in parsed)
    assert parsed[-1][1] == pytest.approx(round(duration, 3))


@pytest.mark.parametrize(
    ("count", "grid"), [(1, (1, 1)), (5, (5, 1)), (15, (10, 2)), (100, (10, 10)), (250, (10, 10))]
)
def test_sprite_sheets_are_no_larger_than_needed(count: int, grid: tuple[int, int]) -> None:
    assert sprite_grid(count) == grid


def test_the_poster_seeks_by_the_sources_own_timestamps() -> None:
    # GIVEN an instant 12.5 s into the source's timeline
    # WHEN the poster command is built for an MP4
    args = poster_command(PRESIGNED, "mov", 12.5, 1280, 720, WORKDIR / "poster.jpg", binary="ff")
    options = input_options(args)

    # THEN the demuxer seeks to 12.5 s as a timestamp, and frames before it are dropped
    assert options["-ss"] == "12.500000"
    assert options["-seek_timestamp"] == "1"
    assert "-noaccurate_seek" in options
    assert filters(args)["trim"] == {"start": "12.500000"}
    assert filters(args)["scale"] == {"0": "1280", "1": "720"}
    assert output_options(args, "poster.jpg")["-frames:v"] == "1"


@pytest.mark.parametrize(("at", "seek"), [(12.5, "2.500000"), (6.0, None)])
def test_an_mpegts_poster_seeks_early_enough_to_find_a_keyframe(
    at: float, seek: str | None
) -> None:
    # GIVEN an MPEG-TS source, whose demuxer seeks by bisection, not by an index
    # WHEN the poster command is built
    options = input_options(poster_command("/data/x.ts", "mpegts", at, 640, 360, WORKDIR / "p.jpg"))

    # THEN it seeks ten seconds early, or not at all near the start
    assert options.get("-ss") == seek


@pytest.mark.parametrize(("at", "seek"), [(0.067, None), (0.5, "0.500000")])
def test_a_poster_at_the_videos_start_is_read_from_there_without_a_seek(
    at: float, seek: str | None
) -> None:
    # GIVEN an FLV whose first frame is 67 ms in (its B-frames' reorder delay)
    # WHEN its poster is the first frame, or one later
    args = poster_command("/data/x.flv", "flv", at, 640, 360, WORKDIR / "p.jpg", start=0.067)
    # THEN the first is read from the start (a seek to it may find no keyframe at or
    # before it), a later one is sought
    assert input_options(args).get("-ss") == seek


# The poster choice, on made-up grey frames.


def grey(mean: int, spread: int = 0) -> bytes:
    """One 32x18 frame: half at ``mean - spread``, half at ``mean + spread``."""
    half = STATS_FRAME_BYTES // 2
    return bytes([mean - spread] * half + [mean + spread] * half)


def test_the_poster_is_the_first_frame_neither_black_nor_blank() -> None:
    # GIVEN black, a flat grey slate, a dark frame with a small logo, then pictures
    logo = bytearray(grey(2))
    logo[:20] = b"\xff" * 20
    stats = grey(0) + grey(128) + bytes(logo) + grey(100, 40) + grey(110, 40)

    # WHEN / THEN the first picture is chosen
    assert choose_poster(stats, STATS_FRAME_BYTES) == 3


def test_a_fade_in_gives_way_to_the_frame_after_it() -> None:
    # GIVEN a first frame that passes the thresholds but is still fading in
    stats = grey(40, 15) + grey(100, 45) + grey(100, 45)

    # WHEN / THEN the next frame is chosen
    assert choose_poster(stats, STATS_FRAME_BYTES) == 1


def test_without_a_usable_frame_the_most_varied_is_chosen() -> None:
    # GIVEN only dark frames
    stats = grey(5, 2) + grey(10, 8) + grey(3)

    # WHEN / THEN the one with the widest spread
    assert choose_poster(stats, STATS_FRAME_BYTES) == 1


@pytest.mark.parametrize("stats", [b"", b"\x00" * (STATS_FRAME_BYTES + 1)])
def test_bytes_that_are_not_whole_frames_are_refused(stats: bytes) -> None:
    with pytest.raises(ValueError):
        choose_poster(stats, STATS_FRAME_BYTES)


# The VTT sprite map.


def cues(vtt: str) -> list[tuple[float, float, str, tuple[int, ...]]]:
    assert vtt.startswith("WEBVTT\n\n")
    found = []
    for m in CUE.finditer(vtt):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(x) for x in m.groups()[:8])
        found.append(
            (
                h1 * 3600 + m1 * 60 + s1 + ms1 / 1000,
                h2 * 3600 + m2 * 60 + s2 + ms2 / 1000,
                m.group(9),
                tuple(int(x) for x in m.groups()[9:]),
            )
        )
    assert len(found) == vtt.count(" --> ")
    return found


def test_the_vtt_points_each_cue_into_its_sheet() -> None:
    # GIVEN 250 thumbnails of 160x90, one every 20 s of a 4999.5 s video
    # WHEN the sprite map is written
    parsed = cues(thumbnails_vtt(250, 20.0, 4999.5, 160, 90))

    # THEN one cue per thumbnail, back to back, the last ending with the video
    assert len(parsed) == 250
    assert parsed[0][:2] == (0.0, 20.0)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parsed))
    assert parsed[-1][:2] == (4980.0, 4999.5)
    # AND cue 11 is row 1, column 1 of sheet 0; cue 111 the same cell of sheet 1
    assert parsed[11][2:] == ("sprites/000.jpg", (160, 90, 160, 90))
    assert parsed[111][2:] == ("sprites/001.jpg", (160, 90, 160, 90))
    assert parsed[249][2:] == ("sprites/002.jpg", (9 * 160, 4 * 90, 160, 90))


def test_vtt_timestamps_are_hours_minutes_seconds_milliseconds() -> None:
    # GIVEN a cue past the first hour, and a sprite URI the caller chose
    vtt = thumbnails_vtt(2, 3723.4567, 4000.0, 64, 36, 2, 1, sprite_uri=lambda i: f"s{i}.jpg")

    # THEN times are HH:MM:SS.mmm and the URI is the caller's
    assert "01:02:03.457 --> 01:06:40.000\ns0.jpg#xywh=64,0,64,36\n" in vtt
