"""Plan: the ladder, the chunks, and the Map's list of work items."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from workflow.errors import InputTooLongError
from workflow.keys.store import KeyStore
from workflow.media import images, per_title, quality, subtitles
from workflow.media.audio_pieces import (
    MAX_PIECE_SEGMENTS,
    AudioPiece,
    plan_audio_pieces,
    sample_exact,
)
from workflow.media.chunks import Chunk, plan_chunks
from workflow.media.facts import SourceFacts
from workflow.media.ladder import Rendition, build_ladder
from workflow.names import AUDIO
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import Bucket, transient_aws_errors
from workflow.vod.jobs import JobPaths, read_job_record, require_results
from workflow.vod.records import ANALYSIS, ImagesPiece, Plan, ProbeRecord, Source, WorkItem

# The state machine's ChooseLadder state invokes Plan's function with this step.
CHOOSE_LADDER = "choose-ladder"
# The most work items one job's Map may have. A Distributed Map without a ResultWriter
# gathers every item's output into one array, and Step Functions fails the job
# (``States.DataLimitExceeded``) past 256 KiB, after every item has run: each item ends
# on an empty output, "{}," in the array, so 87,381 fit; 4 h at the finest settings the
# template allows are 58,264.
MAX_MAP_ITEMS = 87_000


def plan_step(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Plan the job; or, invoked as ``CHOOSE_LADDER``, choose its per-title ladder."""
    if event.get("step") == CHOOSE_LADDER:
        return choose_ladder(event, settings, clients)
    return plan_job(event, settings, clients)


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
        facts.display_width, facts.display_height, facts.max_frame_rate, settings.ladder
    )
    chunks = plan_chunks(
        probed.index,
        settings.chunk_seconds,
        settings.segment_seconds,
        slots=settings.map_max_concurrency,
    )
    per_title_ladder = probed.ladder_mode == "per-title"
    ladder: dict[str, Any] = {"mode": probed.ladder_mode}
    if per_title_ladder:
        ladder |= {
            "fixed": [r.to_dict() for r in renditions],
            "targets": settings.target_vmaf,
        }
    encryption = None
    if probed.encryption != "none":
        # Made before any segment exists, once: a retried Plan finds the same key.
        key = KeyStore.of(settings, clients).make_once(paths.job_id)
        encryption = {"method": probed.encryption, "key_id": key.key_id}
    sampling = quality.Sampling(stride=0)
    if settings.quality_report == "sampled":
        sampling = quality.report_sampling(
            round(facts.duration * facts.frame_rate),
            [len(chunk.segment_starts) for chunk in chunks],
            facts.coded_width * facts.coded_height,
        )
    pieces = _audio_pieces(facts, settings)
    most = max((len(piece.segment_starts) for piece in pieces), default=0)
    if most > MAX_PIECE_SEGMENTS:
        # Refused here, not when its item's ffmpeg cannot start (E2BIG, on every retry).
        raise InputTooLongError(
            f"the video runs {facts.duration:.0f} s, and its audio would be encoded in a "
            f"piece of {most} segments (audio not at 48 kHz, or in Matroska, is one piece); "
            f"a piece may have at most {MAX_PIECE_SEGMENTS}: raise SegmentSeconds, lower "
            "AudioPieceSeconds, or lower MaxInputSeconds"
        )
    # Longest first, so that where the Map runs fewer items at once than it has (the
    # local stack runs one per CPU) the short ones fill the last wave's idle slots instead
    # of delaying a chunk: the images' pieces (each reads up to a sprite sheet's span of
    # the source, keyframes decoded), the video chunks, then the audio pieces and
    # subtitles (a second or two each).
    items = []
    if settings.thumbnail_seconds > 0:
        ticks = images.thumbnail_count(facts.duration, settings.thumbnail_seconds)
        seekable = images.seekable(facts.container, facts.keyframe_count)
        items += [
            WorkItem("images", images=ImagesPiece(first, count))
            for first, count in images.image_pieces(ticks, seekable)
        ]
    items += [WorkItem("video", chunk=chunk) for chunk in chunks]
    items += [WorkItem(AUDIO, piece=piece) for piece in pieces]
    items += [
        WorkItem("subtitles", sidecar=sidecar, etag=etag)
        for sidecar, etag in _sidecars(source, clients)
    ]
    if len(items) > MAX_MAP_ITEMS:
        raise InputTooLongError(
            f"the video runs {facts.duration:.0f} s, which these settings make "
            f"{len(items)} work items; a job's Map gathers at most {MAX_MAP_ITEMS}: raise "
            "ChunkSeconds, AudioPieceSeconds or ThumbnailSeconds, or lower MaxInputSeconds"
        )
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
        ladder=ladder,
        quality_stride=sampling.stride,
        quality_segment_every=sampling.segment_every,
        encryption=encryption,
    )
    output.put_json(paths.plan_key, plan.to_dict())
    output.put_json(paths.items_key, [i.to_dict() for i in items])
    analysis = []
    if per_title_ladder:
        analysis = [
            WorkItem(ANALYSIS, chunk=Chunk(c.index, start, end, 0, [start], c.margin))
            for c, (start, end) in _analysed(chunks, facts.duration)
        ]
        output.put_json(paths.analysis_items_key, [i.to_dict() for i in analysis])
    return _planned(plan, paths, settings) | {
        "items": len(items),
        "analyse": per_title_ladder,
        "analysis_key": paths.analysis_items_key if per_title_ladder else None,
        "analysis_items": len(analysis),
    }


