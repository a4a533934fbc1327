"""Publish: check every work item, then write playlists, DASH, the manifest and the master
last, so that a master playlist always means a whole asset."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.exceptions

from workflow import events, metrics, prices
from workflow.errors import EventNotSentError, IncompleteOutputError, TranscodeError
from workflow.formats import dash, hls
from workflow.formats.manifest import build_manifest
from workflow.keys import cbcs
from workflow.keys import segments as aes128
from workflow.keys.service import key_service_uri
from workflow.media import audio_pieces, encode, quality
from workflow.media.subtitles import SubtitleTrack, language_name
from workflow.names import AUDIO, CMAF_INIT, segment_number
from workflow.runtime import Clients, event_time
from workflow.settings import Settings
from workflow.shapes import known_fields
from workflow.storage import Bucket, transient_aws_errors
from workflow.vod.jobs import JobPaths, read_job_record, require_results
from workflow.vod.records import ImagesResult, Plan, SegmentsResult, SubtitlesResult

log = logging.getLogger("vidflow.publish")

Playlists = dict[str, list[hls.SegmentEntry]]

# Result records read at once: each is a small GET, so reading them is round trips, and an
# hour of video has hundreds. The handler's S3 client keeps as many connections.
READ_THREADS = 32


@transient_aws_errors()
def publish(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Check that every item succeeded, then write playlists, manifest and master last."""
    began = time.monotonic()
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    plan = Plan.from_dict(read_job_record(output, paths.plan_key, "Plan"))
    results = _results(output, paths, plan.items)
    encoded = {name: SegmentsResult.from_dict(r) for name, r in results.items() if "rungs" in r}
    playlists = _playlists(plan, encoded)
    audio = None
    if AUDIO in playlists:
        language = plan.facts.audio_language
        audio = hls.AudioEntry(
            uri=f"{AUDIO}/index.m3u8",
            group=hls.AUDIO_GROUP,
            channels=2,
            name=language_name(language) if language else "Main",
            language=language,
        )
    timescales = _same_inits(encoded) if plan.cmaf else {}
    init = CMAF_INIT if plan.cmaf else None
    # A protected job's key, where players fetch it (named in every playlist and the manifest).
    key_uri = (
        None if plan.encryption is None else key_service_uri(settings.key_service_url, paths.job_id)
    )
    method = None if plan.encryption is None else plan.encryption["method"]
    # AES-128: a key line (its own IV) per segment; cbcs: one for the init and every segment.
    listed = _protected(playlists, key_uri) if method == "aes-128" else playlists
    sample_key = cbcs.key_line(key_uri) if key_uri is not None and method == "cbcs" else None
    # Every media playlist of a variant has the same target duration (RFC 8216bis 6.2.4):
    # the audio's segments, on the AAC frame grid, run a few ms past the video's.
    target = hls.common_target(listed.values())
    bodies = {
        f"{paths.output_prefix}{name}/index.m3u8": hls.media_playlist(
            segments, init=init, key=sample_key, fixed_target=target
        )
        for name, segments in listed.items()
    }
    tracks = [
        SubtitleTrack(SubtitlesResult.from_dict(results[item]).language)
        for item in plan.extras
        if item.startswith("subtitles-")
    ]
    bodies |= {
        f"{paths.output_prefix}{track.playlist_uri}": hls.subtitle_playlist(
            track.webvtt_uri.rpartition("/")[2], plan.facts.duration
        )
        for track in tracks
    }
    variants = hls.measured_variants(plan.renditions, playlists, plan.facts.max_frame_rate)
    if plan.cmaf:
        protection = None
        if key_uri is not None and plan.encryption is not None:
            protection = dash.Protection(plan.encryption["key_id"], key_uri)
        bodies[paths.dash_key] = _dash_manifest(plan, playlists, timescales, tracks, protection)
    output.put_all({key: text.encode() for key, text in bodies.items()})
    chunks = [encoded[c.item] for c in plan.chunks]
    pieces = [encoded[p.item] for p in plan.audio_pieces]
    timings = {
        **plan.timings,
        "chunk_encode_seconds_total": round(sum(r.encode_seconds or 0 for r in chunks), 3),
        "chunk_wall_seconds_max": max(r.wall_seconds for r in chunks),
        "audio": max(r.wall_seconds for r in pieces) if pieces else None,
        "audio_pieces": len(pieces),
        "publish": round(time.monotonic() - began, 3),
    }
    images = ImagesResult.from_dict(results["images"]) if "images" in results else None
    ladder = plan.ladder
    if "analysis_seconds" in ladder:
        # What the analysis cost, as a share of the chunks' own encoding (wall seconds).
        chunk_seconds = sum(r.wall_seconds for r in chunks)
        ladder = ladder | {"analysis_share": round(ladder["analysis_seconds"] / chunk_seconds, 3)}
    manifest = build_manifest(
        job_id=paths.job_id,
        source={**event["source"], **plan.facts.to_dict()},
        segment_seconds=plan.segment_seconds,
        chunks=len(plan.chunks),
        audio_kbps=plan.audio_kbps,
        renditions=list(zip(plan.renditions, variants, strict=True)),
        playlists=playlists,
        audio=audio,
        timings=timings,
        packaging=plan.packaging,
        images=None if images is None else images.to_dict(),
        subtitles=tracks,
        ladder=ladder,
        quality=_quality_report(plan, encoded),
        encryption=None if plan.encryption is None else plan.encryption | {"key_uri": key_uri},
    )
    output.put_json(paths.manifest_key, manifest)
    master = hls.master_playlist(
        variants,
        audio,
        version=7 if plan.cmaf else 4,
        subtitles=hls.subtitle_media_lines(tracks),
        subtitle_group=hls.SUBTITLE_GROUP,
        captions=plan.facts.captions,
    )
    output.put_bytes(paths.master_key, master.encode())
    published = events.job_published(
        manifest, output.name, paths.output_prefix, settings.playback_base_url,
        _compute_usd([*chunks, *pieces], plan.ladder),
    )  # fmt: skip
    if announce_published(published, settings, output, clients):
        # Counted with the announcement, so a Publish run again counts nothing twice.
        _count_published(manifest, len(_retried(output, paths, results)), clients)
    return {"master_key": paths.master_key, "manifest_key": paths.manifest_key}


