"""Read an untrusted upload and learn what it is, without trusting anything it claims.

The order matters: sniff the first bytes for indirection (playlists, concat lists),
hold the file to the length its container declares (``extent``), open the container
with an allow-list of demuxers and protocols, check declared sizes and durations
against the limits *before* decoding, then read the container's own index (never every
packet: an hour of video would take a minute; only a Matroska file with neither
duration nor cues has nothing else to tell its end) and decode the first frame.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import Any

import av
import av.error
import av.sidedata.sidedata

from workflow.errors import (
    InputTooLargeError,
    InputTooLongError,
    NoVideoStreamError,
    TransientError,
    TruncatedInputError,
    UnsupportedInputError,
    VidflowError,
)
from workflow.media.chunks import FrameIndex, keyframe_reach
from workflow.media.encode import MPEGTS_WRAP
from workflow.media.extent import cut_short, flv_last_video_ms
from workflow.media.facts import AudioFacts, SourceFacts
from workflow.media.ladder import MAX_SIDE, MIN_SIDE
from workflow.media.picture import HDR_TRANSFERS, assumed_colour
from workflow.media.sidx import SegmentIndex, segment_index
from workflow.media.sniff import ALLOWED_DEMUXERS, DEMUXER_FOR_FAMILY, protocols_for, sniff
from workflow.media.subtitles import stream_language
from workflow.settings import Limits


@dataclass(frozen=True)
class Probe:
    facts: SourceFacts
    index: FrameIndex
    # Where the first audio stream's samples start and end on the file's clock, where
    # asked for (``audio_span``) and found; None otherwise.
    audio_span: tuple[float, float] | None = None
    # The video frames presented before the first picture that decodes, and how long
    # before it the earliest is, where asked for (``leading_frames``) and any are there.
    undecodable_head: UndecodableHead | None = None


# Why an H.264/HEVC stream read whole declares no frame size: its decoder setup is sent
# in-band, and a live segment cut where none was sent has none.
_NO_PARAMETER_SETS = (
    ": its parameter sets (SPS/PPS) are not in the file, as in a segment cut from a stream "
    "between keyframes, or from an encoder that sends them only with its first keyframe "
    "(x264's intra-refresh or open-gop without repeat-headers). Cut segments at the "
    "encoder's keyframes, and have it send its parameter sets with each (x264: "
    "repeat-headers=1)"
)

# Two times closer than this are the same frame's (a millisecond: a 240 fps frame lasts 4).
_SAME_FRAME = 0.001

# Attached fonts and pictures a file may carry (a subtitled release's fonts: tens).
MAX_ATTACHMENTS = 1000

# Timestamps further out than this (MPEG-TS wraps at 26.5 h) are damage, not video.
MAX_START_SECONDS = 1e7


def probe(
    source: str | io.IOBase,
    *,
    head: bytes,
    size: int,
    limits: Limits,
    timeout: float = 60.0,
    headers: str | None = None,
    read_for: float = math.inf,
    audio_span: bool = False,
    max_hole: float = math.inf,
    max_keyframe_interval: float = math.inf,
    audio_as_declared: bool = False,
    leading_frames: bool = False,
) -> Probe:
    """Probe ``source`` (a path, an http(s) URL, or a seekable file such as
    ``storage.RangeReader``) and read its index.

    ``headers`` are HTTP request headers sent with every read (an ``If-Match`` pin).
    ``read_for`` is how many seconds it may spend reading a file whole where nothing
    else says where its video ends (``_scanned_end``). ``audio_span`` reads the whole
    file's audio packets (a live segment's: seconds long) for where its audio ends.
    ``max_hole`` is the longest pause between two of an MP4's frames it accepts, and
    ``max_keyframe_interval`` the longest span without a keyframe that its index lists
    (``_check_keyframes``). ``audio_as_declared`` takes the audio track the file declares
    to play even where it cannot be decoded, and then none (``_chosen_audio``).
    ``leading_frames`` reads the whole file's video packets (a live segment's) for frames
    presented before its first decodable picture (``_undecodable_head``).
    """
    until = time.monotonic() + read_for
    if size > limits.max_bytes:
        raise InputTooLargeError(f"the file is {size} bytes; the limit is {limits.max_bytes}")
    family = sniff(head)
    read_at = _reader_at(source)
    short = cut_short(family, head, size, read_at)
    if short:
        raise TruncatedInputError(f"the file is cut short: {short}")
    options = {"format_whitelist": ",".join(ALLOWED_DEMUXERS)}
    if isinstance(source, str):  # a file object is read through Python, never a protocol
        options["protocol_whitelist"] = protocols_for(source)
    if headers:
        options["headers"] = headers
    try:
        container = av.open(
            source,
            format=DEMUXER_FOR_FAMILY[family],
            options=options,
            timeout=timeout,
            metadata_errors="replace",
        )
    except av.error.FFmpegError as exc:
        raise _unreadable(family, exc) from None
    with container:
        try:
            declared = _declared_facts(container, family, size, limits, audio_as_declared)
            index, rate, variable, picture, peak = _index_video(
                container, family, size, limits, read_at, until, max_hole, max_keyframe_interval
            )
            _check_clock_runs_on(container, family, size, read_at, index.end)
            if declared["audio"] is None and not audio_as_declared:
                declared = _with_late_audio(container, declared, index, until)
            facts = _finish_facts(declared, index, rate, variable, picture, limits, peak)
            span = (
                _audio_span(container, facts.audio.index, until)
                if audio_span and facts.audio
                else None
            )
            lost = _undecodable_head(container, facts.start_time, until) if leading_frames else None
        except VidflowError:
            raise  # the input's fault, named, or the reader's (a replaced upload, S3 away)
        except Exception as exc:
            # PyAV raises more than FFmpegError on damaged input (IndexError,
            # PermissionError from a refused seek, ...): the file cannot be read, which
            # is the user's to fix, never a crash.
            raise _unreadable(family, exc) from None
    return Probe(facts, index, span, lost)


# Video frames decoded to check an fMP4 segment against an init segment: one read behind
# another encoder run's init fails in its first picture.
CHECKED_FRAMES = 8

# What H.264's decoder logs of a slice it could not read (behind another run's parameter
# sets); not what it logs of references from before the segment (an open GOP's).
_MISREAD = re.compile(r"error while decoding MB|concealing \d+ DC|decode_slice_header|no frame!")


def fits_init(init: bytes, segment: bytes, limits: Limits, frames: int = CHECKED_FRAMES) -> bool:
    """Whether an fMP4 ``segment`` reads behind ``init``: its first ``frames`` video
    frames, from its first keyframe, decode at the picture size the init declares and
    without a slice the decoder could not read.

    Behind the init of another encoder run's settings, H.264 slices are misread (errors
    the decoder conceals, never raises); where a segment carries its own parameter sets
    (AV1, H.264 repeating them), its picture comes out at its own size. HEVC behind
    another run's init decodes without a sign (limits.md). An init with no video fits no
    live segment; a picture over ``limits`` is never decoded here (the probe refuses it).
    """
    declared = _declared_size(init)
    if declared is None:
        return False
    if declared[0] * declared[1] > limits.max_pixels:
        return True
    previous, repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # else a line the last check logged goes unseen
    sizes: set[tuple[int, int]] = set()
    decoded = 0
    try:
        with av.logging.Capture() as logged, _open_mp4(init + segment) as container:
            video = container.streams.video[0]
            video.codec_context.thread_count = 1  # its errors logged on this thread
            keyed = False
            for packet in _demux(container, video):
                keyed = keyed or packet.is_keyframe
                if keyed:
                    for frame in video.decode(packet):
                        sizes.add((frame.width, frame.height))
                        decoded += 1
                if len(sizes) > 1 or decoded >= frames:
                    break  # (the demuxer's last, empty packet flushes the decoder)
    except (av.error.FFmpegError, ValueError, IndexError):
        return False
    finally:
        av.logging.set_level(previous)
        av.logging.set_skip_repeated(repeated)
    misread = any(_MISREAD.search(message) for _, _, message in logged)
    return sizes == {declared} and not misread


def _demux(container: Any, *streams: Any) -> Iterator[Any]:
    """``container.demux(*streams)``, ending quietly where PyAV's trips over a stream that
    appeared mid-file.

    PyAV sizes its list of wanted streams as demuxing starts and, flushing at the end,
    reads it for every stream the file has by then: one added mid-file (MPEG-PS, TS, FLV)
    is read past the list's end, and where that memory is not zero PyAV asks for a stream
    it never added and raises IndexError (an MPEG-PS file whose audio starts late was
    refused as damaged in 20 of 20 probes). Every packet, the wanted stream's flush among
    them, was yielded before.
    """
    try:
        yield from container.demux(*streams)
    except IndexError:
        return


def _open_mp4(data: bytes) -> Any:
    return av.open(
        io.BytesIO(data),
        "r",
        format=DEMUXER_FOR_FAMILY["mp4"],
        options={"format_whitelist": DEMUXER_FOR_FAMILY["mp4"]},
        metadata_errors="replace",  # a track named in Latin-1 is no damage
    )


def _declared_size(init: bytes) -> tuple[int, int] | None:
    """The picture size an init segment's first video track declares; None if none."""
    try:
        with _open_mp4(init) as container:
            if not container.streams.video:
                return None
            context = container.streams.video[0].codec_context
            return (context.width, context.height)
    except (av.error.FFmpegError, ValueError, IndexError):
        return None


