"""What each Lambda does, one function per state of the VOD state machine.

Each step takes the state's input (a small dict of keys and records), the function's
settings and its AWS clients, and returns a small dict. Big things (frame indexes,
chunk plans, per-chunk results) live in S3 under the job's scratch prefix.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

from workflow import cmaf, commands, dash, hls, subtitles, transcode
from workflow.config import PACKAGINGS, Settings
from workflow.errors import (
    IncompleteOutputError,
    SubtitleError,
    TranscodeError,
    UploadOptionError,
    VidflowError,
)
from workflow.jobs import UPLOAD_PREFIX, JobPaths, job_id
from workflow.ladder import Rendition, build_ladder
from workflow.manifest import build_manifest
from workflow.plan import Chunk, FrameIndex, plan_chunks
from workflow.storage import Bucket, Pin, transient_aws_errors

AUDIO_GROUP = "aac"
SUBTITLE_GROUP = "subs"
# S3 user metadata (x-amz-meta-vidflow-packaging) that picks an upload's packaging.
PACKAGING_METADATA = "vidflow-packaging"
CMAF_INIT = "init.mp4"
IMAGES = "images"
# Work items beside the audio and the video chunks; each leaves a result to publish.
EXTRA_KINDS = ("images", "subtitles")
THUMBNAIL_WIDTH = 320
# Failures that stand for a failed work item; the item's own error is more useful.
_MAP_LEVEL_ERRORS = {
    "IncompleteOutputError",
    "States.ExceedToleratedFailureThreshold",
    "States.ItemReaderFailed",
    "States.Runtime",
}

# A deadline: seconds left before the function is stopped.
Remaining = Callable[[], float]


@dataclass(frozen=True)
class Clients:
    """The AWS clients a step may use; tests and the local engine pass their own."""

    s3: Any
    sfn: Any = None
    dynamodb: Any = None


@transient_aws_errors()
def start_jobs(
    records: list[dict[str, Any]], settings: Settings, clients: Clients
) -> list[dict[str, Any]]:
    """Start one execution per uploaded object; a duplicate event starts nothing.

    ``records`` are S3 event records; keys arrive URL-encoded. Subtitle sidecars
    start nothing: the video uploaded after them does, and its plan picks them up.
    """
    started = []
    for record in records:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        if not key.startswith(UPLOAD_PREFIX) or key.endswith("/") or subtitles.is_sidecar(key):
            continue
        etag = record["s3"]["object"].get("eTag", "")
        job = job_id(bucket, key, etag)
        payload = {
            "job_id": job,
            # Every read of the upload is pinned to this object: its version where the
            # bucket keeps versions, else its ETag (``storage.Pin``).
            "source": {
                "bucket": bucket,
                "key": key,
                "etag": etag,
                "version_id": record["s3"]["object"].get("versionId"),
                "size": int(record["s3"]["object"].get("size", 0)),
            },
        }
        try:
            clients.sfn.start_execution(
                stateMachineArn=settings.state_machine_arn, name=job, input=json.dumps(payload)
            )
            started.append({"job_id": job, "key": key, "started": True})
        except clients.sfn.exceptions.ExecutionAlreadyExists:
            started.append({"job_id": job, "key": key, "started": False})
    return started


def upload_packaging(metadata: dict[str, str], default: str) -> str:
    """The packaging an upload asks for in its ``vidflow-packaging`` metadata, or ``default``."""
    asked = {k.lower(): v for k, v in metadata.items()}.get(PACKAGING_METADATA)
    if asked is None:
        return default
    if asked.strip().lower() not in PACKAGINGS:
        raise UploadOptionError(
            f"the upload's {PACKAGING_METADATA} metadata is {asked[:40]!r}; "
            f"use one of {', '.join(PACKAGINGS)}"
        )
    return asked.strip().lower()


@transient_aws_errors()
def plan_job(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Choose the ladder and the chunks; write the plan and the Map's item list."""
    began = time.monotonic()
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    probed = output.get_json(paths.probe_key)
    facts = probed["facts"]
    renditions = build_ladder(
        facts["display_width"], facts["display_height"], facts["frame_rate"], settings.ladder
    )
    chunks = plan_chunks(
        FrameIndex.from_dict(probed["index"]), settings.chunk_seconds, settings.segment_seconds
    )
    # Every sidecar's key starts with the video's own "<folder>/<stem>.": list only those.
    video_key = event["source"]["key"]
    sidecar_prefix = str(PurePosixPath(video_key).with_suffix("")) + "."
    # Each sidecar's ETag pins its Subtitles item's reads to the file seen here.
    etags = {
        item["Key"]: item["ETag"].strip('"')
        for item in Bucket(clients.s3, event["source"]["bucket"]).objects(sidecar_prefix)
    }
    sidecars = subtitles.find_sidecars(video_key, etags)
    items: list[dict[str, Any]] = [{"kind": "audio"}] if facts["audio"] else []
    if settings.thumbnail_seconds > 0:
        items.append({"kind": "images"})
    items += [
        {"kind": "subtitles", "sidecar": asdict(sidecar), "etag": etags[sidecar.key]}
        for sidecar in sidecars
    ]
    items += [{"kind": "video", "chunk": chunk.to_dict()} for chunk in chunks]
    output.put_json(
        paths.plan_key,
        {
            "facts": facts,
            "renditions": [r.to_dict() for r in renditions],
            "chunks": [c.to_dict() for c in chunks],
            "segment_seconds": settings.segment_seconds,
            "audio_kbps": settings.audio_kbps,
            "preset": settings.x264_preset,
            "packaging": probed.get("packaging", settings.packaging),
            "thumbnail_seconds": settings.thumbnail_seconds,
            "extras": [_item_name({"item": i}) for i in items if i["kind"] in EXTRA_KINDS],
            "timings": {"probe": probed["elapsed"], "plan": round(time.monotonic() - began, 3)},
        },
    )
    output.put_json(paths.items_key, items)
    return {
        "bucket": settings.output_bucket,
        "plan_key": paths.plan_key,
        "items_key": paths.items_key,
        "chunks": len(chunks),
        "items": len(items),
        "renditions": [r.name for r in renditions],
        "max_concurrency": settings.map_max_concurrency,
    }


