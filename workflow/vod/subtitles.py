"""Subtitles: one sidecar file as WebVTT, timed against the video's first frame."""

from __future__ import annotations

from typing import Any

from workflow.errors import SourceChangedError, SubtitleError
from workflow.media import encode, runner, subtitles
from workflow.runtime import Deadline
from workflow.storage import Bucket, Pin
from workflow.vod.items import Work, work_item
from workflow.vod.records import SubtitlesResult


@work_item
def make_subtitles(work: Work, remaining: Deadline) -> dict[str, Any]:
    """One sidecar subtitle file as WebVTT, timed against the video's first frame."""
    sidecar, plan = work.item.subtitle_sidecar(), work.plan
    ingest = Bucket(work.clients.s3, work.source.bucket)
    pin = Pin(None, work.item.etag)
    try:
        subtitles.check_size(sidecar.key, int(ingest.head(sidecar.key, pin)["ContentLength"]))
        data = ingest.get_bytes(sidecar.key, pin)
    except SourceChangedError:
        # Not the video's words: a sidecar's upload starts no job of its own.
        raise SourceChangedError(
            f"{sidecar.key}, a subtitle file of this video, was replaced or deleted while "
            "the job ran; a subtitle upload starts no job: upload the video again to "
            "publish it with the subtitles as they are now"
        ) from None
    try:
        vtt = subtitles.to_webvtt(
            data,
            sidecar.format,
            binary=runner.ffmpeg_binary(),
            timeout=runner.time_limit(remaining(), 1.0),
        )
    except SubtitleError as exc:
        raise SubtitleError(f"{sidecar.key}: {exc}") from None
    # The sidecar is timed on the source's timeline, whose zero is the file's start (what
    # every player of the source shows as 0:00); the published one starts at the video's
    # first frame, which may come later (a video track that starts after its audio).
    vtt = subtitles.shifted(vtt, max(0.0, plan.facts.start_time - plan.facts.container_start))
    # HLS players place cue time 0 at this 90 kHz video timestamp: the first frame's.
    first_frame = plan.facts.start_time + encode.TS_OFFSET
    if plan.packaging == "hls-ts":
        first_frame += encode.TS_MUXER_DELAY
    track = subtitles.SubtitleTrack(sidecar.language)
    work.output.put_bytes(
        f"{work.paths.output_prefix}{track.webvtt_uri}",
        subtitles.with_timestamp_map(vtt, round(first_frame * 90_000)).encode(),
    )
    result = SubtitlesResult(work.item.name, sidecar.language, sidecar.key, work.clients.utc_now())
    work.output.put_json(work.paths.result_key(result.item), result.to_dict())
    return {"item": result.item}