def _reader_at(source: str | io.IOBase) -> Callable[[int, int], bytes] | None:
    """Read ``count`` bytes at ``offset`` of the source, leaving its position as it was;
    None for a URL (only a live segment is probed from one, and read whole anyway)."""
    if isinstance(source, io.IOBase):

        def read_from_file(offset: int, count: int) -> bytes:
            position = source.tell()
            try:
                source.seek(offset)
                return source.read(count) or b""
            finally:
                source.seek(position)

        return read_from_file
    if protocols_for(source) != "file":
        return None

    def read_from_path(offset: int, count: int) -> bytes:
        with open(source, "rb") as file:
            file.seek(offset)
            return file.read(count)

    return read_from_path


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


def _declared_facts(
    container: Any, family: str, size: int, limits: Limits, audio_as_declared: bool = False
) -> dict[str, Any]:
    streams = list(container.streams)
    # Fonts and cover art attached to a file (a subtitled Matroska release carries tens
    # of fonts) are read with its header, never demuxed: only its tracks are bound.
    attached = [s for s in streams if s.type == "attachment" or _is_cover_art(s)]
    tracks = len(streams) - len(attached)
    if tracks > limits.max_streams:
        raise InputTooLargeError(f"the file has {tracks} tracks; the limit is {limits.max_streams}")
    if len(attached) > MAX_ATTACHMENTS:
        raise InputTooLargeError(
            f"the file has {len(attached)} attachments; the limit is {MAX_ATTACHMENTS}"
        )
    videos = [s for s in streams if s.type == "video" and not _is_cover_art(s)]
    if not videos:
        # (a song's cover art is a picture, not the video it is named as missing)
        kinds = sorted({"cover art" if _is_cover_art(s) else s.type for s in streams}) or [
            "nothing"
        ]
        raise NoVideoStreamError(f"the file has no video stream (it holds {', '.join(kinds)})")
    if len(videos) > 1:
        # The encodes read the first video stream; which one the uploader meant (a still
        # listed first, a second angle) is not in the file, so it is not guessed.
        raise UnsupportedInputError(
            f"the file has {len(videos)} video streams and vidflow publishes one; upload a "
            "copy with only the one to publish (ffmpeg -i FILE -map 0:v:N -map 0:a? -c copy "
            "OUT, where N counts the video streams from 0)"
        )
    video = videos[0]
    ctx = video.codec_context
    if ctx is None:
        raise UnsupportedInputError("the video stream's codec is not one vidflow can decode")
    if not ctx.width or not ctx.height:
        raise UnsupportedInputError(
            "the video stream declares no frame size"
            + (_NO_PARAMETER_SETS if ctx.name in ("h264", "hevc") else "")
        )
    sar = video.sample_aspect_ratio
    display_width = round(ctx.width * float(sar)) if sar and sar > 0 and sar != 1 else ctx.width
    _check_picture_size(f"{ctx.width}x{ctx.height}", ctx.width, ctx.height, limits)
    if display_width != ctx.width:
        # The rungs are made at the size the picture is shown at: that size is bound too.
        _check_picture_size(
            f"{ctx.width}x{ctx.height} with a pixel aspect of {sar.numerator}:{sar.denominator}, "
            f"shown at {display_width}x{ctx.height}",
            display_width,
            ctx.height,
            limits,
        )
    end = _container_end(container, family)
    declared = end - (container.start_time or 0) / 1_000_000 if end is not None else None
    rate = _average_rate(video, family) or _guessed_rate(video)
    if declared is not None and declared > limits.max_seconds:
        # An MPEG-TS/PS span is its head's and tail's timestamps apart: in one too small
        # for it they jump (captures joined with the later one first span the 26.5 h wrap).
        if family in ("mpegts", "mpeg"):
            small = {"container": DEMUXER_FOR_FAMILY[family], "size_bytes": size}
            _check_bytes_for_span(small, declared, float(rate or 1))
        raise InputTooLongError(
            f"the file declares {declared:.0f} s; the limit is {limits.max_seconds:.0f} s"
        )
    if rate is not None and float(rate) > limits.max_fps:
        raise InputTooLargeError(
            f"the video runs at {float(rate):.0f} fps; the limit is {limits.max_fps:g}"
        )
    # An audio stream vidflow cannot decode, or one that declares no channels, is left out.
    audio = None
    chosen = _chosen_audio(streams, audio_as_declared)
    if chosen is not None:
        number, a = chosen
        audio = _audio_facts(a, number, a.codec_context.channels, a.codec_context.sample_rate)
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
        "display_width": display_width,
        "hdr": HDR_TRANSFERS.get(ctx.color_trc),
        "assumed_colour": assumed_colour(
            ctx.height,
            {
                "colorspace": ctx.colorspace,
                "color_primaries": ctx.color_primaries,
                "color_trc": ctx.color_trc,
            },
        ),
        # Only sidecar subtitles are published: a track in the file is named as left out.
        "subtitles_left_out": [_track_name(s) for s in streams if s.type == "subtitle"],
        # One audio track is published: the others (an away commentary, a second
        # language) are named as left out.
        "audio_left_out": _audio_left_out(streams, None if chosen is None else chosen[1]),
        # Data tracks (a MOV's timecode, timed ID3, SCTE-35 cues, KLV) are not pictures or
        # sound: published without them, and named.
        "data_left_out": [_data_name(s) for s in streams if s.type == "data"],
        "declared_rate": float(rate) if rate else None,
        "video_bitrate": ctx.bit_rate or None,
        "audio": audio,
        "family": family,
    }


