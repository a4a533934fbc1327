"""Plan: the ladder, the chunks, and the Map's list of work items."""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any

from workflow.media import subtitles
from workflow.media.audio_pieces import AudioPiece, plan_audio_pieces, sample_exact
from workflow.media.chunks import plan_chunks
from workflow.media.facts import SourceFacts
from workflow.media.ladder import build_ladder
from workflow.names import AUDIO
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Bucket, transient_aws_errors
from workflow.vod.jobs import JobPaths, read_job_record
from workflow.vod.records import Plan, ProbeRecord, Source, WorkItem


@transient_aws_errors()
def plan_job(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Choose the ladder and the chunks; write the plan and the Map's item list."""
    began = time.monotonic()
    paths = JobPaths(event["job_id"])
    source = Source.from_dict(event["source"])
    output = Bucket(clients.s3, settings.output_bucket)
    probed = ProbeRecord.from_dict(read_job_record(output, paths.probe_key, "Probe"))
    facts = probed.facts
    renditions = build_ladder(
        facts.display_width, facts.display_height, facts.frame_rate, settings.ladder
    )
    chunks = plan_chunks(probed.index, settings.chunk_seconds, settings.segment_seconds)
    pieces = _audio_pieces(facts, settings)
    items = [WorkItem(AUDIO, piece=piece) for piece in pieces]
    if settings.thumbnail_seconds > 0:
        items.append(WorkItem("images"))
    items += [
        WorkItem("subtitles", sidecar=sidecar, etag=etag)
        for sidecar, etag in _sidecars(source, clients)
    ]
    items += [WorkItem("video", chunk=chunk) for chunk in chunks]
    plan = Plan(
        facts=facts,
        renditions=renditions,
        chunks=chunks,
        audio_pieces=pieces,
        segment_seconds=settings.segment_seconds,
        audio_kbps=settings.audio_kbps,
        preset=settings.x264_preset,
        packaging=probed.packaging,
        thumbnail_seconds=settings.thumbnail_seconds,
        extras=[i.name for i in items if i.kind in WorkItem.EXTRA_KINDS],
        timings={"probe": probed.elapsed, "plan": round(time.monotonic() - began, 3)},
    )
    output.put_json(paths.plan_key, plan.to_dict())
    output.put_json(paths.items_key, [i.to_dict() for i in items])
    return {
        "bucket": settings.output_bucket,
        "plan_key": paths.plan_key,
        "items_key": paths.items_key,
        "chunks": len(chunks),
        "items": len(items),
        "renditions": [r.name for r in renditions],
        "max_concurrency": settings.map_max_concurrency,
    }


def _audio_pieces(facts: SourceFacts, settings: Settings) -> list[AudioPiece]:
    """The audio's pieces: one where a seek may misplace its samples (``sample_exact``)."""
    if facts.audio is None:
        return []
    exact = sample_exact(facts.container, facts.audio.sample_rate)
    piece_seconds = settings.audio_piece_seconds if exact else 0.0
    return plan_audio_pieces(facts.duration, piece_seconds, settings.segment_seconds)


def _sidecars(source: Source, clients: Clients) -> list[tuple[subtitles.Sidecar, str]]:
    """The video's subtitle sidecars, each with the ETag its item's reads are pinned to."""
    # Every sidecar's key starts with the video's own "<folder>/<stem>.": list only those.
    prefix = str(PurePosixPath(source.key).with_suffix("")) + "."
    etags = {
        item["Key"]: item["ETag"].strip('"')
        for item in Bucket(clients.s3, source.bucket).objects(prefix)
    }
    return [(sidecar, etags[sidecar.key]) for sidecar in subtitles.find_sidecars(source.key, etags)]
