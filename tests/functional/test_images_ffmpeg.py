"""Thumbnails, sprite sheets and the poster from real ffmpeg runs on clips of a few
seconds at toy sizes, generated once per module."""

from __future__ import annotations

import random
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.unit.test_images import cues
from workflow.errors import TranscodeError
from workflow.local.binaries import ffmpeg_binary
from workflow.media.images import (
    BLACK_MEAN,
    STATS_FRAME_BYTES,
    Images,
    Thumbnails,
    image_pieces,
    jpeg_size,
    make_images,
    make_thumbnails,
    poster_command,
    thumbnail_count,
)

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


def test_a_poster_whose_tick_falls_in_black_is_the_keyframe_judged(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    # GIVEN 10 s of black but for a picture from 4 to 4.5 s, keyframes at 0 and 4 s only:
    # the tick at 5 s is judged by the keyframe at 4 s (the picture), and is black itself
    clip = make_clip(
        "flash.mp4",
        "testsrc2=s=96x54:r=10:d=10,drawbox=c=black:t=fill:enable='not(between(t,4,4.5))'",
        "-g", "1000", "-keyint_min", "1000", "-sc_threshold", "0", "-force_key_frames", "0,4",
    )  # fmt: skip

    # WHEN its images are made, one every 5 s
    made = images(clip, tmp_path, 0.0, 10.0, interval=5.0, thumb_width=48, poster_size=(96, 54))

    # THEN the poster is the picture the 5 s thumbnail shows, not the black at 5 s, and
    # its time is that picture's (the keyframe at 4 s), where a player seeking to it finds it
    assert made.poster_time == 4.0
    assert decoded(made.poster)[2] > 50
    assert decoded(made.thumbnails[1])[2] > 50


def test_a_first_piece_black_throughout_takes_its_poster_from_every_tick(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    # GIVEN 15 s of black then 10 s of a test pattern, thumbnails every 0.1 s: 250 ticks,
    # the first piece 100 of them (10 s), all black
    clip = make_clip(
        "black_15s.mp4",
        "color=black:s=96x54:r=10:d=15[a];testsrc2=s=96x54:r=10:d=10[b];[a][b]concat",
        "-g",
        "10",
    )
    count = thumbnail_count(25.0, 0.1)
    (first, ticks), *_ = image_pieces(count)
    assert (count, first, ticks) == (250, 0, 100)

    # WHEN the first piece's images are made
    made = images(clip, tmp_path, 0.0, 25.0, interval=0.1, thumb_width=32, ticks=ticks)

    # THEN it made its own 100 thumbnails only, and the VTT maps all 250
    assert sorted((tmp_path / "thumbnails").iterdir()) == list(made.thumbnails)
    assert len(made.thumbnails) == 100
    assert len(cues(made.vtt.read_text())) == 250
    # AND the poster is the first picture after the black, 5 s past the piece's end
    assert made.poster_time == 15.0
    assert decoded(made.poster)[2] > 50


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


def test_a_damaged_stretch_costs_its_own_thumbnails_only(tmp_path: Path) -> None:
    # GIVEN 6 s of 320x240 keyed every 1.5 s, 20,000 bytes at a third of it overwritten:
    # most of its frames decode (the chunks publish them), but most of its few keyframes,
    # all the images decode, do not
    clip = tmp_path / "whole.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=6",
         "-c:v", "libx264", "-preset", "veryfast", "-g", "45", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(clip)],
        check=True,
    )  # fmt: skip
    data = bytearray(clip.read_bytes())
    third = len(data) // 3
    data[third : third + 20_000] = random.Random(0).randbytes(20_000)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    # WHEN its images are made / THEN every tick gets one, from the keyframes that decode,
    # where ffmpeg's share of frames it could not decode failed the whole job
    made = images(damaged, tmp_path / "out", 0.0, 6.0, interval=1.0)
    assert len(made.thumbnails) == 6


def first_keyframe(clip: Path) -> float:
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        return min(
            float(p.pts * stream.time_base)
            for p in container.demux(stream)
            if p.is_keyframe and p.pts is not None and stream.time_base
        )