def _audio_facts(stream: Any, number: int, channels: int, sample_rate: int) -> AudioFacts:
    """The facts of audio ``stream``, ffmpeg's ``0:a:number``, with the channels and rate
    its header declares (or its first sound says, where the header said none)."""
    return AudioFacts(
        codec=stream.codec_context.codec.canonical_name,
        channels=channels,
        sample_rate=sample_rate,
        start_time=float(stream.start_time * stream.time_base) if stream.start_time else 0.0,
        language=stream_language(stream.metadata.get("language")),
        index=number,
    )


def _audio_left_out(streams: list[Any], chosen: Any) -> list[str]:
    """The audio tracks published without, named (every one but ``chosen``)."""
    return [_track_name(s) for s in streams if s.type == "audio" and s is not chosen]


def _track_name(stream: Any) -> str:
    """A track as the facts name one left out: "<language> (<codec>)", "und" unsaid."""
    language = stream_language(stream.metadata.get("language")) or "und"
    return language if stream.codec_context is None else f"{language} ({stream.codec_context.name})"


def _data_name(stream: Any) -> str:
    """A data track as the facts name one left out: "<language> (<what it holds>)"."""
    language = stream_language(stream.metadata.get("language")) or "und"
    kind = stream.name or ("timecode" if "timecode" in stream.metadata else "data")
    return f"{language} ({kind})"


def _chosen_audio(streams: list[Any], as_declared: bool = False) -> tuple[int, Any] | None:
    """The audio stream vidflow encodes and its number among the file's audio streams
    (ffmpeg's ``0:a:N``): of those it can decode that declare their channels, the first
    the file says to play (its default flag, as players and ffmpeg's own stream
    selection honour it), else the first; None where there is none.

    ``as_declared`` chooses among all the file's audio streams, and None where the one
    chosen cannot be decoded: a live segment whose commentary track carries no sound this
    time (its encoder lost that input) is silent, not another track's (a second language's).
    """
    audios = list(enumerate(s for s in streams if s.type == "audio"))
    playable = [
        (n, s) for n, s in audios if s.codec_context is not None and s.codec_context.channels > 0
    ]
    candidates = audios if as_declared else playable
    default = av.stream.Disposition.default
    chosen = next(
        ((n, s) for n, s in candidates if s.disposition & default),
        candidates[0] if candidates else None,
    )
    return chosen if chosen in playable else None


# How far the probe reads, from near the video's end and then from its start, for the
# first sound of an audio stream whose head did not describe it.
LATE_AUDIO_SECONDS = 10.0
# ... and at most this many packets, timed or not (10 s of 120 fps video and 48 kHz AAC
# are 1,670).
LATE_AUDIO_PACKETS = 4000


def _with_late_audio(
    container: Any, declared: dict[str, Any], index: FrameIndex, until: float
) -> dict[str, Any]:
    """``declared`` with the audio stream that the file's head did not describe, where
    its first sound near the video's end or its start says what it is.

    A container without a header of its tracks (MPEG-PS; an MPEG-TS whose program table
    gains the audio later) shows a stream only when its packets come: one whose sound
    starts past the head that opening the file reads (~5 s) is listed by the read of
    its tail, without channels or a rate. ffmpeg encodes it all the same, from its first
    packet, with silence before; left out, the game was published without a sound.
    """
    audios = [s for s in container.streams if s.type == "audio"]
    late = [
        (n, s)
        for n, s in enumerate(audios)
        if s.codec_context is not None and not s.codec_context.channels
    ]
    if not late:
        return declared
    default = av.stream.Disposition.default
    number, audio = next(((n, s) for n, s in late if s.disposition & default), late[0])
    video = container.streams.video[0]
    for s in container.streams:
        s.discard = av.stream.Discard.default if s in (video, audio) else av.stream.Discard.all
    sound = None
    for at in (max(index.start, index.end - LATE_AUDIO_SECONDS), index.start):
        sound = _first_sound(container, video, audio, at, until)
        if sound is not None:
            break
    audio.discard = av.stream.Discard.all  # as the probe left it: only the video is read
    if sound is None:
        return declared
    return {
        **declared,
        "audio": _audio_facts(audio, number, *sound),
        "audio_left_out": _audio_left_out(audios, audio),
    }


