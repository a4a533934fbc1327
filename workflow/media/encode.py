"""ffmpeg command lines, built as ffmpeg-python graphs and compiled to argument lists.

Every input is read with the demuxer the probe identified and an allow-list of
protocols, so a file can never make ffmpeg open another file or URL. Timestamps are
kept from the source (``-copyts``) and shifted by one constant, ``TS_OFFSET``, in every
chunk and in the audio: chunk 0 would otherwise be shifted by the B-frame delay while
later chunks are not, leaving duplicate timestamps at the first boundary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import ffmpeg

from workflow.media import audio_pieces, picture, quality
from workflow.media.audio_pieces import AudioPiece
from workflow.media.chunks import Chunk
from workflow.media.ladder import Rendition
from workflow.media.sniff import ALLOWED_DEMUXERS, protocols_for
from workflow.names import AUDIO, segment_pattern

# ffmpeg's MPEG-TS demuxer reads a clock that begins within 60 s of its 33-bit wrap
# (every 26.5 h) as starting up to 60 s before zero, and the muxers move a time below
# zero (measured: 50 live segments near the wrap all on one timestamp; a VOD's audio
# refused). Shifted by more than that, every output time is positive; an MPEG-TS muxer
# writes it modulo the wrap, so the output's clock runs on wherever the source's does.
TS_OFFSET = 70.0
# The 33-bit clock's period, in seconds.
MPEGTS_WRAP = 2**33 / 90_000
# ... and the mpegts muxer delays every timestamp it writes by twice its max_delay
# (-muxdelay, 0.7 s by default) on top, so a TS rendition's first frame is presented
# at start + TS_OFFSET + TS_MUXER_DELAY; fMP4 segments carry no such delay.
TS_MUXER_DELAY = 1.4
# Each segment is its own MPEG-TS file and starts with PAT, PMT and SDT; repeating them
# every 0.1 s (the muxer's default) costs ~30 kbit/s per rendition for nothing.
# An audio piece's input seek lands this long before its pre-roll: in MPEG-TS the audio
# beside a video frame may be muxed a second or more before it, and a seek finds video.
AUDIO_SEEK_MARGIN = 3.0
# Every source is published as stereo: ffmpeg's downmix (centre and surrounds at -3 dB
# to their sides, LFE dropped), scaled so its gains on an output channel add up to at
# most 1, as ATSC A/52 does (7.8). Unscaled, 5.1 adds front, centre and surround into
# one channel: up to 2.4 times full scale (+8 dBFS), which every player clips. A fixed
# gain, so pieces encoded apart (and a live stream's segments) join without a step.
DOWNMIX = {"out_chlayout": "stereo", "rematrix_maxval": 1}
TS_TABLES_ONCE = "pat_period=3600:sdt_period=3600"
# CMAF: each segment a fragmented MP4 of one fragment whose ``tfdt`` is the packet's own
# time: ``frag_discont`` takes it from the packet, not from zero, and
# ``avoid_negative_ts=disabled`` keeps the muxer from shifting it back to zero. So chunks
# encoded apart line up; ``cmaf.split_segment`` then takes the shared init off each.
# ``use_editlist=1`` with ``delay_moov`` (the muxer sees the first frame before it writes
# ``moov``) makes ``tfdt`` the first frame's presentation time and puts the B-frame delay in
# an edit list: without it HLS players start the video at ``tfdt``, two frames late.
# The muxer measures that delay in each segment from its own frames' spacing (uneven in a
# jittery or variable-rate source): ``cmaf.with_common_edit`` gives a rung one edit.
# Negative composition offsets instead would shift the video late in ffmpeg's demuxer
# (measured: by the largest negative offset, 69 ms at 30 fps, without or with an edit).
CMAF_FORMAT_OPTIONS = (
    "movflags=+frag_keyframe+empty_moov+default_base_moof+frag_discont+skip_trailer"
    "+delay_moov:use_editlist=1:avoid_negative_ts=disabled"
)


# Decoding a pixel costs this share of encoding one at x264 veryfast: the bench's 1080p
# H.264 source (37 Mbit/s) took 22.8 CPU-s to decode on one thread, its four rungs about
# 91 CPU-s to encode (11.0 against 24.7 CPU-s per megapixel of frame).
DECODE_WEIGHT = 0.45
# Threads per CPU shared out among them: x264's own default for one encoder, as frame
# threads wait on the rows of the frames they refer to.
THREADS_PER_CPU = 1.5


def thread_counts(cpus: int, source_pixels: int, renditions: Sequence[Rendition]) -> list[int]:
    """Threads for one ffmpeg's decoder and then each rung's x264 when it has ``cpus``
    CPUs: the threads one x264 would take for all of them, shared out in proportion to
    the pixels each part works on, rounded up. Left to themselves the decoder and every
    x264 each take threads for all the CPUs (3 each on 2, 15 in all): the bench's five
    12 s chunks, two at a time on 2 CPUs, took 3.8 % more CPU and 3 % more wall time than
    one ffmpeg making the whole ladder; sized so, 0.8 % less CPU and 1.4 % less time."""
    weights = [DECODE_WEIGHT * source_pixels] + [r.width * r.height for r in renditions]
    share = THREADS_PER_CPU * cpus / sum(weights)
    return [max(1, math.ceil(share * weight - 1e-9)) for weight in weights]


def segment_muxing(packaging: str) -> dict[str, str]:
    """The segment muxer's inner format, its options and the file pattern, per packaging."""
    if packaging == "cmaf":
        return {
            "segment_format": "mp4",
            "segment_format_options": CMAF_FORMAT_OPTIONS,
            "pattern": segment_pattern(".mp4"),
        }
    return {
        "segment_format": "mpegts",
        "segment_format_options": TS_TABLES_ONCE,
        "pattern": segment_pattern(".ts"),
    }


