"""TranscodeChunk: one chunk of the source into every video rung."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from workflow import metrics
from workflow.media import encode, picture, quality, runner
from workflow.media.chunks import keyframe_reach
from workflow.media.rungs import encode_chunk, split_cmaf
from workflow.runtime import Clients, Deadline, memory_mb, scratch_dir
from workflow.settings import Settings
from workflow.vod import analyse
from workflow.vod.items import Work, source_input, upload_segments, work_item
from workflow.vod.records import ANALYSIS, SegmentsResult


def encoding_item(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
) -> dict[str, Any]:
    """TranscodeChunk's function: a chunk, or a span a per-title ladder is analysed on."""
    if event["item"]["kind"] == ANALYSIS:
        return analyse.analyse_span(event, settings, clients, remaining)
    return transcode_chunk(event, settings, clients, remaining)


@work_item
def transcode_chunk(work: Work, remaining: Deadline) -> dict[str, Any]:
    """Encode one chunk into every rung and upload its segments."""
    chunk, plan = work.item.video_chunk(), work.plan
    renditions = plan.renditions
    began = time.monotonic()
    attempts: list[Path] = []
    final = chunk.index == len(plan.chunks) - 1
    windows = quality.sampled_windows(
        chunk.segment_starts, plan.quality_segment_every, chunk.index, final
    )
    report = (windows, plan.quality_stride) if plan.quality_stride else None
    progress = work.progress()
    # The encode is this share of the chunk's progress; scoring its report, the rest.
    share = 1.0
    if report:
        sampled = len(windows) / max(1, len(chunk.segment_starts))
        share = quality.encode_share(sampled, plan.quality_stride)
    with scratch_dir() as workdir:
        with source_input(work.source, work.clients) as (url, headers):

            def commands(directory: Path, margin: float) -> list[list[str]]:
                attempts.append(directory)
                return [
                    encode.build_chunk_command(
                        url,
                        plan.facts.container,
                        plan.facts.container_start,
                        chunk,
                        renditions,
                        directory,
                        margin=margin,
                        final=final,
                        binary=runner.ffmpeg_binary(),
                        preset=plan.preset,
                        packaging=plan.packaging,
                        headers=headers,
                        report=report,
                        cpus=runner.cpus(),
                        source_pixels=plan.facts.coded_width * plan.facts.coded_height,
                        max_pixels=work.settings.limits.max_pixels,
                        source_filters=picture.source_filters(plan.facts),
                    )
                ]

            rungs = encode_chunk(
                commands,
                workdir,
                [rung.name for rung in renditions],
                chunk,
                plan.facts.container_start,
                timeout=lambda: runner.time_limit(remaining(), chunk.duration * len(renditions)),
                on_progress=progress.span(0.0, share),
                final=final,
                reach=keyframe_reach(plan.facts.frame_rate),
            )
        encoded = time.monotonic()
        scores = {}
        if plan.quality_stride:
            scored = quality.score_sampled(
                runner.ffmpeg_binary(),
                renditions,
                rungs,
                plan.quality_stride,
                attempts[-1],
                runner.time_limit(remaining(), chunk.duration * len(renditions)),
                on_progress=progress.span(share, 1.0),
            )
            scores = {rung: s.to_dict() for rung, s in scored.items()}
        inits: dict[str, dict[str, Any]] = {}
        if plan.cmaf:
            rungs, inits = split_cmaf(rungs, plan.facts.frame_rate)
        # Every chunk's init is the same (Publish checks): the first chunk uploads it.
        uploaded = upload_segments(
            work.output,
            work.paths,
            rungs,
            cmaf=plan.cmaf,
            first=chunk.index == 0,
            key=work.content_key(),
        )
    result = SegmentsResult(
        item=work.item.name,
        rungs=uploaded,
        inits=inits,
        encode_seconds=round(encoded - began, 3),
        wall_seconds=round(time.monotonic() - began, 3),
        finished_at=work.clients.utc_now(),
        memory_mb=memory_mb(),
        quality=scores,
    )
    work.output.put_json(work.paths.result_key(result.item), result.to_dict())
    metrics.about(job_id=work.paths.job_id, item=result.item)
    if result.encode_seconds:
        metrics.amount(metrics.ENCODE_SPEED, chunk.duration / result.encode_seconds)
    return {"item": result.item, "seconds": round(time.monotonic() - began, 3)}