def _first_sound(
    container: Any, video: Any, audio: Any, at: float, until: float
) -> tuple[int, int] | None:
    """The channels and rate of ``audio``'s first decodable frame in the
    ``LATE_AUDIO_SECONDS`` from ``at`` s on the file's clock (by its packets' times, the
    video's too, so that a stretch without sound ends the read); None where it has none."""
    stop = at + LATE_AUDIO_SECONDS
    try:
        container.seek(round(at * av.time_base), backward=True, any_frame=True)
        for count, packet in enumerate(_demux(container, video, audio)):
            if count > LATE_AUDIO_PACKETS or (
                packet.pts is not None and float(packet.pts * packet.time_base) > stop
            ):
                return None
            if packet.stream is audio:
                for frame in packet.decode():
                    if frame.sample_rate and frame.layout.nb_channels:
                        return frame.layout.nb_channels, frame.sample_rate
            if time.monotonic() > until:
                return None
    except (av.error.FFmpegError, ValueError):
        return None  # no sound there that decodes: left out, as its head left it
    return None


def _audio_span(container: Any, number: int, until: float) -> tuple[float, float] | None:
    """Where audio stream ``number`` (``_chosen_audio``'s) has its samples start and end on
    the file's clock, from its packets
    read from the file's start (each packet's time plus its duration); None where
    they give no times or the reading outlasts ``until``.

    A segment cut from a stream at its video's keyframes holds its own audio, which is
    not its video's span: a muxer interleaving by decode time puts the sound of the
    frames a keyframe's B-frame delay holds back in the file before it.
    """
    audio = container.streams.audio[number]
    for s in container.streams:
        s.discard = av.stream.Discard.default if s is audio else av.stream.Discard.all
    first = last = None
    try:
        container.seek(container.start_time or 0, backward=True, any_frame=True)
        for count, packet in enumerate(_demux(container, audio)):
            if packet.pts is not None and packet.size:
                first = packet.pts if first is None else min(first, packet.pts)
                stop = packet.pts + (packet.duration or 0)
                last = stop if last is None else max(last, stop)
            if count % 256 == 0 and time.monotonic() > until:
                return None
    except av.error.FFmpegError:
        return None  # a span the video's probe read without it: the video's span serves
    if first is None or last is None or last <= first:
        return None
    return _seconds(first, audio.time_base), _seconds(last, audio.time_base)


@dataclass(frozen=True)
class UndecodableHead:
    """The video frames a file presents before its first picture that decodes. Those
    sent before its first keyframe (``cut``) show the file was cut from a stream between
    keyframes, by the clock or by bytes; those sent after it (``leading``) are an open
    GOP's leading pictures, which refer to the GOP before. ``seconds``: how long before
    that picture the earliest of them is."""

    cut: int
    leading: int
    seconds: float


def _undecodable_head(container: Any, start: float, until: float) -> UndecodableHead | None:
    """The frames of the video presented before ``start`` (its first picture that
    decodes); None where there are none, or the reading outlasts ``until``. Read alone,
    no decoder can show them, and an encode of the file drops them."""
    video = container.streams.video[0]
    for s in container.streams:
        s.discard = av.stream.Discard.default if s is video else av.stream.Discard.all
    before = start - _SAME_FRAME
    cut, leading, earliest, key_at = 0, 0, start, None
    try:
        # From the file's first byte: a seek to its start time (its earliest packet's
        # decode time) lands past the first few frames of a file that starts mid-GOP, and
        # one to 0 lands mid-file where its clock wraps (starting below 0).
        container.seek(-(1 << 62), backward=True, any_frame=True)
        for read, packet in enumerate(_demux(container, video)):
            if packet.pts is not None and packet.size:
                at = _seconds(packet.pts, video.time_base)
                if key_at is None and packet.is_keyframe:
                    key_at = at
                if at < before:
                    # (shown before the keyframe they follow: an open GOP's; else they
                    # follow no keyframe, or one whose refresh has not come round yet)
                    opened = key_at is not None and at < key_at - _SAME_FRAME
                    leading += opened
                    cut += not opened
                    earliest = min(earliest, at)
            if read % 256 == 0 and time.monotonic() > until:
                return None
    except av.error.FFmpegError:
        return None
    if not cut and not leading:
        return None
    return UndecodableHead(cut, leading, round(start - earliest, 6))


def _check_picture_size(described: str, width: int, height: int, limits: Limits) -> None:
    """Refuse a picture no rung can be made at: under ``MIN_SIDE`` a side (libvmaf
    crashes), over ``limits.max_pixels``, or wider or taller than x264 encodes."""
    if min(width, height) < MIN_SIDE:
        raise UnsupportedInputError(
            f"the video is {described}; vidflow needs at least {MIN_SIDE} pixels a side"
        )
    if width * height > limits.max_pixels:
        raise InputTooLargeError(
            f"the video is {described}; the limit is {limits.max_pixels} pixels"
        )
    if max(width, height) > MAX_SIDE:
        raise InputTooLargeError(f"the video is {described}; the limit is {MAX_SIDE} pixels a side")


def _is_cover_art(stream: Any) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _bit_depth(pix_fmt: str) -> int:
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8