def _protected(playlists: Playlists, key_uri: str | None) -> Playlists:
    """The playlists as listed: each segment of a protected job with the key it is
    encrypted under (``key_uri``, the segment's own IV)."""
    if key_uri is None:
        return playlists
    return {
        name: [
            replace(s, key=aes128.segment_key_line(key_uri, f"{name}/{s.uri}")) for s in segments
        ]
        for name, segments in playlists.items()
    }


def _quality_report(plan: Plan, encoded: dict[str, SegmentsResult]) -> dict[str, Any] | None:
    """Per rung: VMAF mean, 5th percentile and minimum and PSNR over every chunk's scored
    frames, and each chunk's mean (from its start, in seconds) where it had frames to
    score; None if no chunk had (a variable-rate source with holes where it sampled)."""
    if not plan.quality_stride:
        return None
    rungs = {}
    for rung in plan.renditions:
        parts = [
            (chunk, quality.Scores.from_dict(encoded[chunk.item].quality[rung.name]))
            for chunk in plan.chunks
        ]
        parts = [(chunk, scores) for chunk, scores in parts if scores.vmaf]
        if not parts:
            log.warning("no frame of %s was scored: the manifest has no quality report", rung.name)
            return None
        rungs[rung.name] = quality.summary([scores for _, scores in parts]) | {
            "chunks": [
                {
                    "start": round(chunk.start - plan.facts.start_time, 3),
                    "vmaf_mean": round(s.mean, 2),
                }
                for chunk, s in parts
            ]
        }
    return {
        "model": quality.MODEL,
        "stride": plan.quality_stride,
        "segment_every": plan.quality_segment_every,
        "rungs": rungs,
    }


def announce_published(
    published: events.Outcome, settings: Settings, output: Bucket, clients: Clients
) -> bool:
    """Announce ``Job Published``; True if put now. The master is written, so the asset is
    whole and playable: a failure here (a throttled or missing bus) is ``EventNotSentError``,
    which the state machine runs Publish again on for minutes, then ends the execution
    naming it, with no failure record (``RecordFailure``)."""
    try:
        return events.announce(published, settings.event_bus, output, clients)
    except (EventNotSentError, botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError) as exc:  # fmt: skip
        raise EventNotSentError(
            f"the asset is published, but its Job Published event was not put: {exc}"
        ) from exc


def _count_published(manifest: dict[str, Any], retried: int, clients: Clients) -> None:
    minutes = manifest["duration"] / 60
    metrics.about(job_id=manifest["job_id"])
    metrics.count(metrics.JOBS_SUCCEEDED)
    metrics.amount(metrics.SOURCE_MINUTES, minutes)
    metrics.amount(metrics.OUTPUT_MINUTES, minutes * len(manifest["renditions"]))
    metrics.count(metrics.ITEMS_RETRIED, retried)
    uploaded = event_time(manifest["source"].get("uploaded_at"))
    if uploaded is not None:
        waited = clients.clock() - uploaded.timestamp()
        metrics.seconds(metrics.UPLOAD_TO_PUBLISHED, max(waited, 0.0))


def _retried(output: Bucket, paths: JobPaths, results: dict[str, Any]) -> list[str]:
    """The work items that failed an attempt (an error record) and then succeeded."""
    return [k for k in output.keys(paths.errors_prefix) if Path(k).stem in results]


def _compute_usd(results: list[SegmentsResult], ladder: dict[str, Any]) -> float:
    """What the encoding items' Lambda time cost, and a per-title ladder's analysis (list
    price; see ``workflow.prices``)."""
    gb_seconds = sum(r.wall_seconds * r.memory_mb / 1024 for r in results)
    gb_seconds += float(ladder.get("analysis_gb_seconds", 0.0))
    requests = len(results) + len(ladder.get("spans", []))
    return gb_seconds * prices.LAMBDA_GB_SECOND.usd + requests * prices.LAMBDA_REQUEST.usd


