"""The still images a player shows for one video: thumbnails, sprite sheets, a VTT map, a poster.

One ffmpeg run per piece of the video's span reads that span of the source, decoding
keyframes only, and samples one frame per ``interval`` seconds: for each tick, the
latest keyframe at or before it. A piece is one whole sprite sheet of ticks
(``image_pieces``), so that pieces run side by side, each reading only its part of the
source (or, where its seek landed late, from further back), and none needs another's
frames. The same frames become numbered thumbnails, sprite sheets, and a tiny
grey-level stream from which a poster frame is chosen (from the first piece's frames, or
every tick's where those are all black or blank); a second, short run takes the poster
at full size from an accurate seek.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from workflow.errors import TranscodeError
from workflow.media import picture
from workflow.media.encode import (
    FIRST_FRAME,
    KEEP_FILTERS,
    first_frame,
    first_frame_written,
    open_input,
    seconds_arg,
)
from workflow.media.runner import run_ffmpeg
from workflow.media.subtitles import webvtt_time

MAX_COLUMNS = 10
MAX_ROWS = 10
# Each sampled frame, squashed to 32x18 grey levels: enough to tell black and blank.
STATS_WIDTH = 32
STATS_HEIGHT = 18
STATS_FRAME_BYTES = STATS_WIDTH * STATS_HEIGHT
# A keyframe up to this late counts as "at" its tick: timestamps on a 1/90000 or
# 1/1000 clock rarely land exactly on a decimal second.
TICK_TOLERANCE = 0.001
# Grey levels are full range (0-255) whatever the source's range: its black reads 0.
# Below this mean a frame is black: 10 % grey, blackdetect's default pixel threshold;
# a frame of black with a small logo or credits falls below it too.
BLACK_MEAN = 25.5
# Below this spread (standard deviation of the 576 grey levels) a frame is one flat
# shade: a fade, a slate, a white flash. The 32x18 scale averages away grain and noise,
# so the spread measures layout-level contrast; ordinary pictures read 30 or more.
BLANK_SPREAD = 12.0
# The first usable frame is still fading in when its spread is under this share of the
# next frame's.
FADING_RATIO = 0.75
# Demuxers without a keyframe index land on whatever packet bisection finds; starting
# this much earlier reaches a keyframe before the poster's instant in common GOPs.
ROUGH_SEEK_DEMUXERS = ("mpegts", "mpeg")
ROUGH_SEEK_MARGIN = 10.0
# A piece whose seek landed after its first tick's keyframe (an encoder's intra refresh,
# a GOP longer than the margin, a demuxer that seeks by decode time) goes back this far
# before it, then four times as far each time, to the video's start.
RESEEK_SECONDS = 10.0
JPEG_QUALITY = 3
POSTER_QUALITY = 2
THUMBNAIL_PATTERN = "%05d.jpg"
SPRITE_PATTERN = "%03d.jpg"


@dataclass(frozen=True)
class Thumbnails:
    """What ``make_thumbnails`` wrote for one piece: every path lies under its ``workdir``."""

    thumbnails: tuple[Path, ...]
    sprites: tuple[Path, ...]
    thumb_width: int
    thumb_height: int
    interval: float
    columns: int
    rows: int


@dataclass(frozen=True)
class Images(Thumbnails):
    """What ``make_images`` wrote: the first piece's thumbnails and sheets, the poster
    chosen from them, and the VTT map of every piece's."""

    poster: Path
    poster_time: float
    vtt: Path


def thumbnail_count(duration: float, interval: float) -> int:
    """One thumbnail per started ``interval`` of ``duration``, at least one; ``duration``
    counts in whole milliseconds, as the WebVTT map does."""
    if duration <= 0 or interval <= 0:
        raise ValueError("duration and interval must be positive")
    # In whole milliseconds, so that 67.000267 s (2008 frames at 29.97 fps) at 1 s
    # intervals is 67, not 68 with a last cue from 67.000 to 67.000; and rounded again so
    # that 24.000001 s at 4 s intervals is 6, not 7.
    return max(1, math.ceil(round(round(duration, 3) / interval, 6)))