def _item_name(event: dict[str, Any]) -> str:
    """The name of a work item's result and error records."""
    item = event["item"]
    if item["kind"] == "video":
        return Chunk.from_dict(item["chunk"]).item
    if item["kind"] == "subtitles":
        return f"subtitles-{item['sidecar']['language']}"
    return str(item["kind"])


def _records_item_errors(step: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Leave a failure's name and cause where ``record_failure`` finds it.

    A Map reports a failed item only as its own failure (on AWS) or not at all (in
    the local interpreter), so the item's error would otherwise be lost.
    """

    @functools.wraps(step)
    def recorded(
        event: dict[str, Any], settings: Settings, clients: Clients, *rest: Any
    ) -> dict[str, Any]:
        try:
            return step(event, settings, clients, *rest)
        except VidflowError as exc:
            # Transient ones too: the last attempt's error is the item's if retries run out.
            paths = JobPaths(event["job_id"])
            Bucket(clients.s3, settings.output_bucket).put_json(
                paths.item_error_key(_item_name(event)),
                {"error": exc.name, "cause": f"{_item_name(event)}: {exc}"},
            )
            raise

    return recorded


@_records_item_errors
@transient_aws_errors()
def transcode_chunk(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Remaining
) -> dict[str, Any]:
    """Encode one chunk into every rung and upload its segments."""
    chunk = Chunk.from_dict(event["item"]["chunk"])
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    plan = output.get_json(paths.plan_key)
    renditions = [Rendition.from_dict(r) for r in plan["renditions"]]
    began = time.monotonic()
    with scratch_dir() as workdir:
        for rung in renditions:
            (workdir / rung.name).mkdir()
        with source_input(event["source"], clients) as (url, headers):
            command = commands.build_chunk_command(
                url,
                plan["facts"]["container"],
                plan["facts"]["container_start"],
                chunk,
                renditions,
                workdir,
                binary=transcode.ffmpeg_binary(),
                preset=plan["preset"],
                packaging=plan["packaging"],
                headers=headers,
            )
            limit = transcode.time_limit(remaining(), chunk.duration * len(renditions))
            transcode.run_ffmpeg(command, timeout=limit)
        encoded = time.monotonic()
        rungs = {
            rung.name: transcode.listed_segments(
                workdir / rung.name,
                chunk.start + commands.TS_OFFSET,
                chunk.end + commands.TS_OFFSET,
            )
            for rung in renditions
        }
        check_same_boundaries(rungs)
        inits: dict[str, dict[str, Any]] = {}
        if plan["packaging"] == "cmaf":
            rungs, inits = split_cmaf(rungs)
            if chunk.index == 0:
                _upload_inits(output, paths, rungs)
        uploaded = _upload_segments(output, paths, rungs)
    item = _item_name(event)
    output.put_json(
        paths.result_key(item),
        {
            "item": item,
            "rungs": uploaded,
            "inits": inits,
            "encode_seconds": round(encoded - began, 3),
            "wall_seconds": round(time.monotonic() - began, 3),
            "finished_at": utc_now(),
        },
    )
    return {"item": item, "seconds": round(time.monotonic() - began, 3)}


@_records_item_errors
@transient_aws_errors()
def transcode_audio(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Remaining
) -> dict[str, Any]:
    """Encode the whole audio track once, trimmed to the video's span."""
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    plan = output.get_json(paths.plan_key)
    facts = plan["facts"]
    began = time.monotonic()
    with scratch_dir() as workdir:
        (workdir / "audio").mkdir()
        with source_input(event["source"], clients) as (url, headers):
            command = commands.build_audio_command(
                url,
                facts["container"],
                facts["start_time"],
                facts["duration"],
                workdir,
                kbps=plan["audio_kbps"],
                segment_seconds=plan["segment_seconds"],
                binary=transcode.ffmpeg_binary(),
                packaging=plan["packaging"],
                headers=headers,
            )
            # AAC runs far faster than x264: a quarter of its length in video-seconds.
            limit = transcode.time_limit(remaining(), facts["duration"] / 4)
            transcode.run_ffmpeg(command, timeout=limit)
        start = facts["start_time"] + commands.TS_OFFSET
        segments = transcode.listed_segments(workdir / "audio", start, start + facts["duration"])
        rungs = {"audio": segments}
        inits: dict[str, dict[str, Any]] = {}
        if plan["packaging"] == "cmaf":
            rungs, inits = split_cmaf(rungs)
            _upload_inits(output, paths, rungs)
        uploaded = _upload_segments(output, paths, rungs)
    output.put_json(
        paths.result_key("audio"),
        {
            "item": "audio",
            "rungs": uploaded,
            "inits": inits,
            "wall_seconds": round(time.monotonic() - began, 3),
            "finished_at": utc_now(),
        },
    )
    return {"item": "audio", "seconds": round(time.monotonic() - began, 3)}


@_records_item_errors
@transient_aws_errors()
def make_images(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Remaining
) -> dict[str, Any]:
    """Poster, thumbnails and trick-play sprites, from the source's keyframes."""
    from workflow import images

    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    plan = output.get_json(paths.plan_key)
    facts, top = plan["facts"], Rendition.from_dict(plan["renditions"][0])
    began = time.monotonic()
    with scratch_dir() as workdir:
        with source_input(event["source"], clients) as (url, headers):
            made = images.make_images(
                url,
                facts["container"],
                facts["start_time"],
                facts["duration"],
                workdir,
                interval=plan["thumbnail_seconds"],
                thumb_width=min(THUMBNAIL_WIDTH, top.width - top.width % 2),
                poster_size=(top.width, top.height),
                # Keyframes only: far less than a rung's encode of the same length.
                timeout=transcode.time_limit(remaining(), facts["duration"] / 4),
                binary=transcode.ffmpeg_binary(),
                headers=headers,
            )
        files = [made.poster, made.vtt, *made.thumbnails, *made.sprites]
        for path in files:
            output.upload(path, f"{paths.output_prefix}{IMAGES}/{path.relative_to(workdir)}")
        record = {
            "item": "images",
            "poster": f"{IMAGES}/{made.poster.relative_to(workdir)}",
            "poster_time": made.poster_time,
            "thumbnails": {
                "count": len(made.thumbnails),
                "interval": made.interval,
                "width": made.thumb_width,
                "height": made.thumb_height,
                "first": f"{IMAGES}/{made.thumbnails[0].relative_to(workdir)}",
            },
            "sprites": {
                "count": len(made.sprites),
                "columns": made.columns,
                "rows": made.rows,
                "vtt": f"{IMAGES}/{made.vtt.relative_to(workdir)}",
            },
            "wall_seconds": round(time.monotonic() - began, 3),
            "finished_at": utc_now(),
        }
    output.put_json(paths.result_key("images"), record)
    return {"item": "images", "seconds": record["wall_seconds"]}


@_records_item_errors
@transient_aws_errors()
def make_subtitles(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Remaining
) -> dict[str, Any]:
    """One sidecar subtitle file as WebVTT, timed against the video's first frame."""
    sidecar = subtitles.Sidecar(**event["item"]["sidecar"])
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    plan = output.get_json(paths.plan_key)
    ingest = Bucket(clients.s3, event["source"]["bucket"])
    pin = Pin(None, event["item"]["etag"])
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
            binary=transcode.ffmpeg_binary(),
            timeout=transcode.time_limit(remaining(), 1.0),
        )
    except SubtitleError as exc:
        raise SubtitleError(f"{sidecar.key}: {exc}") from None
    # HLS players place cue time 0 at this 90 kHz video timestamp: the first frame's.
    first_frame = plan["facts"]["start_time"] + commands.TS_OFFSET
    if plan["packaging"] == "hls-ts":
        first_frame += commands.TS_MUXER_DELAY
    mpegts = round(first_frame * 90_000)
    track = subtitles.SubtitleTrack(sidecar.language)
    output.put_bytes(
        f"{paths.output_prefix}{track.webvtt_uri}",
        subtitles.with_timestamp_map(vtt, mpegts).encode(),
    )
    item = _item_name(event)
    output.put_json(
        paths.result_key(item),
        {"item": item, "language": sidecar.language, "source_key": sidecar.key,
         "finished_at": utc_now()},
    )  # fmt: skip
    return {"item": item}