def _results(output: Bucket, paths: JobPaths, items: list[str]) -> dict[str, dict[str, Any]]:
    """Every work item's result record, read in parallel; none may be missing."""
    require_results(output, paths, items)
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        records = list(pool.map(lambda item: _result(output, paths, item), items))
    return dict(zip(items, records, strict=True))


def _result(output: Bucket, paths: JobPaths, item: str) -> dict[str, Any]:
    try:
        record: dict[str, Any] = output.get_json(paths.result_key(item))
    except botocore.exceptions.ClientError as exc:
        if not output.missing(exc, paths.result_key(item)):
            raise
        raise IncompleteOutputError(
            f"the result of {item} was removed while publishing read it; nothing was published"
        ) from None
    return record


def _playlists(plan: Plan, encoded: dict[str, SegmentsResult]) -> Playlists:
    """Each rung's segments in order, chunk after chunk; the audio's piece after piece."""
    playlists = {
        rung.name: [
            hls.SegmentEntry(**known_fields(hls.SegmentEntry, entry))
            for chunk in plan.chunks
            for entry in encoded[chunk.item].rungs[rung.name]
        ]
        for rung in plan.renditions
    }
    if plan.audio_pieces:
        playlists[AUDIO] = _audio_playlist(plan, encoded)
    return playlists


# Segment durations are written to the microsecond: a piece's may add up to its length
# give or take that much a segment.
_ROUNDING = 1e-5


def _audio_playlist(plan: Plan, encoded: dict[str, SegmentsResult]) -> list[hls.SegmentEntry]:
    """The audio's segments, piece after piece, once the pieces are known to abut: each
    starts where the one before ended, its segments numbered on from the last one's and
    lasting exactly its span."""
    entries: list[hls.SegmentEntry] = []
    end = 0
    for piece in plan.audio_pieces:
        segments = [
            hls.SegmentEntry(**known_fields(hls.SegmentEntry, e))
            for e in encoded[piece.item].rungs[AUDIO]
        ]
        numbers = [segment_number(s.uri) for s in segments]
        expected = list(range(len(entries), len(entries) + len(segments)))
        length = sum(s.duration for s in segments)
        if piece.start_sample != end or numbers != expected:
            raise TranscodeError(
                f"{piece.item} starts at sample {piece.start_sample} with segments {numbers}, "
                f"but the audio before it ends at sample {end} after {len(entries)} segments; "
                "nothing was published"
            )
        if abs(length - (piece.end - piece.start)) > _ROUNDING * len(segments):
            raise TranscodeError(
                f"{piece.item}'s segments last {length:.6f} s, its span "
                f"{piece.end - piece.start:.6f} s; nothing was published"
            )
        entries += segments
        end = piece.end_sample
    return entries


def _same_inits(encoded: dict[str, SegmentsResult]) -> dict[str, int]:
    """Each rung's timescale, once every item is known to share its init segment."""
    first: dict[str, dict[str, Any]] = {}
    for item, result in encoded.items():
        for rung, init in result.inits.items():
            seen = first.setdefault(rung, init)
            if seen["digest"] != init["digest"]:
                raise TranscodeError(
                    f"{item} encoded {rung} with another codec configuration than the first "
                    "chunk, so one init segment cannot serve them; nothing was published"
                )
    return {rung: int(init["timescale"]) for rung, init in first.items()}


def _dash_manifest(
    plan: Plan,
    playlists: Playlists,
    timescales: dict[str, int],
    tracks: list[SubtitleTrack],
    protection: dash.Protection | None,
) -> str:
    """The MPD over the same fMP4 segments as the HLS playlists."""
    start = plan.facts.start_time + encode.TS_OFFSET
    top = plan.renditions[0].name
    audio = playlists.get(AUDIO)
    return dash.mpd(
        duration=plan.facts.duration,
        segment_seconds=plan.segment_seconds,
        video=dash.Track(start, playlists[top], timescales[top]),
        representations=[
            dash.VideoRepresentation(
                id=rung.name,
                bandwidth=hls.peak_bandwidth(playlists[rung.name]),
                width=rung.width,
                height=rung.height,
                codecs=rung.codecs,
            )
            for rung in plan.renditions
        ],
        frame_rate=plan.facts.frame_rate,
        audio=None
        if audio is None
        else dash.Track(
            start, audio, timescales[AUDIO], lead=audio_pieces.FRAME / audio_pieces.SAMPLE_RATE
        ),
        audio_bandwidth=0 if audio is None else hls.peak_bandwidth(audio),
        audio_language=plan.facts.audio_language,
        text=[dash.TextTrack(t.language, t.webvtt_uri) for t in tracks],
        protection=protection,
        captions=plan.facts.captions,
    )
