"""VMAF and PSNR of a span's rungs, scored inside the ffmpeg run that encodes them.

Each rung's encoder output is decoded again by a loopback decoder (``-dec``) and scored
against the same source frames the run decoded, scaled to the rung's size (bicubic): no
second read of the source, no second process. The scoring graphs are separate
``-filter_complex`` graphs, one per rung, so ffmpeg runs them on their own threads.

A quality report scores every ``stride``-th frame of each rung (``report_stride``); the
decoding of every frame is what it cannot skip, and is most of what it costs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.errors import TranscodeError
from workflow.media.ladder import Rendition

# The longest stride a report samples with, and the fewest frames it samples in a job:
# a short title is scored more densely, so that its few samples still estimate its mean.
# Strides are primes, so that a sample never falls in step with a GOP.
LONGEST_STRIDE = 37
FEWEST_SAMPLES = 150
_PRIMES = (1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
# What the scores are: libvmaf's default model, each rung at its own size against the
# source scaled to it.
MODEL = "vmaf_v0.6.1"
# Both sides' frames are renumbered 0, 1, 2... on a 1 s time base before libvmaf pairs
# them by time: ``setpts=N/TB`` on the encoder's 1001/30000 time base rounds, and pairs
# frames a step apart.
_IN_ORDER = "settb=1,setpts=N"
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
) -> list[str]:
    """Arguments to append to an encode's command line (after its outputs) that score
    each rendition's output, the ``first_output + i``-th output for rendition ``i``.

    ``bounds`` are the ``trim`` filter's options that cut the encode's frames out of
    input 0's video; both sides are paired in order (the encodes pass every frame
    through, in order), and every ``stride``-th pair is scored, from the first. Only
    those frames and the ones just before them are scaled and handed to libvmaf: most
    of what a report costs is then decoding each rung's frames again. Scores go to
    ``scores_path(workdir, rung)``.

    With ``display`` (width, height), each rung is scored as a player shows it: scaled
    up (bicubic) to that size, against the source scaled there; rungs of different
    sizes can then be compared. Without, each at its own size.
    """
    trim = ":".join(f"{key}={value}" for key, value in bounds.items())
    # Each scored frame goes to libvmaf with the frame before it, and libvmaf scores every
    # other frame: its motion feature compares a frame with its predecessor, so a frame
    # sent alone would read the gap as motion, and score high.
    pairs, subsample = "", 1
    if stride > 1:
        pairs = rf"select='not(mod(n\,{stride}))+eq(mod(n\,{stride})\,{stride - 1})',"
        subsample = 2
    args: list[str] = []
    for i in range(len(renditions)):
        # One thread each: frame threads cost a decoder CPU, and the encodes use the cores.
        args += ["-threads", "1", "-dec", f"{first_output + i}:0"]
    for i, rung in enumerate(renditions):
        log = scores_path(workdir, rung.name)
        if not _SAFE_PATH.fullmatch(str(log)):
            raise ValueError(f"unsafe path for a filter argument: {log}")
        width, height = display or (rung.width, rung.height)
        upscale = f"scale={width}:{height}:flags=bicubic," if display else ""
        graph = (
            f"[dec:{i}]{pairs}{upscale}{_IN_ORDER}[distorted{i}];"
            f"[0:v]trim={trim},{pairs}{_IN_ORDER},"
            f"scale={width}:{height}:flags=bicubic,format=yuv420p[reference{i}];"
            f"[distorted{i}][reference{i}]libvmaf=n_threads=1:log_fmt=json:"
            f"log_path={log}:n_subsample={subsample}:feature=name=psnr[scored{i}]"
        )
        args += ["-filter_complex", graph, "-map", f"[scored{i}]", "-f", "null", "-"]
    return args


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