def pieces_and_one_run(
    clip: Path, tmp_path: Path, duration: float, interval: float
) -> tuple[list[Thumbnails], Thumbnails]:
    """The clip's thumbnails made in pieces, each in its own folder, and in one run."""
    demuxer = {".ts": "mpegts", ".flv": "flv"}.get(clip.suffix, "mov")
    start = first_keyframe(clip)

    def piece(folder: str, first: int = 0, ticks: int | None = None) -> Thumbnails:
        return make_thumbnails(
            str(clip), demuxer, start, duration, tmp_path / folder, interval=interval,
            thumb_width=32, timeout=60, first=first, ticks=ticks, binary=ffmpeg_binary(),
        )  # fmt: skip

    count = thumbnail_count(duration, interval)
    pieces = [piece(f"piece-{first}", first, ticks) for first, ticks in image_pieces(count)]
    return pieces, piece("whole")


def assert_same_images(tmp_path: Path, pieces: list[Thumbnails], whole: Thumbnails) -> None:
    """Every piece's thumbnails and sheets are byte for byte the one run's, named alike."""

    def named(paths: Any) -> list[str]:
        return sorted(f"{path.parent.name}/{path.name}" for path in paths)

    made = [path for p in pieces for path in (*p.thumbnails, *p.sprites)]
    assert named(made) == named((*whole.thumbnails, *whole.sprites))
    for path in made:
        assert path.read_bytes() == (tmp_path / "whole" / path.parent.name / path.name).read_bytes()


@pytest.mark.parametrize("name", ["ramp_gop3.mp4", "ramp_gop3.ts"])
def test_pieces_make_the_same_images_as_one_run(
    make_clip: MakeClip, tmp_path: Path, name: str
) -> None:
    # GIVEN 24 s whose luma is the frame number, 10 fps, a keyframe every 3 s: the pieces'
    # first ticks (10 s and 20 s) fall between keyframes (9 s and 18 s)
    container = ["-f", "mpegts"] if name.endswith(".ts") else []
    clip = make_clip(name, RAMP.format(d=24), "-g", "30", "-sc_threshold", "0", *container)

    # WHEN its 240 ticks, one every 0.1 s, are made in pieces and in one run
    pieces, whole = pieces_and_one_run(clip, tmp_path, 24.0, 0.1)

    # THEN there are three pieces of whole sheets, each tick's frame the latest keyframe
    # at or before it: in every piece, its first tick's too
    assert [(len(p.thumbnails), len(p.sprites)) for p in pieces] == [(100, 1), (100, 1), (40, 1)]
    expected = [max(16, 30 * (k // 30)) for k in range(240)]
    assert ramp_levels((tmp_path / "whole" / "stats.gray").read_bytes()) == expected
    for first, ticks in image_pieces(240):
        stats = (tmp_path / f"piece-{first}" / "stats.gray").read_bytes()
        assert ramp_levels(stats) == expected[first : first + ticks]
    # AND every thumbnail and sheet is the one run's
    assert_same_images(tmp_path, pieces, whole)


@pytest.mark.parametrize(
    ("name", "graph", "options", "duration", "interval"),
    [
        # Only the first frame is an IDR: the index's other sync samples are recovery
        # points, which keyframes-only decoding skips, so a seek finds nothing to decode.
        ("intra_refresh.mp4", RAMP.format(d=24), ("-x264-params", "intra-refresh=1:keyint=48"),
         24.0, 0.1),
        # Keyframes at 0 and 15 s: the last piece (26 s) seeks 10 s back to after the last.
        ("gop15.ts", "nullsrc=s=64x36:r=5:d=30,geq=lum='N':cb=128:cr=128",
         ("-g", "75", "-sc_threshold", "0", "-f", "mpegts"), 30.0, 0.26),
        # FLV seeks by decode time: with B-frames it lands on a keyframe shown after the tick.
        ("bframes.flv", RAMP.format(d=24), ("-g", "30", "-bf", "2", "-sc_threshold", "0"),
         24.0, 0.0895),
    ],
)  # fmt: skip
def test_a_piece_whose_seek_lands_late_goes_back_for_its_frames(
    make_clip: MakeClip,
    tmp_path: Path,
    name: str,
    graph: str,
    options: tuple[str, ...],
    duration: float,
    interval: float,
) -> None:
    # GIVEN a source on which a later piece's seek lands past the keyframe its first tick
    # needs, or where there is none to decode
    clip = make_clip(name, graph, *options)

    # WHEN its thumbnails are made in pieces and in one run
    pieces, whole = pieces_and_one_run(clip, tmp_path, duration, interval)

    # THEN the pieces went back and made the one run's images exactly
    assert len(pieces) > 1
    assert_same_images(tmp_path, pieces, whole)


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
