"""TranscodeAudio: the whole audio track once, cut at the video's segment boundaries."""

from __future__ import annotations

import time
from typing import Any

from workflow.media import encode, runner
from workflow.media.rungs import encode_span, split_cmaf
from workflow.names import AUDIO
from workflow.runtime import Deadline, scratch_dir
from workflow.vod.items import Work, source_input, upload_segments, work_item
from workflow.vod.records import SegmentsResult


@work_item
def transcode_audio(work: Work, remaining: Deadline) -> dict[str, Any]:
    """Encode the whole audio track once, trimmed to the video's span."""
    plan = work.plan
    facts = plan.facts
    began = time.monotonic()
    with scratch_dir() as workdir:
        with source_input(work.source, work.clients) as (url, headers):
            command = encode.build_audio_command(
                url,
                facts.container,
                facts.start_time,
                facts.duration,
                workdir,
                kbps=plan.audio_kbps,
                segment_seconds=plan.segment_seconds,
                binary=runner.ffmpeg_binary(),
                packaging=plan.packaging,
                headers=headers,
            )
            rungs = encode_span(
                [command],
                workdir,
                [AUDIO],
                facts.start_time,
                facts.start_time + facts.duration,
                # AAC runs far faster than x264: a quarter of its length in video-seconds.
                timeout=runner.time_limit(remaining(), facts.duration / 4),
                on_progress=work.progress(),
            )
        inits: dict[str, dict[str, Any]] = {}
        if plan.cmaf:
            rungs, inits = split_cmaf(rungs)
        uploaded = upload_segments(work.output, work.paths, rungs, inits=plan.cmaf)
    result = SegmentsResult(
        item=AUDIO,
        rungs=uploaded,
        inits=inits,
        wall_seconds=round(time.monotonic() - began, 3),
        finished_at=work.clients.utc_now(),
    )
    work.output.put_json(work.paths.result_key(AUDIO), result.to_dict())
    return {"item": AUDIO, "seconds": round(time.monotonic() - began, 3)}