def sprite_grid(count: int) -> tuple[int, int]:
    """Columns and rows of each sprite sheet: 10x10 at most, no wider or taller than needed."""
    columns = min(MAX_COLUMNS, count)
    return columns, min(MAX_ROWS, math.ceil(count / columns))


def image_pieces(count: int, seekable: bool = True) -> list[tuple[int, int]]:
    """The pieces ``count`` ticks are made in, as (first tick, ticks): one sprite sheet
    each. An hour sampled every 5 s is 8 pieces of at most 500 s of video, read side by
    side, where one run read the whole source (16 GB at the bench's bitrate: about three
    minutes at one function's 90 MB/s). A source that is not ``seekable`` is one piece:
    each piece would read it from its start to its own part."""
    if not seekable:
        return [(0, count)]
    per_sheet = math.prod(sprite_grid(count))
    return [(first, min(per_sheet, count - first)) for first in range(0, count, per_sheet)]


def seekable(demuxer: str, keyframe_count: int) -> bool:
    """Whether a piece of the source can be reached without reading all before it: its
    container's index lists keyframes, or its demuxer bisects (MPEG-TS, MPEG-PS). FLV,
    AVI without its index and Matroska without cues are read from the start."""
    return keyframe_count > 0 or demuxer in ROUGH_SEEK_DEMUXERS


def _rough_seek_margin(demuxer: str) -> float:
    """How far before an instant a seek aims to land at or before its keyframe."""
    return ROUGH_SEEK_MARGIN if demuxer in ROUGH_SEEK_DEMUXERS else 0.0


def _seek_to(start: float, origin: float, back: float) -> float | None:
    """Where a piece whose first tick is at ``origin`` seeks to, ``back`` seconds before
    it; None where that is the video's start (it reads from the start)."""
    at = origin - back
    return at if at > start else None


