"""Per-title ladders: each rung's bitrate chosen from test encodes of sampled spans.

The analysis encodes a few short spans of the source into every rung of the fixed
ladder at a few shares of each rung's bitrate (``SHARES``), with the production encoder
settings, and scores a sample of its frames (``ANALYSIS_STRIDE``) with VMAF as a
player shows it: every rung scaled up to the top rung's size, against the source
there. ``choose_ladder`` then gives each rung the lowest bitrate whose predicted VMAF
reaches its goal:

* what the fixed ladder's own bitrate reaches there, less a tolerance (half a point at
  the top, a point below it): where the curve has flattened, the bits past that buy
  nothing a viewer sees;
* raised to the rung's target (``TargetVmaf``: the top rung's, or per rung) where the
  fixed bitrate falls short of it, or, if the highest share cannot reach it either, to
  the knee: half a point below what the highest share reaches.

A rung may then take a larger rung's size: where a larger size's curve reaches the
rung's goal at ``SIZE_SAVING`` fewer bits (static or simple content, whose detail a
smaller size throws away for nothing), the rung is encoded at that size, at that rate,
and named for both (``240p-140k``: the first rung of a size keeps the plain name). Only
measured rates count: a size is never chosen below its lowest share.

Then the ladder is thinned: a rung that brings less than ``HULL_GAIN`` over the rung
below it (at a higher bitrate) is dropped, and so is a rung that would save a viewer
too little bandwidth over the rung above it (under ``MIN_STEP``). Every rung's curve,
goal and reason go into the plan and manifest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from workflow.errors import ConfigurationError
from workflow.media.ladder import Rendition

# The shares of a rung's fixed bitrate the analysis encodes at: the lowest and highest
# are the per-title bitrate's bounds. A floor of 0.2 (0.3 before, with 0.55 between):
# static content still scores its fixed rate's VMAF there, and a larger size is
# measured at the rates of the rung below; on the seven titles of bench/per_title.py
# the BD-rate went from -17.7 % to -23.0 % (title cards -23 % to -51 %) for the same
# four encodes.
SHARES = (0.2, 0.45, 1.0, 1.6)
KNEE = 0.5
TOP_TOLERANCE = 0.5
TOLERANCE = 1.0
# A rung must bring this much VMAF over the rung below it; and a rung below another
# must cost at most this share of its bitrate.
HULL_GAIN = 0.5
MIN_STEP = 0.75
# A larger size must reach a rung's goal at this share fewer bits than the rung's own
# (more pixels cost more to encode and to decode on a weak device).
SIZE_SAVING = 0.1
# Seconds per analysed span, the share of the source's duration analysed (at most
# ``MOST_SPANS`` spans, at least one).
SPAN_SECONDS = 4.0
ANALYSED_SHARE = 0.03
MOST_SPANS = 16
# Every this-many-th frame of a span is scored (``quality.scoring_args``; the same frames
# at every share). Scoring is most of what the analysis costs: one share of a 4 s 1080p
# span into the default ladder took 15.4 CPU-s to encode and 61.4 with every frame
# scored, 35.1 with every 3rd, 26.5 with every 5th, 24.2 with every 7th; the 5th kept each
# rung's VMAF within 0.15 of every frame's and the gain from 0.55x to 1.0x of the fixed
# bitrate within 0.16 (bench/README.md, measured at the shares before 0.2 and 0.45).
ANALYSIS_STRIDE = 5
DEFAULT_TARGET = 95.0


def parse_targets(spec: str) -> dict[int, float]:
    """``"95"`` (the top rung's) or ``"1080:95,720:93"`` (per short side) as {short side:
    VMAF}, 0 for the top rung."""
    targets: dict[int, float] = {}
    for part in spec.split(","):
        side, colon, value = part.strip().rpartition(":")
        try:
            vmaf = float(value)
            key = int(side) if colon else 0
        except ValueError:
            raise ConfigurationError(
                f"TARGET_VMAF is a VMAF (93) or per rung (1080:95,720:93), got {part!r}"
            ) from None
        if not 0 < vmaf <= 100 or key < 0:
            raise ConfigurationError(f"TARGET_VMAF entry {part!r} is out of range")
        if key in targets:
            # Which one was meant? The last silently winning would hide a typo.
            rung = f"rung {key}" if key else "top rung (a plain VMAF)"
            raise ConfigurationError(f"TARGET_VMAF gives the {rung} twice, in {spec!r}")
        targets[key] = vmaf
    return targets


def target_for(targets: Mapping[int, float], short_side: int, top: bool) -> float | None:
    """The target of a rung whose short side is ``short_side``: its own, or (the top
    rung) the plain one; None where a rung has none."""
    if short_side in targets:
        return targets[short_side]
    return targets.get(0, DEFAULT_TARGET) if top else None


def spans(chunks: Sequence[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """The spans to analyse: ``SPAN_SECONDS`` from the middle of chunks spread evenly
    over the source (``chunks`` are their (start, end)); the middle, because a title's
    first seconds are often its least typical (black, a fade, a card)."""
    wanted = max(1, min(MOST_SPANS, math.floor(duration * ANALYSED_SHARE / SPAN_SECONDS)))
    count = min(wanted, len(chunks))
    picked = [chunks[(2 * i + 1) * len(chunks) // (2 * count)] for i in range(count)]
    return [
        (
            start + max(0.0, (end - start - SPAN_SECONDS) / 2),
            min(end, start + (end - start + SPAN_SECONDS) / 2),
        )
        for start, end in picked
    ]


def curve_at(points: Sequence[tuple[float, float]], kbps: float) -> float:
    """VMAF at ``kbps`` on a rung's (kbps, VMAF) curve, linear in log bitrate."""
    points = _monotone(points)
    if kbps <= points[0][0]:
        return points[0][1]
    for (k0, v0), (k1, v1) in itertools.pairwise(points):
        if kbps <= k1:
            return v0 + (v1 - v0) * math.log(kbps / k0) / math.log(k1 / k0)
    return points[-1][1]


