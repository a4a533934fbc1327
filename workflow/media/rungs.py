"""A span's segments in every rung: one set of cut points, and CMAF's split into an init
segment and fragments."""

from __future__ import annotations

import itertools
import logging
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workflow.errors import TranscodeError, TruncatedInputError, UnsupportedInputError
from workflow.media import cmaf, runner
from workflow.media.chunks import MAX_KEYFRAME_INTERVAL, UNINDEXED_MARGIN, Chunk
from workflow.media.encode import TS_OFFSET, first_frame
from workflow.names import AUDIO, CMAF_INIT

log = logging.getLogger("vidflow.encode")

# How far past its planned end the last chunk's video may run (a container's own
# estimate of its end, a last frame's length) before the file counts as mislabelled.
PAST_THE_END = 1.0
# What ffmpeg and ``runner.listed_segments`` say when a run had no frame to encode.
_NOTHING_DECODED = re.compile(r"Nothing was written into output file|wrote no segments")
# How much later than a chunk's start the first decoded frame may be: the times ffmpeg
# prints and the plan's are both rounded to the microsecond.
_SAME_INSTANT = 1.5e-6


def encode_span(
    commands: Sequence[Sequence[str]],
    workdir: Path,
    rungs: Sequence[str],
    start: float,
    end: float,
    *,
    timeout: float,
    on_progress: Callable[[float], None] | None = None,
    offset: float = TS_OFFSET,
    whole_frames: bool = False,
) -> dict[str, list[runner.Segment]]:
    """Run the encodes of one span of the source at once (each writes ``workdir/<rung>/``);
    then each rung's segments, the video rungs cut at the same instants.

    ``start`` and ``end`` are the span's source times; the outputs carry them shifted
    by ``offset``. With ``on_progress``, it is called with the fraction of the span
    encoded as the encodes report. With ``whole_frames``, a frame the decoder could not
    decode whole (and would show concealed) fails the span by name.
    """
    for rung in rungs:
        (workdir / rung).mkdir()
    reports = span_reports(len(commands), end - start, on_progress)
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        logs = list(pool.map(lambda c, r: runner.run_ffmpeg(c, timeout, r), commands, reports))
    damaged = next(filter(None, map(runner.damaged_frame, logs)), None)
    if whole_frames and damaged:
        raise TruncatedInputError(
            f"the video does not decode whole (ffmpeg: {damaged}): a frame cut short, as by "
            "an uploader that cuts files by bytes (the rest of the frame at the head of the "
            "next), or damaged; cut files at the encoder's keyframes, each whole"
        )
    segments = {
        rung: runner.listed_segments(workdir / rung, start + offset, end + offset) for rung in rungs
    }
    check_same_boundaries({rung: s for rung, s in segments.items() if rung != AUDIO})
    return segments


def encode_chunk(
    commands: Callable[[Path, float], Sequence[Sequence[str]]],
    workdir: Path,
    rungs: Sequence[str],
    chunk: Chunk,
    origin: float,
    *,
    timeout: Callable[[], float],
    on_progress: Callable[[float], None] | None = None,
    final: bool = True,
    reach: float = MAX_KEYFRAME_INTERVAL,
) -> dict[str, list[runner.Segment]]:
    """Encode ``chunk`` with ``commands(directory, margin)`` (the video's command first,
    from ``encode.build_chunk_command``) and check that its decode began at or before the
    chunk's start; if not, frames before the first keyframe the decoder met would be
    missing, so decode again from further back, until the source's start or ``reach``
    seconds before the chunk (``keyframe_reach``; then it fails by name). A
    seek that lands past the chunk's end (nothing to encode) is decoded again alike; from
    the source's start, the first frame decoded is the first there is.

    Only a container whose index is wrong, or one with no index and GOPs longer than the
    margin, costs a second encode; no chunk ever loses a frame to a seek. The ``final``
    chunk, which keeps every frame after its start, must end where the plan said.
    """
    margin = chunk.margin
    for attempt in itertools.count():
        here = workdir / f"attempt-{attempt}"
        here.mkdir()
        try:
            segments = encode_span(
                commands(here, margin),
                here,
                rungs,
                chunk.start,
                chunk.end,
                timeout=timeout(),
                on_progress=on_progress,
            )
        except TranscodeError as exc:
            # A seek that landed past the chunk's end leaves nothing to encode: the
            # same miss as a late first frame, whose cure is to start further back.
            if not _NOTHING_DECODED.search(str(exc)):
                raise
            if chunk.start - margin <= origin:
                # Read from the source's start and still nothing: its container claims
                # time its video does not hold (a duration written wrong or forged, or a
                # hole longer than a chunk in a variable-rate video).
                raise UnsupportedInputError(
                    f"the file holds no video from {chunk.start:.3f} to {chunk.end:.3f} s, "
                    "inside the span its container declares: a header that claims more "
                    "than the file holds, or a hole in the video longer than a chunk"
                ) from None
            first = None
        else:
            if final:
                _ends_where_planned(here, rungs, chunk)
            first = first_frame(here)
            if first is not None and first <= chunk.start + _SAME_INSTANT:
                return segments
            if chunk.start - margin <= origin:
                # Decoded from the source's start: no frame before this one can be had
                # (a probe that put the start before the first decodable frame, as an
                # AVI with B-frames reads; or a filter graph rebuilt mid-file, which
                # writes the first-frame file again).
                log.warning(
                    "chunk %d: its first frame decodes at %s s, after its start %s s, "
                    "decoding from the source's start",
                    chunk.index,
                    first,
                    chunk.start,
                )
                return segments
        if margin >= reach:
            # Keyframes this far apart (or a hole in the video this long) would have
            # every chunk decode minutes, or the whole file, before its start.
            raise UnsupportedInputError(
                f"the video has no keyframe, or no video, in the {margin:.0f} s before "
                f"{chunk.start:.3f} s (vidflow takes keyframes up to {reach:.0f} s apart "
                "here): re-encode it with a keyframe every few seconds (ffmpeg's -g, in "
                "frames: -g 60 at 30 fps)"
            )
        log.warning(
            "chunk %d: decoding from %.3f s met its first keyframe at %s s, after the "
            "chunk's start; decoding again from further back",
            chunk.index,
            chunk.start - margin,
            first,
        )
        shutil.rmtree(here)
        margin = min(max(4 * margin, UNINDEXED_MARGIN), reach)
    raise AssertionError("unreachable")