def build_images_command(
    source: str,
    demuxer: str,
    start: float,
    duration: float,
    workdir: Path,
    *,
    interval: float,
    thumb_width: int,
    first: int = 0,
    ticks: int | None = None,
    back: float | None = None,
    stats_only: bool = False,
    binary: str = "ffmpeg",
    headers: str | None = None,
    source_filters: Sequence[picture.Filter] = (),
) -> list[str]:
    """One ffmpeg run that writes one piece's thumbnails, sprite sheets and grey-level stats
    (with ``stats_only``, the stats alone).

    ``start`` is the video's first keyframe on the source's timeline (``-copyts`` keeps
    that timeline), ``duration`` its length. The piece is ``ticks`` ticks from tick
    ``first`` (all ``thumbnail_count`` ticks by default), tick ``k`` at
    ``start + k * interval``; ``first`` begins a sprite sheet. Outputs:
    ``workdir/thumbnails/NNNNN.jpg`` numbered by tick (``thumb_width`` wide, display
    aspect, square pixels), ``workdir/sprites/NNN.jpg`` numbered by sheet (the same
    frames tiled, the video's last sheet padded black), and ``workdir/stats.gray``
    (32x18 grey bytes per frame).

    A later piece seeks to the keyframe at or before its first tick, or ``back`` seconds
    before it (by default ``ROUGH_SEEK_MARGIN`` where the demuxer bisects, else none),
    writes the time of the first frame it decoded to ``workdir/FIRST_FRAME`` for
    ``make_thumbnails`` to check, and stops reading once its last tick is made. Frames
    before the first tick count as at it, so the latest of them is its frame. The frames
    go through ``source_filters`` (``picture.source_filters``) first.
    """
    if thumb_width < 16 or thumb_width % 2:
        raise ValueError(f"thumb_width must be even and at least 16, not {thumb_width}")
    count = thumbnail_count(duration, interval)
    columns, rows = sprite_grid(count)
    ticks = count - first if ticks is None else ticks
    if first < 0 or first % (columns * rows) or not 0 < ticks <= count - first:
        raise ValueError(f"{ticks} ticks from {first} are not a piece of {count} in sheets")
    origin = start + first * interval + TICK_TOLERANCE
    if back is None:
        back = _rough_seek_margin(demuxer)
    at = _seek_to(start, origin, back) if first else None
    seek: dict[str, Any] = {}
    if at is not None:
        seek = {"ss": seconds_arg(at), "seek_timestamp": "1", "noaccurate_seek": None}
    decoded = open_input(
        source, demuxer, headers=headers, skip_frame="nokey", **KEEP_FILTERS, **seek
    ).video
    checks = []
    if at is not None:
        split = decoded.filter_multi_output("split", 2)
        checks, decoded = [first_frame_written(split.stream(0), workdir)], split.stream(1)
    frames = (
        picture.applied(decoded, source_filters)
        .filter("setpts", f"max(PTS-{seconds_arg(origin)}/TB,0)")
        # The decoder's end comes one frame after the last keyframe; ticks later than
        # that must still get it, so the stream is extended by cloning its last frame.
        .filter("tpad", stop_mode="clone", stop_duration=seconds_arg(duration + interval))
        # Rounding timestamps up to the next tick makes each tick take the latest frame
        # at or before it, never a later one.
        .filter("fps", fps=f"1/{seconds_arg(interval)}", round="up", start_time=0)
        .filter("trim", end_frame=ticks)
    )
    # Height from the display aspect ratio (sar included), rounded to even.
    height = f"max(2,2*round({thumb_width}/dar/2))"
    thumbs = frames.filter("scale", w=thumb_width, h=height).filter("setsar", 1)
    common = {"fps_mode": "passthrough", "map_metadata": -1}

    def measured(frames: Any) -> Any:
        stats = frames.filter("scale", STATS_WIDTH, STATS_HEIGHT).filter("format", "gray")
        return stats.output(str(workdir / "stats.gray"), **common, f="rawvideo", pix_fmt="gray")

    if stats_only:
        outputs = [measured(thumbs)]
    else:
        split = thumbs.filter_multi_output("split", 3)
        sheets = split.stream(1).filter("tile", f"{columns}x{rows}", color="black")
        jpeg = {**common, "f": "image2", "q:v": JPEG_QUALITY}
        outputs = [
            split.stream(0).output(
                str(workdir / "thumbnails" / THUMBNAIL_PATTERN), **jpeg, start_number=first
            ),
            sheets.output(
                str(workdir / "sprites" / SPRITE_PATTERN),
                **jpeg,
                start_number=first // (columns * rows),
            ),
            measured(split.stream(2)),
        ]
    # Keyframes alone are decoded: a damaged stretch that the chunks decode around is a
    # large share of so few frames, and ffmpeg's default error rate (2/3) failed the
    # whole job over it. The missing ticks take the keyframe before (``tpad``, ``fps``).
    command = ffmpeg.merge_outputs(*checks, *outputs).global_args(
        "-nostdin", "-hide_banner", "-loglevel", "error", "-copyts", "-max_error_rate", "1"
    )
    return list(ffmpeg.compile(command, cmd=binary))