def _index_video(
    container: Any,
    family: str,
    size: int,
    limits: Limits,
    read_at: Callable[[int, int], bytes] | None = None,
    until: float = math.inf,
    max_hole: float = math.inf,
    max_keyframe_interval: float = math.inf,
) -> tuple[FrameIndex, float | None, bool, tuple[int, bool, bool], int | None]:
    """The video's span and the keyframes its container's index lists, its frame rate
    and whether it varies, its first picture's rotation, whether it is interlaced and
    whether it carries captions, and, where an index lists every frame of a rate that
    varies, the most frames any second holds; reading only the index and the first frames.

    MP4/MOV lists every sample (by decode time: a keyframe is presented a constant
    reorder delay later, measured on the first); Matroska/WebM lists keyframes in its
    cues, read on the first seek, AVI in its idx1 and FLV in its metadata where they have
    them; other containers list nothing and are cut by time.
    """
    video = container.streams.video[0]
    tb = video.time_base
    fragments = None
    if family == "matroska":
        _read_cues(container, video)
    indexed = _index_entries(video)
    if family == "mp4" and indexed.end_byte > size:
        raise TruncatedInputError(
            f"the file is cut short: its index lists video up to byte {indexed.end_byte} of {size}"
        )
    # MP4 lists every frame's time: there is nothing to sample.
    packet, first, rotation, sampled, read_end = _first_frame(
        container, video, family, 0 if family == "mp4" else SAMPLED_PACKETS
    )
    if first.pts is None:
        raise TruncatedInputError(f"the file starts like {family} but its frames have no times")
    start = _seconds(first.pts, tb)
    # AVI keeps no presentation times, only the frames' decoding order: the time a frame
    # is given is the demuxer's guess, and FFmpeg versions guess apart (PyAV's 8.1 puts an
    # H.264 Baseline frame a tick after its decoding time, the ffmpeg 9 that encodes puts
    # it at that time). A video that presents its frames in decoding order (no B-frames)
    # is on its decoding times: a start a tick late cut the first frame out of every rung
    # (a one-frame file's only one, and its job failed making the poster). One with
    # B-frames keeps the guess: ffmpeg presents its frames later still, and its index's
    # keyframes, listed at decoding times, are not where they are shown. Unless its first
    # picture came out only as the decoder was drained (no decoding time: fewer frames
    # than the reorder delay, as a one-frame H.264 Main/High or HEVC file): ffmpeg puts
    # that one at its decoding time too, and the guess a tick later cut it out.
    late = 0
    reordered = bool(getattr(video.codec_context, "has_b_frames", True)) and first.dts is not None
    if family == "avi" and not reordered and packet.pts is not None and packet.dts is not None:
        late = max(0, packet.pts - packet.dts)
        start = _seconds(first.pts - late, tb)
    offset = 0
    if family == "mp4" and packet.pts is not None and packet.dts is not None:
        offset = packet.pts - packet.dts  # the reorder delay: index times are decode times
    keys = sorted({_seconds(t + offset, tb) for t in indexed.keyframes})
    if family in ("mpeg", "mpegts"):
        # No index: the entries their demuxers make of the packets read while opening and
        # seeking to the tail are not one (MPEG-PS's marks every video pack a keyframe).
        keys = []
    # A stream of a frame or two has no average rate, and ffmpeg's guess (from its
    # time base) reads 30 fps H.264 as 60: the rate its codec declares comes first.
    rate = (
        _average_rate(video, family)
        or video.codec_context.framerate
        or video.guessed_rate
        or video.base_rate
    )
    rate = float(rate) if rate else None
    peak = None
    if family == "mp4" and len(indexed.times) > 1:
        times = sorted(indexed.times)
        _check_holes(times, tb, max_hole)
        variable, median = _varies(times)
        end = _seconds(
            times[-1] + offset + (_typical([b - a for a, b in pairwise(times)]) or 0), tb
        )
        if median > 0:
            rate = len(times) / max(end - start, 1e-6) if variable else 1 / float(median * tb)
        if variable:
            peak = _busiest_second(times, tb)
        fragments = segment_index(read_at, size, video.id) if read_at is not None else None
        if fragments is not None:
            listed_end, listed_keys = _listed(fragments, start, size)
            if listed_end > end + 1e-3:
                keys, end = listed_keys, listed_end
            else:
                fragments = None  # ffmpeg listed every frame: the index adds nothing
    else:
        declared_end = _declared_end(container, video, family)
        if read_end is not None:
            # Read whole while sampling (a live segment of a few frames): its own packets
            # say where it ends (a container's estimate takes a guessed rate, or its
            # longest track's length).
            declared_end = _seconds(read_end, tb)
        elif family == "flv" and declared_end is not None and read_at is not None and rate:
            # FLV declares its longest track's length: where its video ends is in its tags.
            last = flv_last_video_ms(size, read_at)
            if last is not None and start <= last / 1000 < declared_end - 1 / rate:
                declared_end = round(last / 1000 + 1 / rate, 6)
        if declared_end is not None:
            end = declared_end
        elif family == "matroska":
            end = _scanned_end(container, video, family, start, limits.max_seconds, until)
        else:
            raise TruncatedInputError("the file declares no duration and has no index to find one")
        variable = _varies(sampled)[0] or _declared_variable(video, family)
        if late and read_end is None and video.duration:
            # (AVI's header counts its frames: that many from the first's decoding time,
            # whichever of its times FFmpeg gives the stream's start)
            end = round(start + float(video.duration * tb), 6)
        else:
            # (the packets' end is on the guessed times: as many frames on the decoding ones)
            end = round(end - float(late * tb), 6)
    # Listed times outside the video are no keyframes: FLV's demuxer, opening a file
    # without its keyframe list, at times lists one at ~9.4e10 s (2 of 12 probes of the
    # same file), which the check below would take for an index reaching the end.
    keyframes = [k for k in keys if start <= k < end]
    if family != "mp4" and keyframes and keyframes[-1] - start < (end - start) / 2:
        # Not an index: entries the demuxer made from the packets it read while opening
        # the file (FLV without its keyframe list, Matroska without cues), a few seconds'.
        keyframes = []
    # MP4 lists every frame, so its keyframes are all there are, one or many (its
    # segment index, only those that start a fragment).
    listed = keys if family == "mp4" and fragments is None else keyframes
    if listed:
        _check_keyframes(listed, start, end, keyframe_reach(rate, max_keyframe_interval))
    if len(keyframes) < 2:
        keyframes = []  # one keyframe says nothing about where the others are
    index = FrameIndex(start=start, end=max(end, start), keyframes=keyframes)
    return index, rate, variable, (rotation, bool(first.interlaced_frame), _captioned(first)), peak


