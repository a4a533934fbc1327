"""Per-title ladders: each rung's bitrate chosen from test encodes of sampled spans.

The analysis encodes a few short spans of the source into every rung of the fixed
ladder at a few shares of each rung's bitrate (``SHARES``), with the production encoder
settings, and scores each with VMAF at the rung's own size. ``choose_ladder`` then
gives each rung the lowest bitrate whose predicted VMAF reaches its goal:

* the rung's target (``TargetVmaf``), or, where even the highest share cannot reach
  it, the knee: half a point below what the highest share reaches;
* for the top rung, never more than ``TOP_TOLERANCE`` below what the fixed ladder's own
  bitrate reaches there, so the best picture is never visibly worse than today's.

A rung is then dropped when it would save a viewer too little bandwidth over the rung
above it (under ``MIN_STEP``): switching down to it buys almost nothing, and its
resolution is lower. Every rung's curve, goal and reason go into the plan and manifest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from workflow.errors import ConfigurationError
from workflow.media.ladder import Rendition

# The shares of a rung's fixed bitrate the analysis encodes at: the lowest and highest
# are the per-title bitrate's bounds.
SHARES = (0.3, 0.55, 1.0, 1.6)
KNEE = 0.5
TOP_TOLERANCE = 0.5
# A rung below another must cost at most this share of its bitrate.
MIN_STEP = 0.75
# Seconds per analysed span, the share of the source's duration analysed (at most
# ``MOST_SPANS`` spans, at least one).
SPAN_SECONDS = 4.0
ANALYSED_SHARE = 0.03
MOST_SPANS = 16
DEFAULT_TARGET = 93.0


def parse_targets(spec: str) -> dict[int, float]:
    """``"93"`` (every rung) or ``"1080:95,720:93"`` (per short side; others get the
    nearest larger side's, or the default) as {short side: VMAF}; 0 for "every rung"."""
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
        targets[key] = vmaf
    return targets


def target_for(targets: Mapping[int, float], short_side: int) -> float:
    """The target for a rung whose short side is ``short_side``."""
    larger = sorted(side for side in targets if side and side >= short_side)
    if larger:
        return targets[larger[0]]
    return targets.get(0, DEFAULT_TARGET)


def spans(
    chunk_starts: Sequence[tuple[float, float]], duration: float
) -> list[tuple[float, float]]:
    """The spans to analyse: the first ``SPAN_SECONDS`` of chunks spread evenly over the
    source (``chunk_starts`` are the chunks' (start, end))."""
    wanted = max(1, min(MOST_SPANS, math.floor(duration * ANALYSED_SHARE / SPAN_SECONDS)))
    count = min(wanted, len(chunk_starts))
    picked = [chunk_starts[(2 * i + 1) * len(chunk_starts) // (2 * count)] for i in range(count)]
    return [(start, min(end, start + SPAN_SECONDS)) for start, end in picked]


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
    chosen: list[Rendition] = []
    for position, rung in enumerate(fixed):
        curve = _monotone(curves[rung.name])
        target = target_for(targets, min(rung.width, rung.height))
        best = curve[-1][1]
        goal, why = (target, "target") if target <= best - KNEE else (best - KNEE, "knee")
        fixed_vmaf = curve_at(curve, rung.kbps)
        if position == 0 and goal < fixed_vmaf - TOP_TOLERANCE:
            goal, why = fixed_vmaf - TOP_TOLERANCE, "top rung: within tolerance of fixed"
        kbps = max(64, round(lowest_rate(curve, goal) / 10) * 10)
        decision: dict[str, Any] = {
            "rung": rung.name,
            "fixed_kbps": rung.kbps,
            "kbps": kbps,
            "target_vmaf": target,
            "goal_vmaf": round(goal, 2),
            "predicted_vmaf": round(curve_at(curve, kbps), 2),
            "fixed_vmaf": round(fixed_vmaf, 2),
            "goal": why,
            "curve": [[round(k), round(v, 2)] for k, v in curve],
        }
        above = chosen[-1] if chosen else None
        if above is not None and kbps > above.kbps * MIN_STEP:
            decision |= {"kept": False, "reason": f"within {MIN_STEP:.0%} of {above.name}'s rate"}
        else:
            decision["kept"] = True
            chosen.append(replace(rung, kbps=kbps))
        decisions.append(decision)
    return chosen, decisions