def poster_command(
    source: str,
    demuxer: str,
    at: float,
    width: int,
    height: int,
    out: Path,
    *,
    start: float = 0.0,
    keyframe: bool = False,
    binary: str = "ffmpeg",
    headers: str | None = None,
    source_filters: Sequence[picture.Filter] = (),
) -> list[str]:
    """One frame, the first at or after ``at`` on the source's timeline (whose video
    starts at ``start``), as a JPEG, its grey levels (``poster_stats``) and the times of
    the frames decoded for it (``poster_frame_time`` reads them); with
    ``keyframe``, the keyframe a thumbnail at ``at`` shows (the latest at or before it).

    The demuxer seeks to the keyframe before ``at`` by its own timestamps
    (``-seek_timestamp``, so the container's start time does not shift it) and the
    frames before ``at`` are decoded and dropped here, on the ``-copyts`` timeline.
    MPEG-TS and MPEG-PS seek by bisecting on timestamps and may land past that
    keyframe, so the seek aims ``ROUGH_SEEK_MARGIN`` seconds earlier. A frame at the
    video's start is read from there, without a seek: FLV and AVI put their first frame
    a reorder delay after zero, and a seek to it finds no keyframe at or before it where
    that frame is the file's only one (a short clip at x264's default GOP). The frame
    goes through ``source_filters`` (``picture.source_filters``) first.
    """
    margin = _rough_seek_margin(demuxer)
    # A bare flag, which ffmpeg-python writes for an option whose value is None.
    seek: dict[str, Any] = {}
    if at - margin > max(start, 0.0):
        seek = {"ss": seconds_arg(at - margin), "seek_timestamp": "1", "noaccurate_seek": None}
    if keyframe:
        decoded = open_input(
            source, demuxer, headers=headers, skip_frame="nokey", **KEEP_FILTERS, **seek
        ).video
        # As a thumbnail's tick takes it: the frames before ``at`` are all at it, and the
        # latest of them is its frame.
        frames = (
            picture.applied(_times_written(decoded, out), source_filters)
            .filter("setpts", f"max(PTS-{seconds_arg(at + TICK_TOLERANCE)}/TB,0)")
            # (A frame past the tick, or ffmpeg's JPEG encoder refuses the one the fps
            # filter leaves only as the input ends.)
            .filter("tpad", stop_mode="clone", stop_duration=1)
            .filter("fps", fps=1, round="up", start_time=0)
        )
    else:
        decoded = open_input(source, demuxer, headers=headers, **seek).video
        frames = picture.applied(
            _times_written(decoded.filter("trim", start=seconds_arg(at)), out), source_filters
        )
    frame = (
        frames.filter("scale", width, height).filter("setsar", 1).filter_multi_output("split", 2)
    )
    one = {"frames:v": 1, "fps_mode": "passthrough", "map_metadata": -1}
    image = frame.stream(0).output(str(out), f="image2", update=1, **one, **{"q:v": POSTER_QUALITY})
    # The frame's grey levels, as a thumbnail's are measured: the ticks are judged by the
    # keyframe at or before them, and the frame at the tick may be another picture.
    stats = (
        frame.stream(1)
        .filter("scale", STATS_WIDTH, STATS_HEIGHT)
        .filter("format", "gray")
        .output(str(poster_stats(out)), f="rawvideo", pix_fmt="gray", **one)
    )
    command = ffmpeg.merge_outputs(image, stats).global_args(
        "-nostdin", "-hide_banner", "-loglevel", "error", "-copyts"
    )
    return list(ffmpeg.compile(command, cmd=binary))


def poster_stats(poster: Path) -> Path:
    """Where ``poster_command`` writes its frame's grey levels."""
    return poster.with_suffix(".gray")


def poster_frames(poster: Path) -> Path:
    """Where ``poster_command`` writes the times of the frames it decoded for the poster."""
    return poster.with_suffix(".frames")


def _times_written(
    video: ffmpeg.nodes.FilterableStream, poster: Path
) -> ffmpeg.nodes.FilterableStream:
    """``video``, each frame's time written to ``poster_frames(poster)`` as it passes."""
    return video.filter("metadata", mode="add", key="poster", value=1).filter(
        "metadata", mode="print", file=str(poster_frames(poster))
    )


def poster_frame_time(poster: Path, at: float, *, keyframe: bool = False) -> float | None:
    """The time, on the source's timeline, of the frame ``poster_command`` made ``poster``
    from for the instant ``at``: the first it decoded from ``at`` on, or with ``keyframe``
    the latest keyframe at or before ``at`` (the first after it where none was); None
    where ffmpeg wrote no time."""
    try:
        text = poster_frames(poster).read_text()
    except FileNotFoundError:
        return None
    times = [float(t) for t in re.findall(r"pts_time:(-?[0-9.]+)", text)]
    if not times:
        return None
    if not keyframe:
        return times[0]
    before = [t for t in times if t <= at + TICK_TOLERANCE]
    return max(before) if before else min(times)