# S3 sometimes ends a long read early (a connection reset, a body cut short) or answers
# 503. ffmpeg then carries on from where it was with a new ranged request, the same
# headers (a pin's If-Match too), after 0, 1 and 3 s; it gives up after that, and
# ``runner`` fails a run that lost its source instead of keeping what it had read.
HTTP_RECONNECT: dict[str, str | None] = {
    "reconnect": "1",
    "reconnect_on_network_error": "1",
    "reconnect_on_http_error": "5xx",
    "reconnect_delay_max": "4",
}


# A source whose picture changes size or format mid-way (a recording across an encoder
# restart): by default ffmpeg rebuilds the filter graph there, dropping the frames
# buffered in it and every filter's state (trim's and fps's frame counts and clocks):
# frames lost, thumbnails whose times go back. Every filter vidflow puts before ``scale``
# takes frames of any size, and ``scale`` brings each to its fixed output size.
KEEP_FILTERS = {"reinit_filter": "0"}


def open_input(
    source: str, demuxer: str, *, headers: str | None = None, **options: str | None
) -> ffmpeg.nodes.FilterableStream:
    """Open ``source`` with exactly one allowed demuxer and protocol.

    ``headers`` are HTTP request headers (CRLF-terminated lines) ffmpeg sends with every
    read of an http(s) source: an ``If-Match`` pins the reads to one object version.
    """
    if demuxer not in ALLOWED_DEMUXERS:
        raise ValueError(f"demuxer {demuxer!r} is not allowed")
    if headers:
        options["headers"] = headers
    if source.startswith(("http://", "https://")):
        options = HTTP_RECONNECT | options
    return ffmpeg.input(
        source,
        f=demuxer,
        format_whitelist=",".join(ALLOWED_DEMUXERS),
        protocol_whitelist=protocols_for(source),
        **options,
    )


# The encoder's clock: the source's own. ffmpeg's default for video is 1/frame rate,
# which puts a variable-rate source's frames that come faster than its nominal rate one
# tick after each other (30 fps declared, 60 fps for a while: every other frame shown
# for 11 us), whatever ``fps_mode`` passes through.
PASSTHROUGH_TIME_BASE = "demux"