@dataclass(frozen=True)
class _Listed:
    """What a container's index lists for a stream, discarded entries left out: every
    entry's time and every keyframe's (in the index's order, its time base), and the
    byte where the furthest entry ends (0 where it lists none)."""

    times: list[int]
    keyframes: list[int]
    end_byte: int


def _index_entries(video: Any) -> _Listed:
    """What the container's index lists for ``video``, copied out now.

    PyAV's entries point into FFmpeg's index array, valid only until the stream is read
    again, and reading a packet adds to it (a Matroska keyframe the cues did not list,
    AVI's and FLV's too), which may move it. Read after a packet, they gave whatever the
    moved memory held: a Matroska file keyed 130 s apart was refused in one probe and
    planned with no keyframes in the next. (Copied as columns, not an object per entry:
    three hours of MP4 list 324,000, and an object each took the probe 0.3 to 0.5 s more.)
    """
    entries = [e for e in video.index_entries if not e.is_discard]
    return _Listed(
        times=[e.timestamp for e in entries],
        keyframes=[e.timestamp for e in entries if e.is_keyframe],
        end_byte=max((e.pos + e.size for e in entries), default=0),
    )


def _captioned(frame: Any) -> bool:
    """Whether a decoded picture carries CEA-608/708 captions (H.264/MPEG-2 A53 user
    data): a broadcast encoder sends them with every picture, padding where nothing is
    said, so the first one tells.

    PyAV lists a frame's side data only where it can name every type, and FFmpeg 8 adds
    types it cannot (a camera JPEG's Exif, H.264's LCEVC): such a picture reads as having
    no captions rather than the file as damaged.

    Looked up by type, the container's one way that PyAV 18.1.1 kept: its iteration gave
    side data up to 18.1.0, types since (every probe failed on ``data.type``).
    """
    try:
        listed = frame.side_data
    except ValueError:
        return False
    return listed.get(av.sidedata.sidedata.Type.A53_CC) is not None


def _listed(fragments: SegmentIndex, start: float, size: int) -> tuple[float, list[float]]:
    """Where a fragmented MP4 ends and the keyframes that start its fragments, by its
    segment index, on the file's timeline (ffmpeg, opening the file, listed only its first
    fragment's frames). The index's times are put there by its first fragment's start,
    which is the first frame's: an edit list moves both."""
    if fragments.last_byte > size:
        raise TruncatedInputError(
            f"the file is cut short: its segment index lists fragments up to byte "
            f"{fragments.last_byte} of {size}"
        )
    shift = start - fragments.earliest
    return fragments.end + shift, [t + shift for t in fragments.keyframes]


def _check_holes(times: list[int], tb: Fraction, max_hole: float) -> None:
    """Refuse an MP4 whose frames pause longer than ``max_hole`` seconds (frames joined
    from recordings hours apart, or a sample table written so): the chunks planned in the
    pause would have nothing to encode."""
    gap, before = max(((b - a, a) for a, b in pairwise(times)), default=(0, 0))
    if _seconds(gap, tb) > max_hole:
        raise UnsupportedInputError(
            f"the video has no frame for {_seconds(gap, tb):.0f} s after "
            f"{_seconds(before, tb):.3f} s (vidflow publishes pauses of up to "
            f"{max_hole:g} s between frames); upload each recording on its own"
        )


def _check_keyframes(keys: list[float], start: float, end: float, longest: float) -> None:
    """Refuse a video whose index lists keyframes further apart than ``longest`` seconds
    (or a last one that far before its end): a chunk decodes from the keyframe the seek
    lands on, and every chunk between two such keyframes would decode from the first
    (from the file's start, for a video keyed only there)."""
    # Before the first listed keyframe a seek lands on the first frame.
    keys = [start, *(k for k in keys if start < k < end), end]
    gap, after = max((b - a, a) for a, b in pairwise(keys))
    if gap > longest:
        raise UnsupportedInputError(
            f"the video has no keyframe for {gap:.0f} s after {after:.3f} s (vidflow takes "
            f"keyframes up to {longest:.0f} s apart here): re-encode it with a keyframe every few "
            "seconds (ffmpeg's -g, in frames: -g 60 at 30 fps)"
        )


def _read_cues(container: Any, video: Any) -> None:
    """Matroska reads its cues (its keyframe index) on the first seek: seek to the start.

    A file without cues, or one whose seek fails, is cut by time instead.
    """
    try:
        container.seek(video.start_time or 0, stream=video)
    except (av.error.FFmpegError, OSError):
        return


# The packets a probe reads looking for the first picture before it gives up, and the
# video packets whose times it samples where the container lists no frame times.
FIRST_FRAME_PACKETS = 1000
SAMPLED_PACKETS = 120
_REORDER = 16  # the most frames a decoder holds back (H.264's DPB)


def _first_frame(
    container: Any, video: Any, family: str, sampled: int
) -> tuple[Any, Any, int, list[int], int | None]:
    """The first keyframe's packet, the first picture decoded, its rotation, the
    presentation times of the first ``sampled`` packets from there on, and, where that
    read the whole stream, where its last frame ends.

    This proves the stream decodes; a stream that does not within
    ``FIRST_FRAME_PACKETS`` packets is refused.
    """
    key = first = None
    rotation = 0
    times: list[int] = []
    last_end: int | None = None
    whole = False
    try:
        for count, packet in enumerate(_demux(container, video)):
            if packet.pts is not None and packet.size:
                stop = packet.pts + (packet.duration or 0)
                last_end = stop if last_end is None else max(last_end, stop)
            if first is None:
                if count >= FIRST_FRAME_PACKETS:
                    break
                if key is None and packet.is_keyframe:
                    key = packet
                for frame in video.decode(packet):
                    first = frame
                    rotation = round(getattr(frame, "rotation", 0) or 0) % 360
                    break
            if first is not None and len(times) >= sampled:
                break
            if key is not None and packet.pts is not None and packet.size:
                times.append(packet.pts)
        else:
            whole = True
    except av.error.FFmpegError as exc:
        if first is None:
            raise _unreadable(family, exc) from None
    if first is None and key is None and last_end is None:
        hint = " (a fragmented MP4's init segment without its media segments?)"
        raise TruncatedInputError(
            f"the file starts like {family} but its video track holds no frames"
            + (hint if family == "mp4" else "")
        )
    if first is None:
        raise TruncatedInputError(f"the file starts like {family} but no video frame decodes")
    # Packets come in decode order: the last few may still miss frames presented before
    # them, which would read as a hole.
    settled = min(times[-_REORDER:], default=0)
    read_end = last_end if whole else None
    return key or first, first, rotation, sorted(t for t in times if t < settled), read_end