@transient_aws_errors()
def publish(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Check that every item succeeded, then write playlists, manifest and master last."""
    began = time.monotonic()
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    plan = output.get_json(paths.plan_key)
    facts = plan["facts"]
    chunks = [Chunk.from_dict(c) for c in plan["chunks"]]
    expected = [c.item for c in chunks] + (["audio"] if facts["audio"] else []) + plan["extras"]
    present = {Path(k).stem for k in output.keys(paths.results_prefix)}
    missing = [item for item in expected if item not in present]
    if missing:
        raise IncompleteOutputError(
            f"{len(missing)} of {len(expected)} work items have no result "
            f"(first: {missing[0]}); nothing was published"
        )
    results = {item: output.get_json(paths.result_key(item)) for item in expected}
    renditions = [Rendition.from_dict(r) for r in plan["renditions"]]
    playlists: dict[str, list[hls.SegmentEntry]] = {}
    for rung in renditions:
        playlists[rung.name] = [
            hls.SegmentEntry(**entry)
            for chunk in chunks
            for entry in results[chunk.item]["rungs"][rung.name]
        ]
    audio = None
    if facts["audio"]:
        playlists["audio"] = [hls.SegmentEntry(**e) for e in results["audio"]["rungs"]["audio"]]
        audio = hls.AudioEntry(uri="audio/index.m3u8", group=AUDIO_GROUP, channels=2)
    cmaf_packaged = plan["packaging"] == "cmaf"
    timescales = _same_inits(results, expected) if cmaf_packaged else {}
    init = CMAF_INIT if cmaf_packaged else None
    for name, segments in playlists.items():
        output.put_bytes(
            f"{paths.output_prefix}{name}/index.m3u8",
            hls.media_playlist(segments, init=init).encode(),
        )
    tracks = [
        subtitles.SubtitleTrack(results[item]["language"])
        for item in plan["extras"]
        if item.startswith("subtitles-")
    ]
    for track in tracks:
        output.put_bytes(
            f"{paths.output_prefix}{track.playlist_uri}",
            subtitles.subtitle_playlist(
                track.webvtt_uri.rpartition("/")[2], facts["duration"]
            ).encode(),
        )
    variants = hls.measured_variants(renditions, playlists, facts["frame_rate"])
    if cmaf_packaged:
        output.put_bytes(
            paths.dash_key,
            _dash_manifest(plan, renditions, playlists, timescales, tracks).encode(),
        )
    video_results = [results[c.item] for c in chunks]
    timings = {
        **plan["timings"],
        "chunk_encode_seconds_total": round(sum(r["encode_seconds"] for r in video_results), 3),
        "chunk_wall_seconds_max": max(r["wall_seconds"] for r in video_results),
        "audio": results["audio"]["wall_seconds"] if audio else None,
        "publish": round(time.monotonic() - began, 3),
    }
    manifest = build_manifest(
        job_id=paths.job_id,
        source={**event["source"], **facts},
        plan=plan,
        renditions=list(zip(renditions, variants, strict=True)),
        playlists=playlists,
        audio=audio,
        timings=timings,
        packaging=plan["packaging"],
        images=results.get("images"),
        subtitles=tracks,
    )
    output.put_json(paths.manifest_key, manifest)
    master = hls.master_playlist(
        variants,
        audio,
        version=7 if cmaf_packaged else 4,
        subtitles=subtitles.subtitle_media_lines(tracks, SUBTITLE_GROUP),
        subtitle_group=SUBTITLE_GROUP,
    )
    output.put_bytes(paths.master_key, master.encode())
    return {"master_key": paths.master_key, "manifest_key": paths.manifest_key}


def _same_inits(results: dict[str, Any], items: list[str]) -> dict[str, int]:
    """Each rung's timescale, once every item is known to share its init segment."""
    first: dict[str, dict[str, Any]] = {}
    for item in items:
        for rung, init in results[item].get("inits", {}).items():
            seen = first.setdefault(rung, init)
            if seen["digest"] != init["digest"]:
                raise TranscodeError(
                    f"{item} encoded {rung} with another codec configuration than the first "
                    "chunk, so one init segment cannot serve them; nothing was published"
                )
    return {rung: int(init["timescale"]) for rung, init in first.items()}


def _dash_manifest(
    plan: dict[str, Any],
    renditions: list[Rendition],
    playlists: dict[str, list[hls.SegmentEntry]],
    timescales: dict[str, int],
    tracks: list[subtitles.SubtitleTrack],
) -> str:
    """The MPD over the same fMP4 segments as the HLS playlists."""
    facts = plan["facts"]
    start = facts["start_time"] + commands.TS_OFFSET
    top = renditions[0].name
    audio = playlists.get("audio")
    return dash.mpd(
        duration=facts["duration"],
        segment_seconds=plan["segment_seconds"],
        video=dash.Track(start, playlists[top], timescales[top]),
        representations=[
            dash.VideoRepresentation(
                id=rung.name,
                bandwidth=hls.peak_bandwidth(playlists[rung.name]),
                width=rung.width,
                height=rung.height,
                codecs=rung.codecs,
            )
            for rung in renditions
        ],
        frame_rate=facts["frame_rate"],
        audio=None if audio is None else dash.Track(start, audio, timescales["audio"]),
        audio_bandwidth=0 if audio is None else hls.peak_bandwidth(audio),
        text=[dash.TextTrack(t.language, t.webvtt_uri) for t in tracks],
    )


@transient_aws_errors()
def record_failure(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Write ``failures/<job>.json`` and remove any partial output of the job."""
    paths = JobPaths(event["job_id"])
    output = Bucket(clients.s3, settings.output_bucket)
    name, cause = describe_error(event.get("error") or {})
    if name in _MAP_LEVEL_ERRORS:
        # An item that failed and then succeeded on a retry has a result: skip it.
        succeeded = {Path(k).stem for k in output.keys(paths.results_prefix)}
        item_errors = [
            k for k in sorted(output.keys(paths.errors_prefix)) if Path(k).stem not in succeeded
        ]
        if item_errors:
            first = output.get_json(item_errors[0])
            name, cause = first["error"], first["cause"]
    output.put_json(
        paths.failure_key,
        {
            "job_id": paths.job_id,
            "error": name,
            "cause": cause,
            "input": event.get("source"),
            "failed_at": utc_now(),
        },
    )
    if not output.exists(paths.master_key):
        output.delete_prefix(paths.output_prefix)
    output.delete_prefix(paths.scratch_prefix)
    return {"error": name, "cause": cause, "failure_key": paths.failure_key}


def describe_error(error: dict[str, Any]) -> tuple[str, str]:
    """The error name and one-line cause from a ``Catch`` result (``Error``, ``Cause``)."""
    name = str(error.get("Error") or "States.Unknown")
    cause = str(error.get("Cause") or "")
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        cause = str(parsed.get("errorMessage") or parsed.get("Cause") or cause)
    line = " ".join(cause.split())
    return name, line[:500] or name


@contextmanager
def source_input(source: dict[str, Any], clients: Clients) -> Iterator[tuple[str, str | None]]:
    """Where ffmpeg reads the job's upload, and the headers that pin each read to it.

    The pin is checked again once the reading is over, failed or not: an upload replaced
    mid-read (ffmpeg may see a pinned read refused as an error or as an early end) ends
    in ``SourceChangedError``, never in an output mixing two uploads.
    """
    pin = Pin.of(source)
    ingest = Bucket(clients.s3, source["bucket"])
    try:
        yield ingest.presign(source["key"], pin=pin), pin.http_headers()
    except VidflowError:
        ingest.head(source["key"], pin)
        raise
    ingest.head(source["key"], pin)


def _upload_segments(
    output: Bucket, paths: JobPaths, rungs: dict[str, list[transcode.Segment]]
) -> dict[str, list[dict[str, Any]]]:
    jobs = [
        (rung, segment, f"{paths.output_prefix}{rung}/{segment.path.name}")
        for rung, segments in rungs.items()
        for segment in segments
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda job: output.upload(job[1].path, job[2]), jobs))
    return {
        rung: [
            {"uri": s.path.name, "duration": s.duration, "bytes": s.path.stat().st_size}
            for s in segments
        ]
        for rung, segments in rungs.items()
    }


def split_cmaf(
    rungs: dict[str, list[transcode.Segment]],
) -> tuple[dict[str, list[transcode.Segment]], dict[str, dict[str, Any]]]:
    """Split each rung's whole-MP4 segments into one ``init.mp4`` and ``.m4s`` fragments.

    Returns the fragments, and per rung its init's ``stsd`` digest and timescale; the
    init is written beside the fragments. Every segment of a rung must share the first
    one's sample description.
    """
    fragments: dict[str, list[transcode.Segment]] = {}
    inits: dict[str, dict[str, Any]] = {}
    for rung, segments in rungs.items():
        fragments[rung] = []
        for segment in segments:
            split = cmaf.split_segment(segment.path.read_bytes())
            digest = cmaf.sample_description_digest(split.init)
            if rung not in inits:
                segment.path.with_name(CMAF_INIT).write_bytes(split.init)
                inits[rung] = {
                    "digest": digest,
                    "timescale": cmaf.timescale(split.init),
                }
            elif digest != inits[rung]["digest"]:
                raise TranscodeError(
                    f"{rung}'s segments disagree on their codec configuration ({segment.path.name})"
                )
            media = segment.path.with_suffix(".m4s")
            media.write_bytes(split.media)
            segment.path.unlink()
            fragments[rung].append(transcode.Segment(media, segment.duration))
    return fragments, inits


def _upload_inits(
    output: Bucket, paths: JobPaths, rungs: dict[str, list[transcode.Segment]]
) -> None:
    for rung, segments in rungs.items():
        init = segments[0].path.with_name(CMAF_INIT)
        output.upload(init, f"{paths.output_prefix}{rung}/{CMAF_INIT}")


def check_same_boundaries(rungs: dict[str, list[transcode.Segment]]) -> None:
    """Every rung must cut at the same instants, or players cannot switch between them."""
    shapes = {name: [round(s.duration, 3) for s in segments] for name, segments in rungs.items()}
    first = next(iter(shapes.values()))
    for name, shape in shapes.items():
        if shape != first:
            raise TranscodeError(f"rung {name} has segments {shape}, another has {first}")


class scratch_dir:
    """A fresh temporary directory per call: handlers share one process locally."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="vidflow-"))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def time_left(context: Any) -> Remaining:
    """Seconds left in this invocation, from a Lambda context."""
    return lambda: context.get_remaining_time_in_millis() / 1000