# Where a chunk's ffmpeg writes the time of the first frame it decoded (``first_frame``).
FIRST_FRAME = "first-frame.txt"
# Frames at most this far (s) before a cut count as at it: timestamps carry rounding.
_EDGE = 0.001
# A GOP longer than any chunk: the only keyframes are the forced ones.
_NO_GOP_LIMIT = 1_000_000


def build_chunk_command(
    source: str,
    demuxer: str,
    origin: float,
    chunk: Chunk,
    renditions: Sequence[Rendition],
    workdir: Path,
    *,
    margin: float | None = None,
    final: bool = False,
    fit: bool = False,
    frame_rate: float | None = None,
    binary: str = "ffmpeg",
    preset: str = "veryfast",
    packaging: str = "hls-ts",
    headers: str | None = None,
    score_every: int = 0,
    score_at: tuple[int, int] | None = None,
    report: tuple[Sequence[quality.Window], int] | None = None,
    reproducible: bool = False,
    cpus: int | None = None,
    source_pixels: int = 0,
    offset: float = TS_OFFSET,
    max_pixels: int | None = None,
    source_filters: Sequence[picture.Filter] = (),
) -> list[str]:
    """One ffmpeg run that decodes ``chunk`` once and encodes it into every rung: exactly
    the frames presented in ``[chunk.start, chunk.end)`` (from ``chunk.start`` on, if
    ``final``).

    Decoding begins ``margin`` seconds (the chunk's own by default) before the chunk, at
    the keyframe the demuxer seeks to; the time of the first frame decoded is written to
    ``workdir/FIRST_FRAME`` so the caller can check that it was not after the chunk's
    start (``first_frame``). Each rung's segments go to ``workdir/<rung>/seg_NNNNN.ts``
    (``.mp4`` for CMAF) numbered from the chunk's first segment, with a CSV list of
    their times beside them. CEA-608/708 captions in the source's H.264 ride along:
    ``ccrepack`` keeps them whole (x264 writes at most 31 caption entries per frame, and
    a decoded frame may carry 80, mostly padding) and x264 writes them back into every
    rung.

    ``fit`` scales a picture whose shape is not the rungs' into them and pads it (a live
    encoder that changed its size); ``frame_rate`` converts the frames to that rate.
    ``cpus`` (the CPUs the job has) sizes the decoder's and each x264's threads
    (``thread_counts``, from the source's ``source_pixels``; the top rung's if 0).
    ``offset`` shifts every output time (``TS_OFFSET``; a live stream keeps its own).
    ``source_filters`` (``picture.source_filters``: the colour a source leaves unsaid
    said, an interlaced source deinterlaced, an HDR one tone-mapped) take the decoded
    frames first, for the rungs and for the scores' reference alike. Every rung is
    limited range.
    ``max_pixels`` caps the decoder's picture size: a source whose picture grows past the
    bound its first one met fails (``runner``: ``InputTooLargeError``) rather than be
    decoded.
    ``reproducible`` runs each rung's x264 on one thread: with frame threads and this
    rate control its output differs from run to run (measured), a few tenths of a VMAF
    point; one thread makes the same bytes every time, which a per-title analysis needs
    and a chunk, with its rungs already running side by side, can do without.
    With ``score_every``, every that-many-th frame of each rung is scored against the
    source (``quality.scoring_args``, at ``score_at`` if given; the scores go to ``workdir``).
    With ``report`` (a quality report's windows and stride), the source frames it scores
    are kept in ``workdir`` for ``quality.sampled_scoring_command``.
    """
    if (score_every or report) and (fit or frame_rate is not None):
        raise ValueError("scores pair frames in order: not with frames fitted or re-timed")
    muxing = segment_muxing(packaging)
    margin = chunk.margin if margin is None else margin
    # -ss counts from the container's start time (origin), even with -copyts. Seeking
    # without accurate_seek hands every decoded frame on: the trim below cuts exactly.
    seek = max(0.0, chunk.start - margin - origin)
    reading: dict[str, str | None] = dict(KEEP_FILTERS)
    if max_pixels is not None:
        reading["max_pixels"] = str(max_pixels)
    if seek > 0:
        reading |= {"ss": seconds_arg(seek), "noaccurate_seek": None}
    encoder_threads: Sequence[int | None] = [None] * len(renditions)
    if reproducible:
        encoder_threads = [1] * len(renditions)
    elif cpus is not None:
        pixels = source_pixels or max(r.width * r.height for r in renditions)
        decoder_threads, *encoder_threads = thread_counts(cpus, pixels, renditions)
        reading["threads"] = str(decoder_threads)
    decoded = open_input(source, demuxer, headers=headers, **reading).video.filter_multi_output(
        "split", 2
    )
    checked = first_frame_written(decoded.stream(0), workdir)
    bounds = {"start": seconds_arg(chunk.start)} | (
        {} if final else {"end": seconds_arg(chunk.end)}
    )
    # Before the cut, so a deinterlaced chunk's first frame has the one before it. Not
    # for every source: bwdif cannot take a picture that changes size, as a progressive
    # one may.
    frames = picture.applied(decoded.stream(1), source_filters)
    trimmed = frames.filter("trim", **bounds)
    if frame_rate is not None:
        trimmed = trimmed.filter("fps", fps=f"{frame_rate:.6f}")
    branches = trimmed.filter("ccrepack").filter_multi_output("split", len(renditions))
    # A segment starts at a frame's time written to six decimals, which may round it up
    # past the frame: x264 would then key the frame after it, and the muxer cut there or
    # not at all. Keyframes are forced from just before each time, and the muxer cuts
    # from just before that (the only keyframes it can cut at are the forced ones).
    # The chunk's first frame is a keyframe anyway: forcing one at its start could only
    # key its second frame as well.
    cuts = chunk.segment_starts[1:]
    keyed = [seconds_arg(t - quality.ROUNDING) for t in cuts]
    relative = [seconds_arg(t - chunk.start - _EDGE) for t in cuts]
    # The muxer counts those times from the chunk's first frame, which may come up to a
    # frame (a hole's length, in a variable-rate source) after the chunk's start: each
    # cut would then fall just after its keyframe and be missed, two segments made one.
    # It may cut at a keyframe up to half a segment early, and the only keyframes it
    # meets are the forced ones, a segment apart.
    tolerance = min((b - a for a, b in pairwise(chunk.segment_starts)), default=0.0) / 2
    outputs = [checked]
    for i, rung in enumerate(renditions):
        scaled = branches.stream(i)
        # Limited range (a full-range source would otherwise keep its own, in a flag
        # many players do not read).
        if fit:
            scaled = scaled.filter(
                "scale", rung.width, rung.height, force_original_aspect_ratio="decrease",
                force_divisible_by=2, out_range=picture.RUNG_RANGE,
            ).filter("pad", rung.width, rung.height, "(ow-iw)/2", "(oh-ih)/2")  # fmt: skip
        else:
            scaled = scaled.filter("scale", rung.width, rung.height, out_range=picture.RUNG_RANGE)
        scaled = scaled.filter("setsar", 1).filter("format", "yuv420p")
        rung_dir = workdir / rung.name
        options = {
            "c:v": "libx264",
            "preset": preset,
            "profile:v": "high",
            "level:v": rung.level,
            **rung.rate_control,
            "g": _NO_GOP_LIMIT,
            "sc_threshold": 0,
            "fps_mode": "passthrough",
            "enc_time_base:v": PASSTHROUGH_TIME_BASE,
            "output_ts_offset": seconds_arg(offset),
            "map_metadata": -1,
            "f": "segment",
            "segment_format": muxing["segment_format"],
            "segment_format_options": muxing["segment_format_options"],
            "segment_start_number": chunk.first_segment,
            "segment_list": str(rung_dir / "segments.csv"),
            "segment_list_type": "csv",
            "reset_timestamps": 0,
        }
        if encoder_threads[i] is not None:
            options["threads"] = encoder_threads[i]
        if relative:
            options["force_key_frames"] = ",".join(keyed)
            options["segment_times"] = ",".join(relative)
            options["segment_time_delta"] = seconds_arg(tolerance)
        else:
            options["segment_time"] = seconds_arg(chunk.duration + 3600)
        if report and i == len(renditions) - 1:
            options |= quality.segment_packets_options(workdir)
        outputs.append(scaled.output(str(rung_dir / muxing["pattern"]), **options))
    flags = ["-nostdin", "-hide_banner", "-loglevel", "error", "-copyts"]
    if seek > 0:
        # Entered mid-stream, the decoder meets frames it cannot decode (their references,
        # even the parameter sets of a spliced-in part, come before the seek) until a
        # keyframe: that must not read as a broken source. The first-frame check is what
        # says whether the chunk's frames were all decoded.
        flags += ["-max_error_rate", "1"]
    command = list(ffmpeg.compile(ffmpeg.merge_outputs(*outputs).global_args(*flags), cmd=binary))
    if score_every:
        command += quality.scoring_args(
            renditions, 1, bounds, score_every, workdir, display=score_at, source=source_filters
        )
    if report:
        windows, stride = report
        command += quality.reference_args(bounds, windows, stride, workdir, source_filters)
    return command