@transient_aws_errors()
def choose_ladder(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Per-title: choose each rung's bitrate from the analysis items' results and write
    the plan again with the chosen ladder (from the fixed one it kept, so a retry
    chooses the same)."""
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    plan = Plan.from_dict(read_job_record(output, paths.plan_key, "Plan"))
    spans = [
        WorkItem.from_dict(i) for i in read_job_record(output, paths.analysis_items_key, "Plan")
    ]
    require_results(output, paths, [span.name for span in spans])
    results = [read_job_record(output, paths.result_key(i.name), "Analyse") for i in spans]
    fixed = [Rendition.from_dict(r) for r in plan.ladder["fixed"]]
    # A span that held no frame (a hole in a variable-rate source) measured nothing; where
    # none measured anything, the fixed ladder stays, as it would with no analysis.
    measured = [r for r in results if r["points"] is not None]
    chosen: list[Rendition] = fixed
    decisions: list[dict[str, Any]] = []
    if measured:
        curves = {
            rung.name: [
                (
                    point["kbps"],
                    sum(r["points"][rung.name][j]["vmaf"] for r in measured) / len(measured),
                )
                for j, point in enumerate(measured[0]["points"][rung.name])
            ]
            for rung in fixed
        }
        chosen, decisions = per_title.choose_ladder(
            fixed, curves, per_title.parse_targets(plan.ladder["targets"])
        )
    ladder = plan.ladder | {
        "spans": [r["span"] for r in measured],
        "rungs": decisions,
        "analysis_seconds": round(sum(r["wall_seconds"] for r in results), 3),
        # What the analysis cost in Lambda time, for the job's cost estimate.
        "analysis_gb_seconds": round(
            sum(r["wall_seconds"] * r["memory_mb"] / 1024 for r in results), 3
        ),
    }
    plan = replace(plan, renditions=chosen, ladder=ladder)
    output.put_json(paths.plan_key, plan.to_dict())
    return _planned(plan, paths, settings) | {"items": len(plan.items)}


def _planned(plan: Plan, paths: JobPaths, settings: Settings) -> dict[str, Any]:
    """What the state machine needs of a plan: where its items are, and a summary."""
    return {
        "bucket": settings.output_bucket,
        "plan_key": paths.plan_key,
        "items_key": paths.items_key,
        "chunks": len(plan.chunks),
        "renditions": [r.name for r in plan.renditions],
        "max_concurrency": settings.map_max_concurrency,
    }


def _analysed(chunks: list[Chunk], duration: float) -> list[tuple[Chunk, tuple[float, float]]]:
    """The chunks a per-title ladder is analysed in, with the span of each analysed."""
    picked = per_title.spans([(c.start, c.end) for c in chunks], duration)
    return [
        (next(c for c in chunks if c.start <= start < c.end), (start, end)) for start, end in picked
    ]


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
    prefix = subtitles.sidecar_prefix(source.key)
    listed = {item["Key"]: item for item in Bucket(clients.s3, source.bucket).objects(prefix)}
    sidecars = subtitles.find_sidecars(source.key, listed)
    # Refused here, not only in its item: the Map runs the subtitles last, so a long job
    # would fail on it once its video had been encoded.
    for sidecar in sidecars:
        subtitles.check_size(sidecar.key, int(listed[sidecar.key]["Size"]))
    return [(sidecar, listed[sidecar.key]["ETag"].strip('"')) for sidecar in sidecars]
