"""TranscodeAudio: one piece of the audio track, on the AAC frame grid the pieces share."""

from __future__ import annotations

import time
from typing import Any

from workflow.media import encode, runner
from workflow.media.rungs import encode_span, split_cmaf
from workflow.names import AUDIO
from workflow.runtime import Deadline, memory_mb, scratch_dir
from workflow.vod.items import Work, source_input, upload_segments, work_item
from workflow.vod.records import SegmentsResult


@work_item
def transcode_audio(work: Work, remaining: Deadline) -> dict[str, Any]:
    """Encode one piece of the audio, trimmed to the video's span, and upload its segments."""
    piece, plan = work.item.audio_piece(), work.plan
    facts = plan.facts
    began = time.monotonic()
    with scratch_dir() as workdir:
        with source_input(work.source, work.clients) as (url, headers):
            command = encode.build_audio_piece_command(
                url,
                facts.container,
                facts.container_start,
                facts.start_time,
                facts.duration,
                piece,
                workdir,
                kbps=plan.audio_kbps,
                source_rate=facts.audio.sample_rate if facts.audio else 0,
                binary=runner.ffmpeg_binary(),
                packaging=plan.packaging,
                headers=headers,
                audio_stream=facts.audio.index if facts.audio else 0,
            )
            rungs = encode_span(
                [command],
                workdir,
                [AUDIO],
                facts.start_time + piece.start,
                facts.start_time + piece.end,
                # AAC runs far faster than x264: a quarter of its length in video-seconds.
                timeout=runner.time_limit(remaining(), (piece.end - piece.start) / 4),
                on_progress=work.progress(),
            )
        inits: dict[str, dict[str, Any]] = {}
        if plan.cmaf:
            rungs, inits = split_cmaf(rungs)
        # Every piece's init is the same (Publish checks): the first piece uploads it.
        uploaded = upload_segments(
            work.output,
            work.paths,
            rungs,
            cmaf=plan.cmaf,
            first=piece.index == 0,
            key=work.content_key(),
        )
    result = SegmentsResult(
        item=piece.item,
        rungs=uploaded,
        inits=inits,
        wall_seconds=round(time.monotonic() - began, 3),
        finished_at=work.clients.utc_now(),
        memory_mb=memory_mb(),
    )
    work.output.put_json(work.paths.result_key(piece.item), result.to_dict())
    return {"item": piece.item, "seconds": round(time.monotonic() - began, 3)}
