"""Subtitles: one sidecar file as WebVTT, timed against the video's first frame."""

from __future__ import annotations

from typing import Any

from workflow.errors import SubtitleError
from workflow.media import encode, runner, subtitles
from workflow.runtime import Clients, Deadline
from workflow.settings import Settings
from workflow.storage import Bucket, Pin, transient_aws_errors
from workflow.vod.items import ItemEvent, load_plan, records_item_errors
from workflow.vod.records import SubtitlesResult


@records_item_errors
@transient_aws_errors()
def make_subtitles(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
) -> dict[str, Any]:
    """One sidecar subtitle file as WebVTT, timed against the video's first frame."""
    job = ItemEvent.from_dict(event)
    sidecar = job.item.sidecar
    assert sidecar is not None, "a subtitles item carries its sidecar"
    output = Bucket(clients.s3, settings.output_bucket)
    plan = load_plan(output, job.paths)
    ingest = Bucket(clients.s3, job.source.bucket)
    pin = Pin(None, job.item.etag)
    size = int(ingest.head(sidecar.key, pin)["ContentLength"])
    if size > subtitles.MAX_SUBTITLE_BYTES:
        raise SubtitleError(
            f"{sidecar.key} is {size} bytes; a subtitle file may be "
            f"{subtitles.MAX_SUBTITLE_BYTES} bytes at most"
        )
    try:
        vtt = subtitles.to_webvtt(
            ingest.get_bytes(sidecar.key, pin),
            sidecar.format,
            binary=runner.ffmpeg_binary(),
            timeout=runner.time_limit(remaining(), 1.0),
        )
    except SubtitleError as exc:
        raise SubtitleError(f"{sidecar.key}: {exc}") from None
    # HLS players place cue time 0 at this 90 kHz video timestamp: the first frame's.
    first_frame = plan.facts.start_time + encode.TS_OFFSET
    if plan.packaging == "hls-ts":
        first_frame += encode.TS_MUXER_DELAY
    track = subtitles.SubtitleTrack(sidecar.language)
    output.put_bytes(
        f"{job.paths.output_prefix}{track.webvtt_uri}",
        subtitles.with_timestamp_map(vtt, round(first_frame * 90_000)).encode(),
    )
    result = SubtitlesResult(job.item.name, sidecar.language, sidecar.key, clients.utc_now())
    output.put_json(job.paths.result_key(result.item), result.to_dict())
    return {"item": result.item}