def first_frame_written(
    video: ffmpeg.nodes.FilterableStream, workdir: Path
) -> ffmpeg.nodes.OutputStream:
    """An output that writes the time of ``video``'s first frame to ``workdir/FIRST_FRAME``."""
    return (
        video.filter("trim", end_frame=1)
        .filter("metadata", mode="add", key="first", value=1)
        .filter("metadata", mode="print", file=str(workdir / FIRST_FRAME))
        .output("-", f="null")
    )


def build_first_frame_command(source: str, workdir: Path, *, binary: str = "ffmpeg") -> list[str]:
    """Decode an MPEG-TS segment's first frame (in presentation order) and write its time
    down for ``first_frame``."""
    video = open_input(source, "mpegts").video
    command = first_frame_written(video, workdir).global_args(
        "-nostdin", "-hide_banner", "-loglevel", "error", "-copyts"
    )
    return list(ffmpeg.compile(command, cmd=binary))


def build_join_command(listing: Path, joined: Path, *, binary: str = "ffmpeg") -> list[str]:
    """Join the MPEG-TS segments a concat ``listing`` names (this project's own output,
    never a source: the concat demuxer opens any file it is told to) into ``joined``,
    their video only, each after the last on one clock: their own clocks go back where an
    encoder restarted and jump where it lost time, and images taken from their bytes
    joined end to end showed the frame before a restart again and again."""
    video = ffmpeg.input(str(listing), f="concat", safe=0).video
    command = video.output(str(joined), c="copy", f="mpegts").global_args(
        "-nostdin", "-hide_banner", "-loglevel", "error"
    )
    return list(ffmpeg.compile(command, cmd=binary))


