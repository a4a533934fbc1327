"""Read an untrusted upload and learn what it is, without trusting anything it claims.

The order matters: sniff the first bytes for indirection (playlists, concat lists),
open the container with an allow-list of demuxers and protocols, check declared sizes
and durations against the limits *before* decoding, decode one frame, then scan the
video packets (no decoding) for keyframes and frame counts.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import Any

import av
import av.error

from workflow.errors import (
    InputError,
    InputTooLargeError,
    InputTooLongError,
    NoVideoStreamError,
    TransientError,
    TruncatedInputError,
    UnsupportedInputError,
)
from workflow.media.chunks import FrameIndex
from workflow.media.facts import AudioFacts, SourceFacts
from workflow.media.sniff import ALLOWED_DEMUXERS, DEMUXER_FOR_FAMILY, protocols_for, sniff
from workflow.settings import Limits


@dataclass(frozen=True)
class Probe:
    facts: SourceFacts
    index: FrameIndex


# Timestamps further out than this (MPEG-TS wraps at 26.5 h) are damage, not video.
MAX_START_SECONDS = 1e7


def probe(
    source: str,
    *,
    head: bytes,
    size: int,
    limits: Limits,
    timeout: float = 60.0,
    headers: str | None = None,
) -> Probe:
    """Probe ``source`` (a path or an http(s) URL) and index its keyframes.

    ``headers`` are HTTP request headers sent with every read (an ``If-Match`` pin).
    """
    if size > limits.max_bytes:
        raise InputTooLargeError(f"the file is {size} bytes; the limit is {limits.max_bytes}")
    family = sniff(head)
    try:
        container = av.open(
            source,
            format=DEMUXER_FOR_FAMILY[family],
            options={
                "format_whitelist": ",".join(ALLOWED_DEMUXERS),
                "protocol_whitelist": protocols_for(source),
                **({"headers": headers} if headers else {}),
            },
            timeout=timeout,
            metadata_errors="replace",
        )
    except av.error.FFmpegError as exc:
        raise _unreadable(family, exc) from None
    with container:
        try:
            facts_without_scan = _declared_facts(container, family, size, limits)
            index, frame_times, rotation = _scan_video(container, family)
            facts = _finish_facts(facts_without_scan, index, frame_times, rotation, limits)
        except InputError:
            raise
        except Exception as exc:
            # PyAV raises more than FFmpegError on damaged input (IndexError when a
            # stream appears mid-file, PermissionError from a refused seek, ...): the
            # file cannot be read, which is the user's to fix, never a crash.
            raise _unreadable(family, exc) from None
    return Probe(facts, index)


def _unreadable(family: str, exc: Exception) -> Exception:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        # The upload could not be reached, which says nothing about the file: retry.
        return TransientError(f"the upload could not be read: {_ffmpeg_reason(exc)}")
    return TruncatedInputError(
        f"the file starts like {family} but its data is incomplete or damaged "
        f"({_ffmpeg_reason(exc)})"
    )


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def _declared_facts(container: Any, family: str, size: int, limits: Limits) -> dict[str, Any]:
    streams = list(container.streams)
    if len(streams) > limits.max_streams:
        raise InputTooLargeError(
            f"the file has {len(streams)} streams; the limit is {limits.max_streams}"
        )
    videos = [s for s in streams if s.type == "video" and not _is_cover_art(s)]
    if not videos:
        kinds = sorted({s.type for s in streams}) or ["nothing"]
        raise NoVideoStreamError(f"the file has no video stream (it holds {', '.join(kinds)})")
    video = videos[0]
    ctx = video.codec_context
    if ctx is None:
        raise UnsupportedInputError("the video stream's codec is not one vidflow can decode")
    if not ctx.width or not ctx.height:
        raise UnsupportedInputError("the video stream declares no frame size")
    if ctx.width * ctx.height > limits.max_pixels:
        raise InputTooLargeError(
            f"the video is {ctx.width}x{ctx.height}; the limit is {limits.max_pixels} pixels"
        )
    declared = container.duration / 1_000_000 if container.duration else None
    if declared is not None and declared > limits.max_seconds:
        raise InputTooLongError(
            f"the file declares {declared:.0f} s; the limit is {limits.max_seconds:.0f} s"
        )
    rate = video.average_rate or video.guessed_rate or video.base_rate
    if rate is not None and float(rate) > limits.max_fps:
        raise InputTooLargeError(
            f"the video runs at {float(rate):.0f} fps; the limit is {limits.max_fps:.0f}"
        )
    # An audio stream vidflow cannot decode, or one that declares no channels, is left out.
    audios = [
        s
        for s in streams
        if s.type == "audio" and s.codec_context is not None and s.codec_context.channels > 0
    ]
    audio = None
    if audios:
        a = audios[0]
        audio = AudioFacts(
            codec=a.codec_context.codec.canonical_name,
            channels=a.codec_context.channels,
            sample_rate=a.codec_context.sample_rate,
            start_time=float(a.start_time * a.time_base) if a.start_time is not None else 0.0,
        )
    for s in streams:
        if s is not video:
            s.discard = av.stream.Discard.all
    return {
        "container": DEMUXER_FOR_FAMILY[family],
        "container_start": container.start_time / 1_000_000 if container.start_time else 0.0,
        "size_bytes": size,
        "video_codec": ctx.codec.canonical_name,
        "profile": ctx.profile,
        "pix_fmt": ctx.pix_fmt or "unknown",
        "bit_depth": _bit_depth(ctx.pix_fmt or ""),
        "coded_width": ctx.width,
        "coded_height": ctx.height,
        "sar": video.sample_aspect_ratio,
        "declared_rate": float(rate) if rate else None,
        "video_bitrate": ctx.bit_rate or None,
        "audio": audio,
        "family": family,
    }


def _is_cover_art(stream: Any) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _bit_depth(pix_fmt: str) -> int:
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8


def _scan_video(container: Any, family: str) -> tuple[FrameIndex, list[float], int]:
    """One pass over the video packets: keyframes, frame times, and the first frame.

    Only packets are read, except that the first ones are decoded until a frame comes
    out: that proves the stream decodes and gives its rotation, without seeking back.
    """
    video = container.streams.video[0]
    tb = video.time_base
    times: list[int] = []
    keys: list[int] = []
    durations: list[int] = []
    rotation: int | None = None
    try:
        for packet in container.demux(video):
            if rotation is None:
                for frame in video.decode(packet):
                    rotation = round(getattr(frame, "rotation", 0) or 0) % 360
                    break
            if packet.pts is None or packet.size == 0:
                continue
            times.append(packet.pts)
            if packet.duration:
                durations.append(packet.duration)
            if packet.is_keyframe:
                keys.append(packet.pts)
    except av.error.FFmpegError as exc:
        raise _unreadable(family, exc) from None
    if rotation is None:
        raise TruncatedInputError(f"the file starts like {family} but no video frame decodes")
    if not keys:
        raise TruncatedInputError(f"the file starts like {family} but has no keyframe")
    times.sort()
    keys = sorted(set(keys))
    first = keys[0]
    times = times[bisect.bisect_left(times, first) :]
    step = _typical(durations) or (_typical([b - a for a, b in pairwise(times)]) or 1)
    gop_frames = []
    for i, key in enumerate(keys):
        nxt = keys[i + 1] if i + 1 < len(keys) else None
        lo = bisect.bisect_left(times, key)
        hi = bisect.bisect_left(times, nxt) if nxt is not None else len(times)
        gop_frames.append(hi - lo)
    index = FrameIndex(
        keyframes=[_seconds(k, tb) for k in keys],
        gop_frames=gop_frames,
        end=_seconds(times[-1] + step, tb),
    )
    return index, [float(t * tb) for t in times], rotation


def _typical(values: list[int]) -> int | None:
    positive = sorted(v for v in values if v > 0)
    return positive[len(positive) // 2] if positive else None


def _seconds(pts: int, tb: Fraction) -> float:
    return round(float(pts * tb), 6)


def _finish_facts(
    declared: dict[str, Any],
    index: FrameIndex,
    frame_times: list[float],
    rotation: int,
    limits: Limits,
) -> SourceFacts:
    start = index.keyframes[0]
    if abs(start) > MAX_START_SECONDS:
        raise UnsupportedInputError(
            f"the video's timestamps start at {start:.0f} s; vidflow reads files that start "
            f"within {MAX_START_SECONDS:.0f} s of zero"
        )
    duration = index.end - start
    if duration > limits.max_seconds:
        raise InputTooLongError(
            f"the video runs {duration:.0f} s; the limit is {limits.max_seconds:.0f} s"
        )
    deltas = sorted(b - a for a, b in pairwise(frame_times))
    if duration <= 0:
        raise UnsupportedInputError("the video has no duration: all its frames share one time")
    median = deltas[len(deltas) // 2] if deltas else duration
    vfr = bool(deltas) and (deltas[-1] - deltas[0]) > 0.25 * median
    frame_rate = len(frame_times) / duration if vfr or median <= 0 else 1.0 / median
    sar = declared["sar"]
    width, height = declared["coded_width"], declared["coded_height"]
    if sar and sar > 0 and sar != 1:
        width = round(width * float(sar))
    if rotation in (90, 270):
        width, height = height, width
    return SourceFacts(
        container=declared["container"],
        container_start=declared["container_start"],
        size_bytes=declared["size_bytes"],
        duration=round(duration, 6),
        start_time=start,
        video_codec=declared["video_codec"],
        profile=declared["profile"],
        pix_fmt=declared["pix_fmt"],
        bit_depth=declared["bit_depth"],
        coded_width=declared["coded_width"],
        coded_height=declared["coded_height"],
        display_width=width,
        display_height=height,
        rotation=rotation,
        frame_rate=round(frame_rate, 3),
        variable_frame_rate=vfr,
        frame_count=index.frame_count,
        video_bitrate=declared["video_bitrate"],
        audio=declared["audio"],
        keyframe_count=len(index.keyframes),
    )
