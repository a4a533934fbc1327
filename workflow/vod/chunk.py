"""TranscodeChunk: one chunk of the source into every video rung."""

from __future__ import annotations

import time
from typing import Any

from workflow.media import encode, runner
from workflow.media.rungs import encode_span, split_cmaf
from workflow.runtime import Clients, Deadline, scratch_dir
from workflow.settings import Settings
from workflow.storage import Bucket, transient_aws_errors
from workflow.vod.items import (
    ItemEvent,
    load_plan,
    records_item_errors,
    source_input,
    upload_segments,
)
from workflow.vod.records import SegmentsResult


@records_item_errors
@transient_aws_errors()
def transcode_chunk(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
) -> dict[str, Any]:
    """Encode one chunk into every rung and upload its segments."""
    job = ItemEvent.from_dict(event)
    chunk = job.item.chunk
    assert chunk is not None, "a video item carries its chunk"
    output = Bucket(clients.s3, settings.output_bucket)
    plan = load_plan(output, job.paths)
    renditions = plan.renditions
    began = time.monotonic()
    with scratch_dir() as workdir:
        with source_input(job.source, clients) as (url, headers):
            command = encode.build_chunk_command(
                url,
                plan.facts.container,
                plan.facts.container_start,
                chunk,
                renditions,
                workdir,
                binary=runner.ffmpeg_binary(),
                preset=plan.preset,
                packaging=plan.packaging,
                headers=headers,
            )
            rungs = encode_span(
                [command],
                workdir,
                [rung.name for rung in renditions],
                chunk.start,
                chunk.end,
                timeout=runner.time_limit(remaining(), chunk.duration * len(renditions)),
            )
        encoded = time.monotonic()
        inits: dict[str, dict[str, Any]] = {}
        if plan.cmaf:
            rungs, inits = split_cmaf(rungs)
        # Every chunk's init is the same (Publish checks): the first chunk uploads it.
        uploaded = upload_segments(output, job.paths, rungs, inits=plan.cmaf and chunk.index == 0)
    result = SegmentsResult(
        item=job.item.name,
        rungs=uploaded,
        inits=inits,
        encode_seconds=round(encoded - began, 3),
        wall_seconds=round(time.monotonic() - began, 3),
        finished_at=clients.utc_now(),
    )
    output.put_json(job.paths.result_key(result.item), result.to_dict())
    return {"item": result.item, "seconds": round(time.monotonic() - began, 3)}