def build_first_sound_command(source: str, workdir: Path, *, binary: str = "ffmpeg") -> list[str]:
    """Decode an MPEG-TS segment's first two audio frames and write their times down for
    ``first_sound`` (in ``workdir``)."""
    audio = (
        open_input(source, "mpegts")
        .audio.filter("atrim", end_sample=audio_pieces.FRAME + 1)
        .filter("ametadata", mode="add", key="first", value=1)
        .filter("ametadata", mode="print", file=str(workdir / FIRST_FRAME))
        .output("-", f="null")
    )
    command = audio.global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-copyts")
    return list(ffmpeg.compile(command, cmd=binary))


# The sampling rates AAC defines.
AAC_RATES = (
    8_000,
    11_025,
    12_000,
    16_000,
    22_050,
    24_000,
    32_000,
    44_100,
    48_000,
    64_000,
    88_200,
    96_000,
)


def first_sound(workdir: Path) -> tuple[float, float] | None:
    """The time of a segment's first audio frame and how long its frames last (from the
    next one's time: a live segment's audio is at its venue's rate), as
    ``build_first_sound_command`` wrote them down; None if it decoded none."""
    try:
        text = (workdir / FIRST_FRAME).read_text()
    except FileNotFoundError:
        return None
    times = [float(t) for t in re.findall(r"pts_time:(-?[0-9.]+)", text)]
    if not times:
        return None
    rate = audio_pieces.SAMPLE_RATE
    if len(times) > 1 and times[1] > times[0]:
        # (times are written to the microsecond: the rate is the AAC rate nearest them)
        measured = audio_pieces.FRAME / (times[1] - times[0])
        rate = min(AAC_RATES, key=lambda r: abs(r - measured))
    return times[0], audio_pieces.FRAME / rate