def choose_poster(stats: bytes, frame_bytes: int) -> int:
    """The index of the frame to make the poster from, given grey-level frames.

    The first frame that is neither black (mean below ``BLACK_MEAN``) nor blank (spread
    below ``BLANK_SPREAD``), or the one after it when it is still fading in; where no
    frame qualifies, the one with the most spread.
    """
    measured, usable = _measured_frames(stats, frame_bytes)
    if any(usable):
        first = usable.index(True)
        after = first + 1
        fading = (
            after < len(measured)
            and usable[after]
            and measured[first][1] < FADING_RATIO * measured[after][1]
        )
        return after if fading else first
    spreads = [spread for _, spread in measured]
    return spreads.index(max(spreads))


def has_poster_frame(stats: bytes, frame_bytes: int) -> bool:
    """Whether any of these grey-level frames is neither black nor blank."""
    return any(_measured_frames(stats, frame_bytes)[1])


def _measured_frames(
    stats: bytes, frame_bytes: int
) -> tuple[list[tuple[float, float]], list[bool]]:
    """Each frame's mean and spread, and whether it is neither black nor blank."""
    if frame_bytes <= 0 or not stats or len(stats) % frame_bytes:
        raise ValueError(f"{len(stats)} bytes are not whole frames of {frame_bytes}")
    measured = [
        _mean_and_spread(stats[i : i + frame_bytes]) for i in range(0, len(stats), frame_bytes)
    ]
    return measured, [mean >= BLACK_MEAN and spread >= BLANK_SPREAD for mean, spread in measured]


def thumbnails_vtt(
    count: int,
    interval: float,
    duration: float,
    thumb_w: int,
    thumb_h: int,
    columns: int = MAX_COLUMNS,
    rows: int = MAX_ROWS,
    sprite_uri: Callable[[int], str] = lambda i: f"sprites/{i:03d}.jpg",
) -> str:
    """A WebVTT sprite map: one cue per thumbnail, pointing into its sheet with ``#xywh``.

    Cue ``k`` runs from ``k * interval`` to the next cue (the last, to ``duration``),
    on the player's timeline, which starts at the video's first frame.
    """
    per_sheet = columns * rows
    lines = ["WEBVTT", ""]
    for k in range(count):
        begin = k * interval
        end = duration if k == count - 1 else min((k + 1) * interval, duration)
        sheet, cell = divmod(k, per_sheet)
        row, column = divmod(cell, columns)
        lines += [
            f"{_vtt_time(begin)} --> {_vtt_time(end)}",
            f"{sprite_uri(sheet)}#xywh={column * thumb_w},{row * thumb_h},{thumb_w},{thumb_h}",
            "",
        ]
    return "\n".join(lines)