def _ends_where_planned(workdir: Path, rungs: Sequence[str], chunk: Chunk) -> None:
    """Refuse a final chunk whose media runs on past its planned end: a file holding more
    than the duration it declares, which the plan, the audio and the length limit were
    all made from. (Another chunk's frames all start before its end, though its last
    may be shown well past it: a slide, or a pause in a variable-rate recording.)"""
    for rung in rungs:
        end = runner.listed_end(workdir / rung)
        if end is not None and end - TS_OFFSET > chunk.end + PAST_THE_END:
            raise UnsupportedInputError(
                f"the file holds video until {end - TS_OFFSET:.3f} s, past the "
                f"{chunk.end:.3f} s it declares: remux it so that its header tells its length"
            )


def span_reports(
    encodes: int, length: float, on_fraction: Callable[[float], None] | None
) -> list[runner.ProgressCallback | None]:
    """One progress callback per encode of a span ``length`` seconds long, each passing on
    the span's fraction encoded: the mean over the encodes of the seconds each has
    encoded, as a share of the span.

    ffmpeg counts the seconds from its output's first timestamp, whatever offset the
    output carries.
    """
    if on_fraction is None:
        return [None] * encodes
    shares = [0.0] * encodes
    lock = threading.Lock()

    def reporter(index: int) -> runner.ProgressCallback:
        def report(seconds: float) -> None:
            with lock:
                share = min(1.0, seconds / length) if length > 0 else 0.0
                shares[index] = max(shares[index], share)
                fraction = sum(shares) / encodes
            on_fraction(fraction)

        return report

    return [reporter(index) for index in range(encodes)]


def check_same_boundaries(rungs: dict[str, list[runner.Segment]]) -> None:
    """Every rung must cut at the same instants, or players cannot switch between them."""
    shapes = {name: [round(s.duration, 3) for s in segments] for name, segments in rungs.items()}
    first = next(iter(shapes.values()), [])
    for name, shape in shapes.items():
        if shape != first:
            raise TranscodeError(f"rung {name} has segments {shape}, another has {first}")


def split_cmaf(
    rungs: dict[str, list[runner.Segment]], frame_rate: float | None = None
) -> tuple[dict[str, list[runner.Segment]], dict[str, dict[str, Any]]]:
    """Split each rung's whole-MP4 segments into one ``init.mp4`` and ``.m4s`` fragments.

    Returns the fragments, and per rung its init's ``stsd`` digest and timescale; the
    init is written beside the fragments. Every segment of a rung must share the first
    one's sample description. With ``frame_rate`` (the video's: not for the audio), each
    segment presents its frames through the one edit ``cmaf.common_edit`` (the muxer
    measures a segment's B-frame delay from its own frames' spacing, different from one
    segment and chunk to the next where that is uneven), its frames at the same times.
    """
    fragments: dict[str, list[runner.Segment]] = {}
    inits: dict[str, dict[str, Any]] = {}
    for rung, segments in rungs.items():
        fragments[rung] = []
        for segment in segments:
            split = cmaf.split_segment(segment.path.read_bytes())
            if frame_rate is not None:
                edit = cmaf.common_edit(cmaf.timescale(split.init), frame_rate)
                split = cmaf.with_common_edit(split, edit)
            digest = cmaf.sample_description_digest(split.init)
            if rung not in inits:
                segment.path.with_name(CMAF_INIT).write_bytes(split.init)
                inits[rung] = {
                    "digest": digest,
                    "timescale": cmaf.timescale(split.init),
                }
            elif digest != inits[rung]["digest"]:
                raise TranscodeError(
                    f"{rung}'s segments disagree on their codec configuration ({segment.path.name})"
                )
            media = segment.path.with_suffix(".m4s")
            media.write_bytes(split.media)
            segment.path.unlink()
            fragments[rung].append(runner.Segment(media, segment.duration))
    return fragments, inits