def frame_start_sample(at: float, first: float, frame: float) -> int:
    """The first sample of the AAC frame that holds instant ``at``, counted from the start
    of a published segment's audio, whose frames, ``frame`` seconds each, follow one
    another from ``first``: audio re-encoded from there to the segment's end is whole
    frames, and ends where the segment's does (a cut from ``at`` would end in a frame
    padded with silence, over the next segment's first). Counted in samples, not cut at
    a time: at 44.1 kHz a frame's time on the 90 kHz clock is rounded, a sample either
    way, and a cut at it keeps a sample of the frame before, a frame more."""
    return max(0, math.floor((at - first) / frame + 1e-6)) * audio_pieces.FRAME


def build_recut_command(
    source: str,
    start: float | None,
    end: float | None,
    out: Path,
    *,
    rendition: Rendition | None,
    audio_kbps: int,
    follows: bool = False,
    binary: str = "ffmpeg",
    preset: str = "veryfast",
    start_sample: int | None = None,
) -> list[str]:
    """Re-encode the part of one published MPEG-TS segment presented in ``[start, end)``
    (times on its own clock, which it keeps): a video rung at ``rendition``'s settings,
    or (None) the audio. A clip's boundary segments are made this way; the rest of a
    clip is its stream's segments, copied. Audio that ``follows`` another segment drops
    its encoder's priming packet, as a live segment's does, so the two join exactly.

    ``start`` None cuts nothing from the segment's start, ``end`` None nothing from its
    end: a live segment's audio is its venue file's own, which starts and ends a little
    before its video (``ProbedSegment.sound``), so audio cut at a segment's own edge is
    cut there to join the segment beside it. ``start_sample`` (audio, ``start`` None)
    cuts it at that sample instead (``frame_start_sample``).
    """
    cuts = {side: at for side, at in (("start", start), ("end", end)) if at is not None}
    if not cuts and start_sample is None:
        raise ValueError("a recut cuts the segment at one end at least")
    stream = open_input(source, "mpegts")
    # A frame exactly at a bound belongs to the span that starts there.
    bounds = {side: seconds_arg(at - _EDGE) for side, at in cuts.items()}
    # A segment written in the minute before the 33-bit wrap reads as before zero (see
    # TS_OFFSET), which the muxer would move to zero: one period later is the same 33-bit
    # time, and positive. Always so: whether a segment's audio begins before zero is not
    # told by a cut (one at its own edge is None, and audio starts before its video).
    common: dict[str, object] = {
        "map_metadata": -1, "muxdelay": 0, "muxpreload": 0, "f": "mpegts",
        "output_ts_offset": seconds_arg(MPEGTS_WRAP),
    }  # fmt: skip
    if rendition is None:
        priming = {"bsf:a": r"noise=drop=eq(n\,0)"} if follows else {}
        trim: dict[str, object] = {side: seconds_arg(at) for side, at in cuts.items()}
        if start_sample is not None:
            trim["start_sample"] = start_sample
        audio = stream.audio.filter("atrim", **trim)
        output = audio.output(
            str(out), **{"c:a": "aac", "b:a": f"{audio_kbps}k", "ac": 2, **priming, **common}
        )
    else:
        output = stream.video.filter("trim", **bounds).output(
            str(out),
            **{
                "c:v": "libx264",
                "preset": preset,
                "profile:v": "high",
                "level:v": rendition.level,
                **rendition.rate_control,
                "g": _NO_GOP_LIMIT,
                "sc_threshold": 0,
                "fps_mode": "passthrough",
                "enc_time_base:v": PASSTHROUGH_TIME_BASE,
                **common,
            },
        )
    command = output.global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-copyts")
    return list(ffmpeg.compile(command, cmd=binary))