def _busiest_second(times: list[int], tb: Fraction) -> int:
    """The most frames of these (sorted) times that any one second holds."""
    second = 1 / tb
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= second:
            first += 1
        most = max(most, last - first + 1)
    return most


def _varies(times: list[int]) -> tuple[bool, int]:
    """Whether frames of these times last unequally long, and their typical duration."""
    steps = sorted(b - a for a, b in pairwise(times))
    if not steps:
        return False, 0
    median = steps[len(steps) // 2]
    return median > 0 and steps[-1] - steps[0] > 0.25 * median, median


def _scanned_end(
    container: Any,
    video: Any,
    family: str,
    start: float,
    max_seconds: float,
    until: float = math.inf,
) -> float:
    """Where the video ends, found by reading the file from its start to its end: a
    Matroska file with neither its duration nor its cues (a recording whose writer was
    killed, as OBS leaves one after a crash, or one written to a pipe) says it nowhere
    else. Reads the whole file once, its video packets only, decoding nothing; stops
    with ``InputTooLongError`` as soon as the video runs longer than ``max_seconds``,
    and with ``InputTooLargeError`` if it is still reading at ``until`` (the clock's
    ``time.monotonic``): a file too big to read whole in the probe's time, which is
    named rather than ended by the function's timeout, attempt after attempt."""
    end = None
    limit = (start + max_seconds) / float(video.time_base)
    try:
        container.seek(video.start_time or 0, stream=video)
        for count, packet in enumerate(_demux(container, video)):
            if packet.pts is not None and packet.size:
                stop = packet.pts + (packet.duration or 0)
                end = stop if end is None else max(end, stop)
                if end > limit:
                    raise InputTooLongError(
                        f"the video runs longer than {max_seconds:.0f} s, the limit"
                    )
            if count % 256 == 0 and time.monotonic() > until:
                raise InputTooLargeError(
                    "the file declares neither its duration nor an index (Matroska cues), "
                    "so it is read whole to find its end, and it is too big to read in the "
                    "probe's time; remux it to write them (ffmpeg -i in.mkv -c copy out.mkv)"
                )
    except av.error.FFmpegError as exc:
        if end is None:
            raise _unreadable(family, exc) from None
    if end is None:
        raise TruncatedInputError("the file declares no duration and holds no timed video")
    return _seconds(end, video.time_base)


def _container_end(container: Any, family: str) -> float | None:
    """Where the file ends on its own timeline by its container's account; None where it
    declares no duration.

    ffmpeg reports a file's duration as a length from its first timestamp, except
    Matroska's, which is the segment's Duration as written: counted from the timeline's
    zero (ffmpeg's muxer writes its last frame's end), so a file cut at 5 h declares
    5 h and more. One that is no later than the first timestamp cannot be an end, and is
    read as a length.
    """
    if not container.duration:
        return None
    origin = float(container.start_time or 0) / 1_000_000
    declared = float(container.duration) / 1_000_000
    if family == "matroska" and declared > origin:
        return declared
    return origin + declared


def _declared_end(container: Any, video: Any, family: str) -> float | None:
    """Where the video ends by its container's own account (MPEG-TS: its last timestamps,
    read from the file's tail; Matroska: its track's ``DURATION`` tag, where the track
    ends, else the file's duration, which is its longest track's); None where it gives
    none."""
    if video.duration:
        return _seconds((video.start_time or 0) + video.duration, video.time_base)
    tagged = _tagged_end(video)
    start = _seconds(video.start_time or 0, video.time_base)
    whole = _container_end(container, family)
    if tagged is not None and start < tagged <= (math.inf if whole is None else whole + 1.0):
        return tagged
    return None if whole is None else round(whole, 6)


def _tagged_end(video: Any) -> float | None:
    """A Matroska track's ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``, written by ffmpeg and
    mkvmerge): where the track ends on the file's timeline. Without it a video shorter
    than its audio would be planned to the audio's end."""
    tag = (video.metadata or {}).get("DURATION", "")
    match = _DURATION_TAG.fullmatch(tag.strip())
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 6)


_DURATION_TAG = re.compile(r"(\d{1,4}):([0-5]\d):(\d{1,2}(?:\.\d{1,9})?)")


def _average_rate(video: Any, family: str) -> Fraction | None:
    """The video's average frame rate as its container declares it, but for an AVI whose
    declared rate is a clock tick faster than its frames come.

    AVI declares one rate, its tick; a file written at a finer tick than its frames
    (``ffmpeg -c copy`` from MP4 writes 1/600 s, empty "dropped" frames filling the ticks
    between pictures) declares 600 fps for 25. ffmpeg's rate guessed from the packets'
    own times ("25 tbr") is then the picture rate; a real 600 fps file's guess is 600.
    """
    average, guessed = video.average_rate, video.guessed_rate
    if family == "avi" and average and guessed and guessed < average:
        return Fraction(guessed)
    return Fraction(average) if average else None


def _guessed_rate(video: Any) -> Fraction | None:
    """ffmpeg's guess at a rate the container does not declare, but none where the guess
    is only the clock its times count in: a track without a frame (a fragmented MP4's
    init segment alone) guesses 90000 fps, and was refused as that fast, not as empty."""
    guessed = video.guessed_rate or video.base_rate
    if not guessed or (video.time_base and guessed == 1 / video.time_base):
        return None
    return Fraction(guessed)


def _declared_variable(video: Any, family: str) -> bool:
    """A stream whose average rate differs from its base rate varies its frame rate."""
    average, base = _average_rate(video, family), video.base_rate
    return bool(average and base and abs(float(average) - float(base)) > 0.01 * float(base))