def make_thumbnails(
    source: str,
    demuxer: str,
    start: float,
    duration: float,
    workdir: Path,
    *,
    interval: float,
    thumb_width: int,
    timeout: float,
    first: int = 0,
    ticks: int | None = None,
    binary: str = "ffmpeg",
    headers: str | None = None,
    source_filters: Sequence[picture.Filter] = (),
) -> Thumbnails:
    """Write one piece's thumbnails, sprite sheets and grey-level stats in ``workdir``
    (``build_images_command``'s piece: all ticks by default).

    A later piece whose ffmpeg decoded nothing at or before its first tick (its seek
    landed past the keyframe that tick needs) is made again from ``RESEEK_SECONDS``
    before the tick, then four times as far each time, and at last from the video's
    start, as one run of every tick would; one that decoded nothing at all, from the
    start at once. A source that seeks badly costs reading, not frames: an
    intra-refresh one, whose only IDR frame is its first, costs each later piece about
    one and a half reads of the whole source (one run read it once). Open-GOP H.264 is
    not caught: after a seek the decoder takes a non-IDR keyframe that one run skips,
    so its pieces' frames can differ from one run's (which repeat the first IDR frame,
    no better). Every run shares ``timeout`` seconds.

    Raises ``TranscodeError`` when ffmpeg fails or writes fewer images than the piece
    calls for.
    """
    deadline = time.monotonic() + timeout
    count = thumbnail_count(duration, interval)
    ticks = count - first if ticks is None else ticks
    columns, rows = sprite_grid(count)
    per_sheet = columns * rows
    origin = start + first * interval + TICK_TOLERANCE
    back = _rough_seek_margin(demuxer)
    while True:
        stats_path = _fresh_outputs(workdir)
        command = build_images_command(
            source,
            demuxer,
            start,
            duration,
            workdir,
            interval=interval,
            thumb_width=thumb_width,
            first=first,
            ticks=ticks,
            back=back,
            binary=binary,
            headers=headers,
            source_filters=source_filters,
        )
        if not first or _seek_to(start, origin, back) is None:
            run_ffmpeg(command, max(1.0, deadline - time.monotonic()))
            break
        landed = None
        with contextlib.suppress(TranscodeError):
            run_ffmpeg(command, max(1.0, deadline - time.monotonic()))
            landed = first_frame(workdir)
            if landed is not None and landed <= origin:
                break
        # Decoding nothing at all (ffmpeg then reads to the end: no frame reaches the
        # outputs to end them, and an input -t does not either) says the keyframes this
        # seek finds do not decode alone (intra refresh): only the start's will.
        back = math.inf if landed is None else max(RESEEK_SECONDS, 4 * back)
    made = range(first, first + ticks)
    thumbnails = tuple(workdir / "thumbnails" / (THUMBNAIL_PATTERN % k) for k in made)
    sheets = range(first // per_sheet, math.ceil((first + ticks) / per_sheet))
    sprites = tuple(workdir / "sprites" / (SPRITE_PATTERN % k) for k in sheets)
    _require(thumbnails, "thumbnails")
    _require(sprites, "sprite sheets")
    _measured(stats_path, ticks)
    thumb_w, thumb_h = jpeg_size(thumbnails[0])
    return Thumbnails(
        thumbnails=thumbnails,
        sprites=sprites,
        thumb_width=thumb_w,
        thumb_height=thumb_h,
        interval=float(interval),
        columns=columns,
        rows=rows,
    )


def make_images(
    source: str,
    demuxer: str,
    start: float,
    duration: float,
    workdir: Path,
    *,
    interval: float,
    thumb_width: int,
    poster_size: tuple[int, int],
    timeout: float,
    ticks: int | None = None,
    binary: str = "ffmpeg",
    headers: str | None = None,
    source_filters: Sequence[picture.Filter] = (),
) -> Images:
    """Write the first piece's images (``ticks`` ticks, all by default) in ``workdir``,
    ``poster.jpg`` chosen from its frames (from every tick's where all of its are black or
    blank), and ``thumbnails.vtt`` for every tick.

    Its ffmpeg runs share ``timeout`` seconds. Raises ``TranscodeError`` when ffmpeg
    fails or writes fewer images than the piece calls for.
    """
    deadline = time.monotonic() + timeout
    piece = make_thumbnails(
        source,
        demuxer,
        start,
        duration,
        workdir,
        interval=interval,
        thumb_width=thumb_width,
        timeout=timeout,
        ticks=ticks,
        binary=binary,
        headers=headers,
        source_filters=source_filters,
    )
    stats_path = workdir / "stats.gray"
    stats = _measured(stats_path, len(piece.thumbnails))
    count = thumbnail_count(duration, interval)
    if len(piece.thumbnails) < count and not has_poster_frame(stats, STATS_FRAME_BYTES):
        # Black or blank all through this piece: the poster is chosen from every tick, as
        # one run of them all would, for one more read of the source's keyframes.
        stats_path.unlink()
        command = build_images_command(
            source,
            demuxer,
            start,
            duration,
            workdir,
            interval=interval,
            thumb_width=thumb_width,
            stats_only=True,
            binary=binary,
            headers=headers,
            source_filters=source_filters,
        )
        run_ffmpeg(command, max(1.0, deadline - time.monotonic()))
        stats = _measured(stats_path, count)
    chosen = choose_poster(stats, STATS_FRAME_BYTES)
    poster_time = float(round(chosen * interval, 6))
    poster = workdir / "poster.jpg"
    # A tick is judged by the keyframe at or before it, and the poster is the frame at
    # the tick; where that is black or blank (a cut between two keyframes) it is the
    # keyframe judged instead.
    for keyframe in (False, True):
        poster.unlink(missing_ok=True)
        poster_stats(poster).unlink(missing_ok=True)
        poster_frames(poster).unlink(missing_ok=True)
        run_ffmpeg(
            poster_command(
                source,
                demuxer,
                start + poster_time,
                *poster_size,
                poster,
                start=start,
                keyframe=keyframe,
                binary=binary,
                headers=headers,
                source_filters=source_filters,
            ),
            max(1.0, deadline - time.monotonic()),
        )
        _require((poster,), "poster")
        if has_poster_frame(_measured(poster_stats(poster), 1), STATS_FRAME_BYTES):
            break
    # The time of the frame shown: the keyframe a tick judged is before the tick.
    shown = poster_frame_time(poster, start + poster_time, keyframe=keyframe)
    if shown is not None:
        poster_time = float(round(max(0.0, shown - start), 6))
    vtt = workdir / "thumbnails.vtt"
    vtt.write_text(
        thumbnails_vtt(
            thumbnail_count(duration, interval),
            interval,
            duration,
            piece.thumb_width,
            piece.thumb_height,
            piece.columns,
            piece.rows,
        )
    )
    return Images(**vars(piece), poster=poster, poster_time=poster_time, vtt=vtt)


def _fresh_outputs(workdir: Path) -> Path:
    """Empty image folders, and where the grey-level stats go: a retried work item may
    find a previous attempt's files, and none may stand in for this one's."""
    for folder in ("thumbnails", "sprites"):
        shutil.rmtree(workdir / folder, ignore_errors=True)
        (workdir / folder).mkdir(parents=True)
    (workdir / FIRST_FRAME).unlink(missing_ok=True)
    stats_path = workdir / "stats.gray"
    stats_path.unlink(missing_ok=True)
    return stats_path


def _measured(stats_path: Path, count: int) -> bytes:
    """The grey-level stats of every thumbnail frame, all ``count`` of them."""
    stats = stats_path.read_bytes() if stats_path.exists() else b""
    if len(stats) != count * STATS_FRAME_BYTES:
        raise TranscodeError(
            f"ffmpeg measured {len(stats) // STATS_FRAME_BYTES} of {count} thumbnail frames"
        )
    return stats


# JPEG start-of-frame markers (baseline, extended, progressive, lossless and their variants):
# each carries the picture's height and width. The Images function reads no other part.
_SOF_MARKERS = frozenset(
    {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), 0xCD, 0xCE, 0xCF}
)


def jpeg_size(path: Path) -> tuple[int, int]:
    """Width and height of one JPEG, read from its start-of-frame header."""
    data = path.read_bytes()
    if data[:2] != b"\xff\xd8":
        raise TranscodeError(f"{path.name} is not a JPEG")
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            return width, height
        position += 2 + length
    raise TranscodeError(f"{path.name} has no JPEG frame header")


def _require(paths: tuple[Path, ...], what: str) -> None:
    missing = [path.name for path in paths if not path.is_file() or path.stat().st_size == 0]
    if missing:
        raise TranscodeError(
            f"ffmpeg wrote {len(paths) - len(missing)} of {len(paths)} {what} "
            f"(missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
        )


def _mean_and_spread(frame: bytes) -> tuple[float, float]:
    mean = sum(frame) / len(frame)
    variance = sum(level * level for level in frame) / len(frame) - mean * mean
    return mean, math.sqrt(max(0.0, variance))


def _vtt_time(seconds: float) -> str:
    return webvtt_time(round(seconds * 1000))