def first_frame(workdir: Path) -> float | None:
    """The time of the first frame a chunk's ffmpeg decoded, or None if it decoded none."""
    try:
        text = (workdir / FIRST_FRAME).read_text()
    except FileNotFoundError:
        return None
    found = re.search(r"pts_time:(-?[0-9.]+)", text)
    return float(found.group(1)) if found else None


def build_audio_command(
    source: str,
    demuxer: str,
    start: float,
    duration: float,
    workdir: Path,
    *,
    kbps: int,
    segment_seconds: float,
    binary: str = "ffmpeg",
    first_segment: int = 0,
    drop_priming: bool = False,
    packaging: str = "hls-ts",
    headers: str | None = None,
    offset: float = TS_OFFSET,
    audio_stream: int = 0,
    sample_rate: int = audio_pieces.SAMPLE_RATE,
) -> list[str]:
    """Encode audio stream ``audio_stream`` (ffmpeg's ``0:a:N``) once, cut to the span
    (``start``, ``duration``), as AAC segments at ``sample_rate``.

    The audio is decoded from the top (seeking to a video keyframe in MPEG-TS would
    skip audio muxed before it), cut at the video's first and last instants, and padded
    with silence where the source's audio starts late or ends early, so both tracks
    start together and last as long.
    """
    audio = (
        open_input(source, demuxer, headers=headers)[f"a:{audio_stream}"]
        .filter("atrim", start=seconds_arg(start), end=seconds_arg(start + duration))
        .filter("asetpts", f"PTS-{seconds_arg(start)}/TB")
        .filter("aresample", sample_rate, **{"async": 1, "first_pts": 0, **DOWNMIX})
        .filter("apad", whole_dur=seconds_arg(duration))
    )
    options = _whole_span_options(first_segment, drop_priming, segment_seconds)
    muxing = segment_muxing(packaging)
    return _aac_segments(audio, workdir, muxing, start + offset, kbps, options, binary)


def build_silence_command(
    start: float,
    duration: float,
    workdir: Path,
    *,
    kbps: int,
    segment_seconds: float,
    binary: str = "ffmpeg",
    first_segment: int = 0,
    drop_priming: bool = False,
    offset: float = TS_OFFSET,
) -> list[str]:
    """Stereo silence for the span (``start``, ``duration``), as ``build_audio_command``
    would encode a source's audio there: for a live segment without audio in a stream
    with it, so the audio rendition goes on without a hole."""
    silence = ffmpeg.input("anullsrc=r=48000:cl=stereo", f="lavfi", t=seconds_arg(duration)).audio
    options = _whole_span_options(first_segment, drop_priming, segment_seconds)
    muxing = segment_muxing("hls-ts")
    return _aac_segments(silence, workdir, muxing, start + offset, kbps, options, binary)


def _whole_span_options(
    first_segment: int, drop_priming: bool, segment_seconds: float
) -> dict[str, object]:
    options: dict[str, object] = {"segment_start_number": first_segment}
    if drop_priming:
        options["bsf:a"] = r"noise=drop=eq(n\,0)"
    options["segment_time"] = seconds_arg(segment_seconds)
    return options


