"""Thumbnails, sprite sheets, the VTT sprite map and the poster for one video.

Command lines are asserted without ffmpeg; the images themselves come from real ffmpeg
runs on clips of a few seconds at toy sizes, generated once per module (the brief for
this module asks for both here; the lot runs in a few seconds).
"""

from __future__ import annotations

import itertools
import re
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from workflow.errors import TranscodeError
from workflow.images import (
    BLACK_MEAN,
    STATS_FRAME_BYTES,
    Images,
    build_images_command,
    choose_poster,
    jpeg_size,
    make_images,
    poster_command,
    sprite_grid,
    thumbnail_count,
    thumbnails_vtt,
)
from workflow.local.binaries import ffmpeg_binary
from workflow.sources import ALLOWED_DEMUXERS

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
    assert chain["setpts"]["0"] == "PTS-1.501000/TB"
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


@pytest.mark.parametrize("width", [15, 161, 0])
def test_a_thumbnail_width_that_is_odd_or_tiny_is_refused(width: int) -> None:
    with pytest.raises(ValueError):
        images_command(thumb_width=width)


@pytest.mark.parametrize(
    ("duration", "interval", "count"),
    [(24.0, 5.0, 5), (25.0, 5.0, 5), (25.01, 5.0, 6), (0.5, 10.0, 1), (24.0000001, 4.0, 6)],
)
def test_one_thumbnail_per_started_interval(duration: float, interval: float, count: int) -> None:
    assert thumbnail_count(duration, interval) == count


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


# Real ffmpeg on generated clips.

MakeClip = Callable[..., Path]
RAMP = "nullsrc=s=64x36:r=10:d={d},geq=lum='N':cb=128:cr=128"


@pytest.fixture(scope="module")
def make_clip(tmp_path_factory: pytest.TempPathFactory) -> MakeClip:
    """``make_clip(name, lavfi, *options)``: encode a lavfi graph with x264, once."""
    directory = tmp_path_factory.mktemp("image-clips")

    def make(name: str, graph: str, *options: str, remux: tuple[str, ...] = ()) -> Path:
        target = directory / name
        if not target.exists():
            base = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y"]
            encode = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
            made = target.with_name(f"encoded-{name}") if remux else target
            subprocess.run(
                [*base, "-f", "lavfi", "-i", graph, *encode, *options, str(made)], check=True
            )
            if remux:
                subprocess.run(
                    [*base, *remux, "-i", str(made), "-c", "copy", str(target)], check=True
                )
        return target

    return make


def ramp_levels(stats: bytes) -> list[int]:
    """The frame number each grey frame of a luma ramp (Y = frame number) shows."""
    means = [
        float(np.frombuffer(stats[i : i + STATS_FRAME_BYTES], np.uint8).mean())
        for i in range(0, len(stats), STATS_FRAME_BYTES)
    ]
    # ffmpeg's gray is full range: limited-range Y maps to (Y - 16) * 255 / 219.
    return [round(m * 219 / 255 + 16) for m in means]