def lowest_rate(points: Sequence[tuple[float, float]], goal: float) -> float:
    """The lowest bitrate on the curve whose VMAF reaches ``goal`` (the curve's bounds)."""
    points = _monotone(points)
    if points[0][1] >= goal:
        return points[0][0]
    for (k0, v0), (k1, v1) in itertools.pairwise(points):
        if v1 >= goal:
            if v1 == v0:
                return k1
            return k0 * math.exp(math.log(k1 / k0) * (goal - v0) / (v1 - v0))
    return points[-1][0]


def _monotone(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The curve sorted by bitrate, each VMAF at least the one before (more bits never
    score worse; a measured dip is noise)."""
    ordered = sorted(points)
    best = -math.inf
    result = []
    for kbps, vmaf in ordered:
        best = max(best, vmaf)
        result.append((kbps, best))
    return result


def choose_ladder(
    fixed: Sequence[Rendition],
    curves: Mapping[str, Sequence[tuple[float, float]]],
    targets: Mapping[int, float],
) -> tuple[list[Rendition], list[dict[str, Any]]]:
    """The per-title ladder from the fixed one and each rung's measured (kbps, VMAF)
    curve; and, per fixed rung, what was decided and why."""
    decisions: list[dict[str, Any]] = []
    for position, rung in enumerate(fixed):
        curve = _monotone(curves[rung.name])
        fixed_vmaf = curve_at(curve, rung.kbps)
        tolerance = TOP_TOLERANCE if position == 0 else TOLERANCE
        goal, why = fixed_vmaf - tolerance, "fixed rate's VMAF less tolerance"
        target = target_for(targets, min(rung.width, rung.height), position == 0)
        if target is not None and target > goal:
            best = curve[-1][1]
            goal, why = (target, "target") if target <= best - KNEE else (best - KNEE, "knee")
            goal = max(goal, fixed_vmaf - tolerance)
        size, kbps = _cheapest_size(fixed[: position + 1], curves, goal)
        decisions.append(
            {
                "rung": rung.name,
                "size": size.name,
                "fixed_kbps": rung.kbps,
                "kbps": kbps,
                "target_vmaf": target,
                "goal_vmaf": round(goal, 2),
                "predicted_vmaf": round(curve_at(_monotone(curves[size.name]), kbps), 2),
                "fixed_vmaf": round(fixed_vmaf, 2),
                "goal": why,
                "curve": [[round(k), round(v, 2)] for k, v in curve],
                "kept": True,
            }
        )
    _thin(decisions)
    sizes = {rung.name: rung for rung in fixed}
    chosen: list[Rendition] = []
    for decision in decisions:
        if decision["kept"]:
            size, kbps = sizes[decision["size"]], decision["kbps"]
            taken = any((r.width, r.height) == (size.width, size.height) for r in chosen)
            name = f"{size.name}-{kbps}k" if taken else size.name
            chosen.append(size.at_rate(kbps, name))
            decision["name"] = name
    return chosen, decisions


def _cheapest_size(
    sizes: Sequence[Rendition], curves: Mapping[str, Sequence[tuple[float, float]]], goal: float
) -> tuple[Rendition, int]:
    """The size (``sizes[-1]``, the rung's own, or a larger one) and bitrate a rung gets
    to reach ``goal``: its own size's lowest rate, unless a larger size's curve reaches
    the goal at ``SIZE_SAVING`` fewer bits."""
    own = sizes[-1]
    best, best_kbps = own, _rounded(lowest_rate(curves[own.name], goal))
    for larger in sizes[:-1]:
        curve = _monotone(curves[larger.name])
        if curve[-1][1] < goal:
            continue
        kbps = _rounded(lowest_rate(curve, goal))
        if kbps <= (best_kbps * (1 - SIZE_SAVING) if best is own else best_kbps):
            best, best_kbps = larger, kbps
    return best, best_kbps


def _rounded(kbps: float) -> int:
    """Up to the next 10 kbps (never below the goal), and at least 64."""
    return max(64, math.ceil(kbps / 10 - 1e-9) * 10)


def _thin(decisions: list[dict[str, Any]]) -> None:
    """Drop the rungs not worth their place (``kept``, with a ``reason``)."""
    kept: list[dict[str, Any]] = []
    for decision in decisions:
        while kept and kept[-1]["predicted_vmaf"] - decision["predicted_vmaf"] < HULL_GAIN:
            upper = kept.pop()
            upper |= {
                "kept": False,
                "reason": f"less than {HULL_GAIN} VMAF over {decision['rung']}, at a higher rate",
            }
        kept.append(decision)
    above = None
    for decision in kept:
        if above is not None and decision["kbps"] > above["kbps"] * MIN_STEP:
            decision |= {
                "kept": False,
                "reason": f"within {MIN_STEP:.0%} of {above['rung']}'s rate",
            }
        else:
            above = decision