def build_audio_piece_command(
    source: str,
    demuxer: str,
    origin: float,
    start: float,
    duration: float,
    piece: AudioPiece,
    workdir: Path,
    *,
    kbps: int,
    source_rate: int,
    binary: str = "ffmpeg",
    packaging: str = "hls-ts",
    headers: str | None = None,
    audio_stream: int = 0,
) -> list[str]:
    """Encode one piece of audio stream ``audio_stream`` (ffmpeg's ``0:a:N``) as AAC
    segments (``audio_pieces``).

    The output is the audio of the video's span (``start``, ``duration``), trimmed at the
    video's first and last instants and padded with silence where the source's audio
    starts late or ends early; ``piece`` is a range of its samples. The encoder is fed
    from the piece's pre-roll to a few frames past its end and keeps only the piece's own
    packets. A piece after the first seeks to a few seconds before its pre-roll, so it
    reads only its range of the source (in MPEG-TS audio may be muxed a second or more
    away from the video beside it).
    """
    preroll = audio_pieces.preroll_frames(piece, source_rate)
    feed_from = piece.start_sample - preroll * audio_pieces.FRAME
    feed_to = piece.end_sample
    if not piece.last:
        feed_to += audio_pieces.POSTROLL_FRAMES * audio_pieces.FRAME
    rate = audio_pieces.SAMPLE_RATE
    seek: dict[str, str] = {}
    if feed_from > 0:
        # -ss counts from the container's start time (see build_chunk_command).
        seek["ss"] = seconds_arg(max(0.0, start + feed_from / rate - AUDIO_SEEK_MARGIN - origin))
    audio = (
        open_input(source, demuxer, headers=headers, **seek)[f"a:{audio_stream}"]
        .filter(
            "atrim",
            start=seconds_arg(start + feed_from / rate),
            end=seconds_arg(start + min(feed_to / rate, duration)),
        )
        .filter("asetpts", f"PTS-{seconds_arg(start)}/TB")
        .filter("aresample", rate, **{"async": 1, "first_pts": feed_from, **DOWNMIX})
        .filter("apad", whole_len=feed_to - feed_from)
        # Timed by count from the feed's start: aresample lays its first sample at
        # ``first_pts`` only where some audio reaches it, and a feed the source has no
        # sound in (its audio ended early, starts late) was apad's silence timed from 0,
        # the piece's segments ``feed_from`` early. (Contiguous either way: the same.)
        .filter("asetpts", f"N+{feed_from}")
    )
    # Packets: the encoder's priming one, the pre-roll's, the piece's, the post-roll's.
    # The first piece keeps the priming packet, as a whole-file encode does.
    first = preroll + 1 if piece.start_sample > 0 else 0
    drop = [rf"lt(n\,{first})"] if first else []
    if not piece.last:
        drop.append(rf"gte(n\,{max(first, 1) + piece.frames})")
    # The segment muxer cuts relative to the first packet it gets: the piece's first, or
    # the first piece's priming one a frame earlier. Half a frame early, so that rounding
    # cannot push a cut to the next packet.
    kept_from = piece.start_sample - (0 if first else audio_pieces.FRAME)
    cuts = [(s - kept_from - audio_pieces.FRAME / 2) / rate for s in piece.segment_starts[1:]]
    muxing = segment_muxing(packaging)
    options: dict[str, object] = {"segment_start_number": piece.first_segment}
    if drop:
        options["bsf:a"] = "noise=drop=" + "+".join(drop)
    if cuts:
        options["segment_times"] = ",".join(seconds_arg(t) for t in cuts)
    else:
        options["segment_time"] = seconds_arg(piece.end - piece.start + 3600)
    return _aac_segments(audio, workdir, muxing, start + TS_OFFSET, kbps, options, binary)


def _aac_segments(
    audio: ffmpeg.nodes.FilterableStream,
    workdir: Path,
    muxing: dict[str, str],
    shifted_start: float,
    kbps: int,
    options: dict[str, object],
    binary: str,
) -> list[str]:
    """The command that encodes ``audio`` as stereo AAC segments in ``workdir/audio/``,
    its first sample at ``shifted_start`` (the span's start plus the output offset), with
    the segment muxer's ``options`` (where it cuts, the first number, packets dropped)."""
    output = audio.output(
        str(workdir / AUDIO / muxing["pattern"]),
        **options,
        **{
            "c:a": "aac",
            "b:a": f"{kbps}k",
            "ac": 2,
            "output_ts_offset": seconds_arg(shifted_start),
            "map_metadata": -1,
            "f": "segment",
            "segment_format": muxing["segment_format"],
            "segment_format_options": muxing["segment_format_options"],
            "segment_list": str(workdir / AUDIO / "segments.csv"),
            "segment_list_type": "csv",
            "reset_timestamps": 0,
        },
    )
    command = output.global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-copyts")
    return list(ffmpeg.compile(command, cmd=binary))


def seconds_arg(seconds: float) -> str:
    return f"{seconds:.6f}"
