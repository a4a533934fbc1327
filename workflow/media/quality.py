"""VMAF and PSNR of a span's rungs, against the same source frames the encode decoded.

Two ways, one scoring graph per rung (``_scoring_graph``):

- In the encode's own ffmpeg run (``scoring_args``; a per-title analysis's short spans):
  each rung's encoder output is decoded again by a loopback decoder (``-dec``) and scored
  against the source frames, scaled to the rung's size (bicubic). Every frame of every
  rung is decoded again: that, not libvmaf, is most of what it costs (+14 % of a chunk's
  CPU, measured), and no filter can skip it, since every frame of a GOP is a reference.
- A chunk's quality report (``reference_args``, then ``sampled_scoring_command``): the
  encode writes the source frames of a few whole segments of the chunk to a file
  (``Sampling``), and a second ffmpeg decodes only those segments of each rung and scores
  them. A segment starts with a keyframe, so skipping the others skips their decoding.

Either way every ``stride``-th frame of what is scored is handed to libvmaf, with the
frame before it (its motion feature compares the two).
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.errors import TranscodeError
from workflow.media import picture, runner
from workflow.media.ladder import Rendition
from workflow.media.runner import Segment

# The longest stride a report samples with, and the fewest frames it samples in a job:
# a short title is scored more densely, so that its few samples still estimate its mean.
# Strides are odd primes, so that a sample never falls in step with a GOP, nor with
# x264's frame types: its B-frames repeat every 2 or 4 frames, and a stride of 2 or 4
# scored only every other type (a 1080p report read 85.45 where every frame scores 84.14).
LONGEST_STRIDE = 37
FEWEST_SAMPLES = 150
_PRIMES = (1, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
# What the scores are: libvmaf's default model, each rung at its own size against the
# source scaled to it.
MODEL = "vmaf_v0.6.1"
# Both sides' frames are renumbered 0, 1, 2... on a 1 s time base before libvmaf pairs
# them by time: ``setpts=N/TB`` on the encoder's 1001/30000 time base rounds, and pairs
# frames a step apart.
_IN_ORDER = "settb=1,setpts=N"
# Both sides' pixels are scored as they are: tagged alike, so the graph converts neither.
# A rung carries the colour tags x264 was given (the source's; BT.709 once tone-mapped)
# and a report's reference, read back from NUT, none: told apart, ffmpeg converted the
# reference's matrix and range to the rung's and scored a BT.709-tagged source's 360p
# at VMAF 85 that scores 96.5 untagged.
ALIKE = "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709"
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]+")


def report_stride(total_frames: int) -> int:
    """Score every this-many-th frame of a job of ``total_frames`` frames."""
    wanted = min(LONGEST_STRIDE, max(1, total_frames // FEWEST_SAMPLES))
    return max(p for p in _PRIMES if p <= wanted)


def scores_path(workdir: Path, rung: str) -> Path:
    return workdir / f"{rung}.quality.json"


def scoring_args(
    renditions: Sequence[Rendition],
    first_output: int,
    bounds: dict[str, str],
    stride: int,
    workdir: Path,
    display: tuple[int, int] | None = None,
    source: Sequence[picture.Filter] = (),
) -> list[str]:
    """Arguments to append to an encode's command line (after its outputs) that score
    each rendition's output, the ``first_output + i``-th output for rendition ``i``,
    decoded again in the same run.

    ``bounds`` are the ``trim`` filter's options that cut the encode's frames out of
    input 0's video; both sides are paired in order (the encodes pass every frame
    through, in order), and every ``stride``-th pair is scored, from the first. Scores go
    to ``scores_path(workdir, rung)``.

    With ``display`` (width, height), each rung is scored as a player shows it: scaled
    up (bicubic) to that size, against the source scaled there; rungs of different
    sizes can then be compared. Without, each at its own size. The source's frames go
    through ``source`` (``picture.source_filters``) first, as the rungs' did.
    """
    trim = ":".join(f"{key}={value}" for key, value in bounds.items())
    args: list[str] = []
    for i in range(len(renditions)):
        # One thread each: frame threads cost a decoder CPU, and the encodes use the cores.
        args += ["-threads", "1", "-dec", f"{first_output + i}:0"]
    for i, rung in enumerate(renditions):
        graph = _scoring_graph(
            f"[dec:{i}]",
            f"[0:v]{picture.chain(source)}trim={trim},{_pairs(stride)}",
            i,
            rung,
            stride,
            workdir,
            display,
        )
        args += ["-filter_complex", graph, "-map", f"[scored{i}]", "-f", "null", "-"]
    return args


def _pairs(stride: int) -> str:
    """A filter chain prefix that keeps every ``stride``-th frame and the frame before it.

    Each scored frame goes to libvmaf with the frame before it, and libvmaf scores every
    other frame (``n_subsample=2``): its motion feature compares a frame with its
    predecessor, so a frame sent alone would read the gap as motion, and score high.
    """
    if stride <= 1:
        return ""
    return rf"select='not(mod(n\,{stride}))+eq(mod(n\,{stride})\,{stride - 1})',"


def _scoring_graph(
    distorted: str,
    reference: str,
    i: int,
    rung: Rendition,
    stride: int,
    workdir: Path,
    display: tuple[int, int] | None,
) -> str:
    """Rung ``i``'s scoring graph: ``distorted`` (a link label), every ``stride``-th pair
    of its frames, against ``reference`` (a link label and the filters that leave only
    the same pairs of source frames), into ``[scored<i>]``."""
    log = _filter_path(scores_path(workdir, rung.name))
    width, height = display or (rung.width, rung.height)
    upscale = f"scale={width}:{height}:flags=bicubic," if display else ""
    return (
        f"{distorted}{_pairs(stride)}{upscale}{_IN_ORDER},{ALIKE}[distorted{i}];"
        f"{reference}{_IN_ORDER},"
        f"scale={width}:{height}:flags=bicubic:out_range={picture.RUNG_RANGE},"
        f"format=yuv420p,{ALIKE}[reference{i}];"
        f"[distorted{i}][reference{i}]libvmaf=n_threads=1:log_fmt=json:"
        f"log_path={log}:n_subsample={2 if stride > 1 else 1}:feature=name=psnr[scored{i}]"
    )


def _filter_path(path: Path) -> Path:
    """``path``, refused unless it can go into a filter argument unquoted."""
    if not _SAFE_PATH.fullmatch(str(path)):
        raise ValueError(f"unsafe path for a filter argument: {path}")
    return path


def scored_count(frames: int, stride: int) -> int:
    """How many of ``frames`` frames, paired in order, libvmaf scores at ``stride``."""
    if stride <= 1:
        return frames
    sent = sum(1 for n in range(frames) if n % stride in (0, stride - 1))
    return (sent + 1) // 2


# --- A chunk's quality report: a few whole segments, scored after the encode ----------

# A job of at least SAMPLED_FROM segments has one segment of every SEGMENT_EVERY of each
# chunk scored (at least one per chunk); a shorter one, every segment.
SEGMENT_EVERY = 3
SAMPLED_FROM = 15
# ... and every this-many-th frame of those at least: libvmaf on every frame of the four
# default rungs would cost about 1.5 times their veryfast encode (1080p), so the report
# stays under 15 % of a chunk's CPU (bench/per_title.py, one run, median of five:
# +11.4 % at 11, +7.5 % at 17, +6.9 % at 23; decoding the segments again is most of it).
SAMPLED_STRIDE = 17
# The most bytes of source frames a chunk's report keeps on disk (its function's /tmp is
# 2 GiB; a chunk's segments take tens of MB), counted at 3 bytes a pixel (10-bit 4:2:0,
# 8-bit 4:4:4).
REFERENCE_BUDGET = 2**30
# What the encode writes beside the segments for the report: the kept source frames
# (raw, in NUT), the timestamp of every frame of the chunk and of every frame in the
# sampled segments, and the key flag of every packet of one rung, which says where each
# segment starts.
REFERENCE = "reference.nut"
CHUNK_FRAMES = "chunk-frames.txt"
REFERENCE_FRAMES = "reference-frames.txt"
SEGMENT_PACKETS = "segment-packets.txt"
# What scoring a frame of a rung costs against encoding it (bench/per_title.py, 1080p
# chunks of the default ladder, veryfast): decoding it again, and libvmaf on it.
DECODE_COST = 0.14
SCORE_COST = 1.5
# Timestamps read as seconds carry rounding (six decimals, in floating point): a frame
# this close to a window's bound, or to a segment's start (``encode``), is at it.
ROUNDING = 1e-6
_PTS = re.compile(r"\bpts:(-?\d+)")

log = logging.getLogger("vidflow.quality")


@dataclass(frozen=True)
class Sampling:
    """What a chunk's quality report scores: every ``stride``-th frame of the segments
    ``sampled_segments(count, segment_every)`` picks from its ``count``."""

    stride: int
    segment_every: int = 1


def report_sampling(frames: int, chunk_segments: Sequence[int], frame_pixels: int) -> Sampling:
    """The sampling for a job of ``frames`` frames in chunks of ``chunk_segments``
    segments each, whose source frames have ``frame_pixels`` pixels: the stride
    ``report_stride`` gives the whole job (an hour's: 37), at least ``SAMPLED_STRIDE``
    where segments are sampled, and raised where a chunk would keep more than
    ``REFERENCE_BUDGET`` of source frames."""
    segments = sum(chunk_segments)
    every = SEGMENT_EVERY if segments >= SAMPLED_FROM else 1
    picked = [-(-count // every) for count in chunk_segments]  # the most any turn picks
    per_segment = frames / max(1, segments)
    stride = report_stride(frames)
    if every > 1:
        stride = max(stride, SAMPLED_STRIDE)
    # A chunk keeps every stride-th frame of its windows, the one before each, and the first.
    kept = REFERENCE_BUDGET / (3 * max(1, frame_pixels)) - 1
    window = max(picked, default=0) * per_segment
    if window > kept:
        stride = _odd_prime_from(max(stride, 3, math.ceil(2 * window / max(1.0, kept))))
    return Sampling(stride, every)


def _odd_prime_from(n: int) -> int:
    """The least odd prime at or above ``n`` (at least 3)."""
    n = max(3, n | 1)
    while any(n % d == 0 for d in range(3, math.isqrt(n) + 1, 2)):
        n += 2
    return n


def sampled_segments(count: int, every: int, turn: int = 0, final: bool = True) -> list[int]:
    """Which of a chunk's ``count`` segments a report scores: one of every ``every``, at
    a place in the chunk that moves with its ``turn`` (its index in the job), so that a
    job's chunks sample their first segments (encoded from a cold start, which scores
    lower) as often as any other; never the ``final`` chunk's last of several (the
    source's end may leave it short), and never none."""
    if every <= 1:
        return list(range(count))
    usable = count - 1 if final and count > 1 else count
    offset = (every // 2 + turn) % every
    return list(range(offset, usable, every)) or [min(offset, usable - 1)]


def encode_share(sampled: float, stride: int) -> float:
    """About what share of a chunk's work its encode is, where its report scores every
    ``stride``-th frame of a ``sampled`` share of its segments; the rest is the scoring.
    What the chunk's progress shows each as."""
    return 1 / (1 + sampled * (DECODE_COST + SCORE_COST / max(1, stride)))


Window = tuple[float | None, float | None]


def sampled_windows(
    segment_starts: Sequence[float], every: int, turn: int = 0, final: bool = True
) -> list[Window]:
    """The source times ``[start, end)`` of the segments a report scores
    (``sampled_segments``); None where the chunk's own bound (its ``trim``) is the
    window's."""
    last = len(segment_starts) - 1
    return [
        (segment_starts[i] if i > 0 else None, segment_starts[i + 1] if i < last else None)
        for i in sampled_segments(len(segment_starts), every, turn, final)
    ]


def _in_window(start: float | None, end: float | None) -> str:
    terms = [rf"gte(t\,{start - ROUNDING:.6f})"] if start is not None else []
    terms += [rf"lt(t\,{end - ROUNDING:.6f})"] if end is not None else []
    return "*".join(terms) or "1"


def reference_args(
    bounds: dict[str, str],
    windows: Sequence[Window],
    stride: int,
    workdir: Path,
    source: Sequence[picture.Filter] = (),
) -> list[str]:
    """Arguments to append to an encode's command line (after its outputs) that keep the
    source frames a report scores: input 0's video cut by ``trim`` ``bounds``, the
    frames in ``windows``, every ``stride``-th of them and the one before it, in
    ``workdir/REFERENCE``. The timestamp of every frame of the chunk goes to
    ``workdir/CHUNK_FRAMES``, and of every frame in the windows to
    ``workdir/REFERENCE_FRAMES``: which segments they were is found from those. The
    source's frames go through ``source`` (``picture.source_filters``) first."""
    logs = [_filter_path(workdir / CHUNK_FRAMES), _filter_path(workdir / REFERENCE_FRAMES)]
    trim = ":".join(f"{key}={value}" for key, value in bounds.items())
    keep = "+".join(f"({_in_window(start, end)})" for start, end in windows)
    printed = "metadata=mode=add:key=frame:value=1,metadata=mode=print:file={}"
    graph = (
        f"[0:v]{picture.chain(source)}trim={trim},{printed.format(logs[0])},select='{keep}',"
        # One frame size in the file (raw video cannot change it): a source whose picture
        # changes mid-chunk keeps the first size, scaled as the rungs scale it. NUT keeps
        # no range: the frames are stored in the rungs'.
        f"{printed.format(logs[1])},{_pairs(stride)}scale=iw:ih:out_range={picture.RUNG_RANGE},"
        "format=yuv420p[kept]"
    )
    return [
        "-filter_complex", graph, "-map", "[kept]", "-fps_mode", "passthrough",
        "-c:v", "rawvideo", "-f", "nut", str(workdir / REFERENCE),
    ]  # fmt: skip


def segment_packets_options(workdir: Path) -> dict[str, str]:
    """Output options for one rung's encode that write each packet's key flag, in order,
    to ``workdir/SEGMENT_PACKETS``: every segment starts with the only keyframe in it."""
    return {"stats_mux_pre": str(workdir / SEGMENT_PACKETS), "stats_mux_pre_fmt": "{key}"}


def sampled_scoring_command(
    binary: str,
    renditions: Sequence[Rendition],
    segments: Mapping[str, Sequence[Path]],
    stride: int,
    workdir: Path,
) -> tuple[list[str], int]:
    """An ffmpeg command that decodes the segments of each rendition whose frames the
    encode kept (``reference_args``; ``segments[rung]`` are all of the rung's) and scores
    them against those source frames; and how many frames it scores per rung.

    Which segments those are is found by frame number: the kept frames' place among the
    chunk's frames against each segment's packets. The kept frames in a segment must be
    all of its frames, first to last, or every frame would be paired with the wrong
    one; a window with no frame in it (a hole in a variable-rate source) is none.
    """
    counts = _split_at_keys((workdir / SEGMENT_PACKETS).read_text().split())
    chunk = _frame_pts(workdir / CHUNK_FRAMES)
    kept = _places(_frame_pts(workdir / REFERENCE_FRAMES), chunk)
    if sum(counts) != len(chunk):
        raise TranscodeError(
            f"quality report: {len(chunk)} frames in {len(counts)} segments' {sum(counts)} packets"
        )
    listed = len(next(iter(segments.values())))
    if len(counts) != listed:
        # A keyframe the muxer did not cut at (``encode`` keys each segment's first frame
        # alone, so this is a bug): which frames are in which segment is then not known
        # here, so the chunk is left out of the report rather than scored against the
        # wrong frames.
        log.warning("quality report: %d keyframes, %d segments: not scored", len(counts), listed)
        return [], 0
    firsts = list(itertools.accumulate(counts, initial=0))
    held: dict[int, list[int]] = {}
    for n in kept:
        held.setdefault(bisect.bisect_right(firsts, n) - 1, []).append(n)
    picked = sorted(held)
    for index in picked:
        frames = held[index]
        if frames != list(range(firsts[index], firsts[index + 1])):
            raise TranscodeError(
                f"quality report: source frames {frames[0]}-{frames[-1]} kept, not segment "
                f"{index}'s ({firsts[index]}-{firsts[index + 1] - 1})"
            )
    command = [binary, "-nostdin", "-hide_banner", "-loglevel", "error"]
    command += ["-f", "nut", "-i", str(workdir / REFERENCE)]
    for rung in renditions:
        listing = workdir / f"{rung.name}.sampled.txt"
        listing.write_text("".join(f"file '{segments[rung.name][i]}'\n" for i in picked))
        command += ["-threads", "1", "-f", "concat", "-safe", "0", "-i", str(listing)]
    for i, rung in enumerate(renditions):
        graph = _scoring_graph(f"[{i + 1}:v]", "[0:v]", i, rung, stride, workdir, None)
        command += ["-filter_complex", graph, "-map", f"[scored{i}]", "-f", "null", "-"]
    return command, scored_count(len(kept), stride)


def score_sampled(
    binary: str,
    renditions: Sequence[Rendition],
    segments: Mapping[str, Sequence[Segment]],
    stride: int,
    workdir: Path,
    timeout: float,
    on_progress: Callable[[float], None] | None = None,
) -> dict[str, Scores]:
    """Score the segments a chunk's report sampled (its encode, in ``workdir``, kept the
    source frames: ``reference_args``); each rung's scores, empty where the windows held
    no frame. ``on_progress`` is called with the fraction scored as it goes."""
    paths = {rung: [s.path for s in listed] for rung, listed in segments.items()}
    command, scored = sampled_scoring_command(binary, renditions, paths, stride, workdir)
    if not scored:
        return {rung.name: Scores([], []) for rung in renditions}
    # Each rung passes on its scored frames with the frame before each (all but maybe the
    # first), renumbered from 0 on a 1 s time base (``_IN_ORDER``): ffmpeg's seconds of
    # output are the frames sent less one.
    sent = scored if stride <= 1 else 2 * scored - 1

    def report(seconds: float) -> None:
        if on_progress is not None:
            on_progress(min(1.0, (seconds + 1) / sent))

    runner.run_ffmpeg(command, timeout, report if on_progress else None)
    scores = read_scores(workdir, renditions)
    for rung, got in scores.items():
        if len(got.vmaf) != scored:
            raise TranscodeError(
                f"quality report: {len(got.vmaf)} frames of {rung} scored, {scored} sampled"
            )
    return scores


def _frame_pts(path: Path) -> list[int]:
    """The timestamps ``metadata=mode=print`` wrote, in order."""
    return [int(pts) for pts in _PTS.findall(path.read_text())]


def _places(kept: Sequence[int], chunk: Sequence[int]) -> list[int]:
    """Each kept frame's number among the chunk's, both lists of timestamps in the same
    order (a broken source may repeat a timestamp: each is matched in turn)."""
    places, n = [], 0
    for pts in kept:
        while n < len(chunk) and chunk[n] != pts:
            n += 1
        if n == len(chunk):
            raise TranscodeError(f"quality report: a kept frame at {pts} is not the chunk's")
        places.append(n)
        n += 1
    return places


def _split_at_keys(flags: Sequence[str]) -> list[int]:
    """Packets per segment, from each packet's key flag (``K`` or ``N``), in order."""
    counts: list[int] = []
    for flag in flags:
        if flag.startswith("K") or not counts:
            counts.append(0)
        counts[-1] += 1
    return counts


@dataclass(frozen=True)
class Scores:
    """One rung's scored frames: per frame VMAF and luma PSNR (dB)."""

    vmaf: list[float]
    psnr: list[float]

    @property
    def mean(self) -> float:
        return _mean(self.vmaf)

    def to_dict(self) -> dict[str, Any]:
        return {"vmaf": self.vmaf, "psnr": self.psnr}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scores:
        return cls([float(v) for v in data["vmaf"]], [float(p) for p in data["psnr"]])


def read_scores(workdir: Path, renditions: Sequence[Rendition]) -> dict[str, Scores]:
    """Each rung's scores as libvmaf logged them."""
    scores = {}
    for rung in renditions:
        try:
            frames = json.loads(scores_path(workdir, rung.name).read_text())["frames"]
        except (OSError, ValueError, KeyError) as exc:
            raise TranscodeError(f"no quality scores for {rung.name}: {exc}") from None
        if not frames:
            raise TranscodeError(f"no frame of {rung.name} was scored")
        scores[rung.name] = Scores(
            [round(float(f["metrics"]["vmaf"]), 3) for f in frames],
            [round(min(float(f["metrics"]["psnr_y"]), 100.0), 3) for f in frames],
        )
    return scores


def summary(parts: Sequence[Scores]) -> dict[str, float]:
    """Mean, 5th percentile and minimum VMAF, and mean PSNR, over every scored frame."""
    vmaf = sorted(v for part in parts for v in part.vmaf)
    psnr = [p for part in parts for p in part.psnr]
    if not vmaf:
        raise ValueError("nothing was scored")
    return {
        "vmaf_mean": round(_mean(vmaf), 2),
        "vmaf_p5": round(percentile(vmaf, 5), 2),
        "vmaf_min": round(vmaf[0], 2),
        "psnr_mean": round(_mean(psnr), 2),
        "frames": len(vmaf),
    }


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile of sorted values, interpolated between the nearest ranks."""
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