def decoded(path: Path) -> tuple[int, int, float]:
    """Width, height and mean luma (0-255) of an image."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height, float(frame.to_ndarray(format="gray").mean())


def images(clip: Path, workdir: Path, start: float, duration: float, **options: Any) -> Images:
    settings: dict[str, Any] = dict(interval=5.0, thumb_width=32, poster_size=(64, 36), timeout=60)
    settings.update(options)
    demuxer = "mpegts" if clip.suffix == ".ts" else "mov"
    return make_images(
        str(clip), demuxer, start, duration, workdir, binary=ffmpeg_binary(), **settings
    )


def test_black_opening_gives_a_poster_from_the_picture(make_clip: MakeClip, tmp_path: Path) -> None:
    # GIVEN 3 s of black then 5 s of a test pattern, a keyframe every second
    clip = make_clip(
        "black_open.mp4",
        "color=black:s=96x54:r=10:d=3[a];testsrc2=s=96x54:r=10:d=5[b];[a][b]concat",
        "-g",
        "10",
    )

    # WHEN its images are made, one a second, 48 px wide, the poster at 96x54
    made = images(clip, tmp_path, 0.0, 8.0, interval=1.0, thumb_width=48, poster_size=(96, 54))

    # THEN there are 8 thumbnails of 48x28 (16:9, height even), the first three black
    assert [p.name for p in made.thumbnails] == [f"{k:05d}.jpg" for k in range(8)]
    assert sorted((tmp_path / "thumbnails").iterdir()) == list(made.thumbnails)
    shots = [decoded(p) for p in made.thumbnails]
    assert {shot[:2] for shot in shots} == {(48, 28)}
    assert [shot[2] < BLACK_MEAN for shot in shots] == [True] * 3 + [False] * 5
    # AND one sheet of 8x1 of them, with a VTT cue per thumbnail pointing into it
    assert (made.columns, made.rows) == (8, 1)
    assert [jpeg_size(p) for p in made.sprites] == [(8 * 48, 28)]
    parsed = cues(made.vtt.read_text())
    assert len(parsed) == 8
    assert parsed[-1][1] == 8.0
    assert parsed[5][2:] == ("sprites/000.jpg", (5 * 48, 0, 48, 28))
    # AND the poster is full size, from the first picture after the black
    assert made.poster_time == 3.0
    width, height, luma = decoded(made.poster)
    assert (width, height) == (96, 54)
    assert luma > 50


def test_each_tick_takes_the_latest_keyframe_at_or_before_it(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    # GIVEN 24 s whose luma is the frame number, 10 fps, a keyframe every 2 s
    clip = make_clip("ramp.mp4", RAMP.format(d=24), "-g", "20", "-sc_threshold", "0")

    # WHEN sampled every 5 s
    made = images(clip, tmp_path, 0.0, 24.0)

    # THEN exactly 5 thumbnails, from the keyframes at 0, 4, 10, 14 and 20 s
    assert len(made.thumbnails) == 5
    assert len(list((tmp_path / "thumbnails").iterdir())) == 5
    assert ramp_levels((tmp_path / "stats.gray").read_bytes()) == [16, 40, 100, 140, 200]


def test_ticks_are_relative_to_a_late_first_timestamp(make_clip: MakeClip, tmp_path: Path) -> None:
    # GIVEN the same ramp, its timestamps starting at 10 s
    clip = make_clip(
        "ramp_at_10.mp4", RAMP.format(d=24), "-g", "20", "-sc_threshold", "0",
        "-output_ts_offset", "10",
    )  # fmt: skip
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.start_time is not None and stream.time_base
        assert float(stream.start_time * stream.time_base) == 10.0

    # WHEN sampled every 5 s from that start, and a poster taken 5 s in
    images(clip, tmp_path, 10.0, 24.0)
    poster = tmp_path / "at5.jpg"
    args = poster_command(str(clip), "mov", 15.0, 64, 36, poster, binary=ffmpeg_binary())
    subprocess.run(args, check=True, capture_output=True)

    # THEN the same frames as from a clip starting at 0, and the poster is frame 50
    assert ramp_levels((tmp_path / "stats.gray").read_bytes()) == [16, 40, 100, 140, 200]
    assert round(decoded(poster)[2] * 219 / 255 + 16) == 50


def test_ticks_after_the_last_keyframe_repeat_it(make_clip: MakeClip, tmp_path: Path) -> None:
    # GIVEN 29 s with keyframes only at 0, 10 and 20 s
    clip = make_clip(
        "long_gop.mp4", RAMP.format(d=29), "-g", "100", "-keyint_min", "100", "-sc_threshold", "0"
    )

    # WHEN sampled every 5 s: the last tick, 25 s, is after the decoder's last frame
    made = images(clip, tmp_path, 0.0, 29.0)

    # THEN 6 thumbnails, the last two from the keyframe at 20 s
    assert len(made.thumbnails) == 6
    assert ramp_levels((tmp_path / "stats.gray").read_bytes()) == [16, 16, 100, 100, 200, 200]


def test_an_mpegts_source_with_a_start_offset(make_clip: MakeClip, tmp_path: Path) -> None:
    # GIVEN MPEG-TS with B-frames: the video starts 1.4 s + the B-frame delay in
    clip = make_clip(
        "ramp.ts", RAMP.format(d=24), "-g", "20", "-sc_threshold", "0", "-bf", "2", "-f", "mpegts"
    )
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        start = min(
            float(p.pts * stream.time_base)
            for p in container.demux(stream)
            if p.is_keyframe and p.pts is not None and stream.time_base
        )
    assert start > 1.4

    # WHEN sampled every 5 s, and a poster taken 5 s in
    images(clip, tmp_path, start, 24.0)
    poster = tmp_path / "at5.jpg"
    args = poster_command(str(clip), "mpegts", start + 5.0, 64, 36, poster, binary=ffmpeg_binary())
    subprocess.run(args, check=True, capture_output=True)

    # THEN the thumbnails are the keyframes' and the poster is frame 50 exactly
    assert ramp_levels((tmp_path / "stats.gray").read_bytes()) == [16, 40, 100, 140, 200]
    assert round(decoded(poster)[2] * 219 / 255 + 16) == 50


@pytest.mark.parametrize(
    ("name", "graph", "remux", "size"),
    [
        ("rotated.mp4", "testsrc2=s=64x36:r=10:d=2", ("-display_rotation:v:0", "90"), (32, 56)),
        ("anamorphic.mp4", "testsrc2=s=48x36:r=10:d=2,setsar=4/3", (), (32, 18)),
    ],
)
def test_thumbnails_follow_the_display_shape(
    make_clip: MakeClip,
    tmp_path: Path,
    name: str,
    graph: str,
    remux: tuple[str, ...],
    size: tuple[int, int],
) -> None:
    # GIVEN a clip that plays as portrait (rotated) or wider than stored (4:3 pixels)
    clip = make_clip(name, graph, remux=remux)

    # WHEN its images are made 32 px wide
    made = images(clip, tmp_path, 0.0, 2.0, interval=1.0)

    # THEN thumbnails have the display's shape, square pixels, and the VTT knows it
    assert (made.thumb_width, made.thumb_height) == size
    with av.open(str(made.thumbnails[0])) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == size
        assert stream.sample_aspect_ratio in (None, 0, 1)
    assert jpeg_size(made.sprites[0]) == (2 * size[0], size[1])


def test_missing_images_are_a_transcode_error(tmp_path: Path) -> None:
    # GIVEN an "ffmpeg" that succeeds without writing anything
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)

    # WHEN images are made / THEN the missing thumbnails are named
    with pytest.raises(TranscodeError, match="wrote 0 of 5 thumbnails"):
        make_images(
            "/data/x.mp4", "mov", 0.0, 24.0, tmp_path / "out", interval=5.0, thumb_width=32,
            poster_size=(64, 36), timeout=10, binary=str(fake),
        )  # fmt: skip