def _typical(values: list[int]) -> int | None:
    positive = sorted(v for v in values if v > 0)
    return positive[len(positive) // 2] if positive else None


def _seconds(pts: int, tb: Fraction) -> float:
    return round(float(pts * tb), 6)


# The fewest bytes a frame takes where the span is read from timestamps or a declared
# duration rather than counted frame by frame: a fraction of the fewest measured (a black
# 160x90 still: 331 in TS, which starts every frame's PES in a 188-byte packet of its
# own; 58 in PS, which packs frames together; 24 in Matroska, 6 of them a SimpleBlock's
# header; 52 in AVI, 8 of them a chunk's header; 25 in MP4 fragments, 4 of them a frame's
# length). MPEG-TS/PS is as long as its head's and tail's timestamps say, so two captures
# joined end to end, the second written hours later, span the gap; a Matroska file
# without a DURATION tag is as long as its Duration says, an AVI as its stream header's
# frame count, a fragmented MP4 as its segment index's durations. Either way: hundreds
# of chunks, with nothing in them, for a file of kilobytes.
_MIN_BYTES_PER_FRAME = {"mpegts": 47, "mpeg": 8, "matroska": 4, "avi": 8, "mov": 4}


def _check_bytes_for_span(declared: dict[str, Any], duration: float, rate: float) -> None:
    """Refuse an MPEG-TS/PS, Matroska or AVI file too small to hold the frames it spans
    (at its frame rate, and at least one a second)."""
    floor = _MIN_BYTES_PER_FRAME.get(declared["container"])
    frames = duration * max(rate, 1.0)
    if floor is not None and declared["size_bytes"] < frames * floor:
        raise UnsupportedInputError(
            f"the file spans {duration:.0f} s ({frames:.0f} frames at {rate:g} fps) but holds "
            f"only {declared['size_bytes']} bytes: its timestamps jump (recordings joined end "
            "to end?) or it declares a duration it does not hold; upload each recording on "
            "its own"
        )


# Where an MPEG-TS/PS file's clock is read between its head and its tail, which alone
# give its timeline: at its start and at this many points spread over its bytes (over
# 4 MB, one for every 4 MB up to it: each read costs one S3 block of 256 KB, 2 MB of a
# 1 h 1080p file's 3 GB), each from a window this long (a TS's tables come again every
# 0.1-0.5 s).
CLOCK_SAMPLES = 7
CLOCK_WINDOW = 256 * 1024
# How far back a sample may read without a clock that goes back: frames presented out of
# the order they are stored in.
CLOCK_SLACK = 1.0


def _check_clock_runs_on(
    container: Any,
    family: str,
    size: int,
    read_at: Callable[[int, int], bytes] | None,
    end: float,
) -> None:
    """Refuse an MPEG-TS/PS file whose clock goes back between its head and its tail
    (where it ``end``s): two recordings joined end to end, the second from the same start,
    would be published as the first alone, the second's frames in its place, or as the
    second's span alone."""
    if family not in ("mpegts", "mpeg") or read_at is None:
        return
    video = container.streams.video[0]
    small = size <= 16 * CLOCK_WINDOW  # (read whole for the price of a few reads)
    samples = CLOCK_SAMPLES if small else min(CLOCK_SAMPLES, size // (16 * CLOCK_WINDOW))
    last = -math.inf
    for n in range(samples + 2):
        # (the file's first bytes, each point, then where its tail says it ends; a large
        # file's points on the S3 blocks the reader fetches)
        offset = size * n // (samples + 1)
        if not small:
            offset -= offset % CLOCK_WINDOW
        at = (
            _first_time_in(read_at(offset, CLOCK_WINDOW), family, video.id) if n <= samples else end
        )
        if at is None:
            continue
        while last > -math.inf and at < last - MPEGTS_WRAP / 2:  # (the clock wrapped)
            at += MPEGTS_WRAP
        if at < last - CLOCK_SLACK:
            where = f"near byte {offset} of {size}" if n <= samples else "by its tail"
            raise UnsupportedInputError(
                f"the video's clock goes back {where}, from {last:.1f} s to {at:.1f} s: "
                "recordings joined end to end? upload each recording on its own, or join "
                "them with ffmpeg's concat demuxer, which keeps one clock"
            )
        last = max(last, at)


def _first_time_in(data: bytes, family: str, stream_id: int) -> float | None:
    """The first video timestamp (seconds) of stream ``stream_id`` in a window of an
    MPEG-TS/PS file; None where the window holds none that ffmpeg reads."""
    try:
        with av.open(
            io.BytesIO(data),
            format=DEMUXER_FOR_FAMILY[family],
            options={"format_whitelist": DEMUXER_FOR_FAMILY[family]},
        ) as part:
            videos = [s for s in part.streams.video if s.id == stream_id]
            if not videos:
                return None
            for packet in _demux(part, videos[0]):
                if packet.pts is not None:
                    return float(packet.pts * videos[0].time_base)
    except (av.error.FFmpegError, ValueError):
        return None
    return None


def _finish_facts(
    declared: dict[str, Any],
    index: FrameIndex,
    rate: float | None,
    variable: bool,
    picture: tuple[int, bool, bool],
    limits: Limits,
    peak: float | None = None,
) -> SourceFacts:
    rotation, interlaced, captions = picture
    start = index.start
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
    if duration <= 0:
        raise UnsupportedInputError("the video has no duration: all its frames share one time")
    if not rate or rate <= 0:
        raise UnsupportedInputError("the video declares no frame rate")
    if rate > limits.max_fps:
        raise InputTooLargeError(
            f"the video runs at {rate:.0f} fps; the limit is {limits.max_fps:g}"
        )
    _check_bytes_for_span(declared, duration, rate)
    width, height = declared["display_width"], declared["coded_height"]
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
        frame_rate=round(rate, 3),
        variable_frame_rate=variable,
        peak_frame_rate=round(max(rate, peak or 0.0), 3),
        video_bitrate=declared["video_bitrate"],
        audio=declared["audio"],
        keyframe_count=len(index.keyframes),
        interlaced=interlaced,
        captions=captions,
        hdr=declared["hdr"],
        assumed_colour=declared["assumed_colour"],
        subtitles_left_out=declared["subtitles_left_out"],
        audio_left_out=declared["audio_left_out"],
        data_left_out=declared["data_left_out"],
    )
