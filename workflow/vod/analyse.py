"""Analyse: one sampled span of the source, test-encoded into every rung of the fixed
ladder at each of ``per_title.SHARES`` of its bitrate and scored as a player shows it
(every rung scaled to the top rung's size; every ``per_title.ANALYSIS_STRIDE``-th
frame), for ``plan.choose_ladder``."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from workflow.errors import TranscodeError
from workflow.media import encode, per_title, picture, quality, runner
from workflow.runtime import Deadline, memory_mb, scratch_dir
from workflow.vod.items import Work, source_input, work_item

# How ffmpeg ends a run whose span held no frame (a hole in a variable-rate source, which
# a span from a long chunk's middle can fall in): no rung got a packet.
NO_FRAME = "received no packets"


@work_item
def analyse_span(work: Work, remaining: Deadline) -> dict[str, Any]:
    """Encode and score the item's span at every share; record each rung's points (None
    where the span held no frame)."""
    span, plan = work.item.video_chunk(), work.plan
    began = time.monotonic()
    with scratch_dir() as workdir, source_input(work.source, work.clients) as (url, headers):

        def encode_at(share: float) -> dict[str, tuple[float, float, float]] | None:
            here = workdir / f"share-{share}"
            renditions = [replace(r, kbps=round(r.kbps * share)) for r in plan.renditions]
            for rung in renditions:
                (here / rung.name).mkdir(parents=True)
            command = encode.build_chunk_command(
                url,
                plan.facts.container,
                plan.facts.container_start,
                span,
                renditions,
                here,
                binary=runner.ffmpeg_binary(),
                preset=plan.preset,
                headers=headers,
                score_every=per_title.ANALYSIS_STRIDE,
                score_at=(plan.renditions[0].width, plan.renditions[0].height),
                reproducible=True,
                max_pixels=work.settings.limits.max_pixels,
                source_filters=picture.source_filters(plan.facts),
            )
            limit = runner.time_limit(remaining(), 4 * span.duration * len(renditions))
            try:
                runner.run_ffmpeg(command, limit)
            except TranscodeError as exc:
                if NO_FRAME in str(exc) and not any(here.glob("*/seg_*")):
                    return None
                raise
            scores = quality.read_scores(here, renditions)
            return {
                r.name: (r.kbps, _kbps(here / r.name, span.duration), scores[r.name].mean)
                for r in renditions
            }

        with ThreadPoolExecutor(max_workers=len(per_title.SHARES)) as pool:
            measured = list(pool.map(encode_at, per_title.SHARES))
    # Every share decodes the same frames: a span that held none measured nothing.
    held = [at for at in measured if at is not None]
    points: dict[str, Any] | None = None
    if len(held) == len(measured):
        points = {
            rung.name: [
                {
                    "share": share,
                    "kbps": at[rung.name][0],
                    "measured_kbps": round(at[rung.name][1]),
                    "vmaf": round(at[rung.name][2], 3),
                }
                for share, at in zip(per_title.SHARES, held, strict=True)
            ]
            for rung in plan.renditions
        }
    seconds = round(time.monotonic() - began, 3)
    result = {
        "item": work.item.name,
        "span": [span.start, span.end],
        "points": points,
        "wall_seconds": seconds,
        "finished_at": work.clients.utc_now(),
        "memory_mb": memory_mb(),
    }
    work.output.put_json(work.paths.result_key(work.item.name), result)
    return {"item": work.item.name, "seconds": seconds}


def _kbps(directory: Path, seconds: float) -> float:
    """The bitrate of the segments ffmpeg wrote to ``directory``."""
    size = sum(path.stat().st_size for path in directory.glob("seg_*"))
    return size * 8 / 1000 / seconds if seconds > 0 else 0.0
