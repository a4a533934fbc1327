"""What each live Lambda does: one segment's way from the ingest bucket to the playlists.

A venue encoder uploads ``live/<stream>/<sequence>.ts`` (or ``.m4s`` after an
``init.mp4``); each upload starts one Express execution: probe the segment, encode it
into every rung and the audio in one job, then publish. Publishing records the
segment's arrival in the state table and advances the stream's playlists under a lease
(``workflow.livestore``), following the rules of ``workflow.live``. ``END`` closes the
stream into a VOD asset of the same shape as the VOD pipeline's; a scheduled sweep
advances streams that nothing else wakes, so a lost segment turns into a gap in time.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from workflow import commands, hls, live, transcode
from workflow.config import Settings
from workflow.errors import (
    ConfigurationError,
    MissingInitSegmentError,
    StreamConfigError,
    StreamNotReadyError,
    UnsupportedSegmentError,
)
from workflow.ladder import Rendition, build_ladder, parse_ladder
from workflow.livestore import StreamTable
from workflow.manifest import build_manifest
from workflow.plan import Chunk
from workflow.steps import (
    AUDIO_GROUP,
    Clients,
    Remaining,
    check_same_boundaries,
    describe_error,
    scratch_dir,
    utc_now,
)
from workflow.storage import Bucket, transient_aws_errors

LIVE_PREFIX = "live/"
END_MARKER = "END"
STREAM_CONFIG = "stream.json"
INIT_SEGMENT = "init.mp4"
# Short enough that an execution name (stream, sequence, ETag) fits in 80 characters.
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,48}")
_SEGMENT = re.compile(r"(\d{1,9})\.(ts|m4s)")
# A writer's lease on a stream's playlists: far longer than writing a few playlists.
LEASE_SECONDS = 60.0
# Enough of a file's start to sniff its container.
HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class StreamPaths:
    """Keys of one live stream in the output bucket."""

    stream: str

    @property
    def prefix(self) -> str:
        return f"{LIVE_PREFIX}{self.stream}/"

    def segment_key(self, rung: str, sequence: int) -> str:
        return f"{self.prefix}{rung}/{live.segment_name(sequence)}"

    def live_playlist_key(self, rung: str) -> str:
        return f"{self.prefix}{rung}/live.m3u8"

    @property
    def live_master_key(self) -> str:
        return f"{self.prefix}live.m3u8"

    @property
    def master_key(self) -> str:
        return f"{self.prefix}master.m3u8"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}manifest.json"

    def failure_key(self, sequence: int) -> str:
        return f"failures/{self.prefix}{sequence:09d}.json"


def segment_sequence(name: str) -> int | None:
    """The sequence number a segment's file name carries (``42.ts``), or None."""
    found = _SEGMENT.fullmatch(name)
    return int(found.group(1)) if found else None


def parse_live_key(key: str) -> tuple[str, str] | None:
    """``(stream, name)`` for ``live/<stream>/<name>``, or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != LIVE_PREFIX or not _STREAM_ID.fullmatch(parts[1]):
        return None
    return parts[1], parts[2]


def execution_name(stream: str, sequence: int, etag: str) -> str:
    """One name per segment version: the console finds a segment's execution by it."""
    return f"{stream}-{sequence:09d}-{etag.strip(chr(34))[:8] or 'none'}"


@transient_aws_errors()
def on_ingest(
    records: list[dict[str, Any]], settings: Settings, clients: Clients
) -> list[dict[str, Any]]:
    """Start one execution per uploaded segment; close a stream on its ``END`` marker."""
    seen: list[dict[str, Any]] = []
    for record in records:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        parsed = parse_live_key(key)
        if parsed is None:
            seen.append({"key": key, "skipped": "not live/<stream>/<name>"})
            continue
        stream, name = parsed
        segment = _SEGMENT.fullmatch(name)
        if name == END_MARKER:
            seen.append({"key": key, **end_stream(stream, bucket, settings, clients)})
        elif segment is None:
            seen.append({"key": key, "skipped": "not a segment or END"})
        else:
            sequence = int(segment.group(1))
            etag = record["s3"]["object"].get("eTag", "")
            payload = {
                "stream": stream,
                "sequence": sequence,
                "source": {"bucket": bucket, "key": key, "etag": etag},
            }
            # Express runs a name twice if asked (no idempotency); publishing is what
            # makes a duplicate harmless. A local stack may refuse the name instead.
            try:
                clients.sfn.start_execution(
                    stateMachineArn=settings.live_state_machine_arn,
                    name=execution_name(stream, sequence, etag),
                    input=json.dumps(payload),
                )
                started = True
            except clients.sfn.exceptions.ExecutionAlreadyExists:
                started = False
            seen.append({"key": key, "stream": stream, "sequence": sequence, "started": started})
    return seen


def end_stream(stream: str, bucket: str, settings: Settings, clients: Clients) -> dict[str, Any]:
    """Record the end marker; the playlists close once they pass its last sequence.

    The marker's body may name the last sequence (``{"last_sequence": N}``); else it
    is the highest one uploaded before the marker, which an encoder writes last.
    """
    ingest = Bucket(clients.s3, bucket)
    prefix = f"{LIVE_PREFIX}{stream}/"
    body = ingest.get_bytes(f"{prefix}{END_MARKER}")
    last = None
    try:
        declared = json.loads(body) if body.strip() else {}
        last = int(declared["last_sequence"]) if "last_sequence" in declared else None
    except (ValueError, TypeError, KeyError, AttributeError):
        last = None
    if last is None:
        sequences = [
            int(m.group(1))
            for k in ingest.keys(prefix)
            if (m := _SEGMENT.fullmatch(k[len(prefix) :]))
        ]
        last = max(sequences, default=-1)
    table = StreamTable(clients.dynamodb, settings.live_table)
    table.create(stream)
    table.mark_ended(stream, {"last_sequence": last, "at": time.time()})
    table.bump(stream)
    return {
        "stream": stream,
        "ended": True,
        "last_sequence": last,
        **drive(stream, settings, clients),
    }


def stream_config(
    declared: dict[str, Any],
    width: int,
    height: int,
    frame_rate: float,
    has_audio: bool,
    settings: Settings,
) -> dict[str, Any]:
    """A stream's settings: ``stream.json`` over the functions' defaults, and its ladder.

    ``stream.json`` may set ``ladder`` ("720:2800,360:800"), ``segment_seconds`` (the
    target duration), ``window`` (segments in a sliding playlist; 0 keeps all, an
    EVENT playlist), ``gap_seconds`` and ``first_sequence``.
    """
    known = {"ladder", "segment_seconds", "window", "gap_seconds", "first_sequence"}
    unknown = sorted(set(declared) - known)
    if unknown:
        raise StreamConfigError(f"stream.json has unknown settings: {', '.join(unknown)}")
    try:
        ladder = str(declared.get("ladder", settings.ladder))
        parse_ladder(ladder)
    except ConfigurationError as exc:
        raise StreamConfigError(f"stream.json: {exc}") from None
    try:
        segment_seconds = float(declared.get("segment_seconds", settings.segment_seconds))
        window = int(declared.get("window", settings.live_window))
        gap_seconds = float(
            declared.get("gap_seconds", settings.live_gap_seconds or 3 * segment_seconds)
        )
        first = declared.get("first_sequence")
        first_sequence = None if first is None else int(first)
    except (TypeError, ValueError) as exc:
        raise StreamConfigError(f"stream.json: {exc}") from None
    if not 0.5 <= segment_seconds <= 60 or window < 0 or gap_seconds <= 0:
        raise StreamConfigError(
            "stream.json: segment_seconds must be 0.5 to 60, window 0 or more and "
            "gap_seconds positive"
        )
    renditions = build_ladder(width, height, frame_rate, ladder)
    return {
        "renditions": [r.to_dict() for r in renditions],
        "segment_seconds": segment_seconds,
        "window": window,
        "gap_seconds": gap_seconds,
        "first_sequence": first_sequence,
        "frame_rate": frame_rate,
        "has_audio": has_audio,
        "audio_kbps": settings.audio_kbps,
        "preset": settings.x264_preset,
    }


def declared_config(bucket: str, stream: str, clients: Clients) -> dict[str, Any]:
    ingest = Bucket(clients.s3, bucket)
    key = f"{LIVE_PREFIX}{stream}/{STREAM_CONFIG}"
    if not ingest.exists(key):
        return {}
    try:
        declared = json.loads(ingest.get_bytes(key))
    except ValueError as exc:
        raise StreamConfigError(f"stream.json is not JSON: {exc}") from None
    if not isinstance(declared, dict):
        raise StreamConfigError("stream.json must be a JSON object")
    return declared


@transient_aws_errors()
def transcode_segment(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Remaining
) -> dict[str, Any]:
    """Encode one segment into every rung, and its audio, on the stream's own timeline.

    Timestamps pass through from the encoder (``-copyts``), so consecutive segments
    join without a gap; each rung's segment starts with a keyframe.
    """
    stream, sequence = event["stream"], int(event["sequence"])
    paths = StreamPaths(stream)
    record = StreamTable(clients.dynamodb, settings.live_table).get(stream)
    if record is None or record.config is None:
        raise StreamNotReadyError(f"stream {stream} has no settings; its probe did not run")
    config = record.config
    renditions = [Rendition.from_dict(r) for r in config["renditions"]]
    segment = event["segment"]
    start, end = float(segment["start"]), float(segment["end"])
    chunk = Chunk(sequence, start, end, int(segment["frames"]), sequence, [start])
    binary = transcode.ffmpeg_binary()
    with scratch_dir() as workdir:
        source, _, _ = segment_input(event["source"], clients, workdir)
        for rung in renditions:
            (workdir / rung.name).mkdir()
        jobs = [
            commands.build_chunk_command(
                source,
                segment["container"],
                segment["container_start"],
                chunk,
                renditions,
                workdir,
                binary=binary,
                preset=config["preset"],
            )
        ]
        names = [r.name for r in renditions]
        if config["has_audio"]:
            if not segment["has_audio"]:
                raise UnsupportedSegmentError(
                    f"segment {sequence} has no audio, but the stream's first segment had"
                )
            (workdir / "audio").mkdir()
            names.append("audio")
            jobs.append(
                commands.build_audio_command(
                    source,
                    segment["container"],
                    start,
                    end - start,
                    workdir,
                    kbps=config["audio_kbps"],
                    segment_seconds=end - start + 3600,
                    binary=binary,
                    first_segment=sequence,
                    drop_priming=True,
                )
            )
        limit = transcode.time_limit(remaining(), (end - start) * len(renditions))
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            list(pool.map(lambda job: transcode.run_ffmpeg(job, timeout=limit), jobs))
        rungs = {
            name: transcode.listed_segments(
                workdir / name, start + commands.TS_OFFSET, end + commands.TS_OFFSET
            )
            for name in names
        }
        check_same_boundaries({n: s for n, s in rungs.items() if n != "audio"})
        output = Bucket(clients.s3, settings.output_bucket)
        files = {name: segments[0].path for name, segments in rungs.items()}
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda item: output.upload(item[1], paths.segment_key(item[0], sequence)),
                    files.items(),
                )
            )
        sizes = {name: path.stat().st_size for name, path in files.items()}
    return {
        "stream": stream,
        "sequence": sequence,
        "duration": round(end - start, 6),
        "bytes": sizes,
    }


def segment_input(
    source: dict[str, Any], clients: Clients, workdir: Path
) -> tuple[str, bytes, int]:
    """Where ffmpeg reads a segment, its first bytes and its size.

    MPEG-TS is read from a presigned URL; an fMP4 segment is joined behind its
    stream's ``init.mp4`` in a local file, since neither half plays alone.
    """
    ingest = Bucket(clients.s3, source["bucket"])
    key = source["key"]
    if key.endswith(".m4s"):
        init_key = f"{key.rsplit('/', 1)[0]}/{INIT_SEGMENT}"
        if not ingest.exists(init_key):
            raise MissingInitSegmentError(f"{key} needs {init_key}, which is not uploaded")
        data = ingest.get_bytes(init_key) + ingest.get_bytes(key)
        path = workdir / "segment.mp4"
        path.write_bytes(data)
        return str(path), data[:HEAD_BYTES], len(data)
    size = int(ingest.head(key)["ContentLength"])
    return ingest.presign(key), ingest.read_range(key, size, HEAD_BYTES), size


@transient_aws_errors()
def publish_segment(event: dict[str, Any], settings: Settings, clients: Clients) -> dict[str, Any]:
    """Record a segment's arrival (or its failure) once, then advance the playlists.

    A failed segment becomes a gap at once; its error is kept in
    ``failures/live/<stream>/<sequence>.json``, the segment itself stays in ingest.
    """
    stream, sequence = event["stream"], int(event["sequence"])
    table = StreamTable(clients.dynamodb, settings.live_table)
    error = event.get("error")
    if error is not None:
        name, cause = describe_error(error)
        Bucket(clients.s3, settings.output_bucket).put_json(
            StreamPaths(stream).failure_key(sequence),
            {
                "stream": stream,
                "sequence": sequence,
                "error": name,
                "cause": cause,
                "input": event.get("source"),
                "failed_at": utc_now(),
            },
        )
        table.create(stream)
        arrival = {"duration": None, "at": time.time(), "failed": True, "error": name}
    else:
        result = event["result"]
        arrival = {
            "duration": result["duration"],
            "at": time.time(),
            "failed": False,
            "bytes": result["bytes"],
        }
    new = table.record_arrival(stream, sequence, arrival)
    table.bump(stream)
    outcome = drive(stream, settings, clients)
    if error is not None:
        return {
            "stream": stream,
            "sequence": sequence,
            "error": name,
            "cause": f"segment {sequence}: {cause}",
            **outcome,
        }
    return {"stream": stream, "sequence": sequence, "duplicate": not new, **outcome}


@transient_aws_errors()
def sweep(settings: Settings, clients: Clients) -> dict[str, Any]:
    """Advance every open stream: gaps past their timeout, ends past their marker."""
    table = StreamTable(clients.dynamodb, settings.live_table)
    streams = table.open_streams()
    return {"streams": {stream: drive(stream, settings, clients) for stream in streams}}


def drive(stream: str, settings: Settings, clients: Clients) -> dict[str, Any]:
    """Advance the stream's playlists if no other writer is doing it right now.

    Holding the lease, look at the arrivals, write the playlists, store the state;
    look again while arrivals keep coming. Whoever is refused the lease can leave:
    the holder sees the refused writer's arrival before it lets go. A writer that
    fails (S3 or DynamoDB trouble) gives the lease up at once, and its retry looks again.
    """
    table = StreamTable(clients.dynamodb, settings.live_table)
    owner = uuid.uuid4().hex
    while True:
        now = time.time()
        if not table.acquire(stream, owner, now, LEASE_SECONDS):
            return {"writer": False}
        try:
            outcome = _advance_once(stream, table, settings, clients, owner, now)
        except BaseException:
            table.release(stream, owner)
            raise
        if outcome is not None:
            return outcome


def _advance_once(
    stream: str,
    table: StreamTable,
    settings: Settings,
    clients: Clients,
    owner: str,
    now: float,
) -> dict[str, Any] | None:
    """One look at the stream, holding its lease; None if the writer must look again."""
    record = table.require(stream)
    config = record.config
    ending = live.Ending(**record.ending) if record.ending else None
    if config is None:
        # No segment of the stream has been probed yet: nothing to show yet.
        state = record.state
        if ending is not None and _unplayable(table, stream, ending):
            state = live.LivePlaylist(first_sequence=0, ended=True).to_dict()
        if table.save(stream, owner, state, record.pending) == "again":
            return None
        return {"writer": True, "ended": bool(state and state["ended"])}
    before = (
        live.LivePlaylist.from_dict(record.state)
        if record.state
        else live.LivePlaylist(first_sequence=config["first_sequence"])
    )
    arrivals = {
        sequence: live.Arrival(a["duration"] or config["segment_seconds"], a["at"], a["failed"])
        for sequence, a in table.arrivals(stream, before.next_sequence or 0).items()
    }
    after = live.advance(
        before,
        arrivals,
        now=now,
        gap_after=config["gap_seconds"],
        window=config["window"],
        nominal_duration=config["segment_seconds"],
        ending=ending,
    )
    if after != before:
        output = Bucket(clients.s3, settings.output_bucket)
        _write_live_playlists(output, StreamPaths(stream), config, after, master=not before.entries)
        if after.ended:
            publish_recording(stream, table, output, config, after)
    if table.save(stream, owner, after.to_dict(), record.pending) == "again":
        return None
    return {"writer": True, "next_sequence": after.next_sequence, "ended": after.ended}


def _unplayable(table: StreamTable, stream: str, ending: live.Ending) -> bool:
    """Whether an ended stream without settings can be closed empty: nothing was
    uploaded, or every segment up to the last failed. A segment still on its way
    will either set the stream up or fail, so the stream waits for it."""
    arrivals = table.arrivals(stream)
    if ending.last_sequence < 0:
        return True
    first = min(arrivals, default=0)
    return all(
        s in arrivals and arrivals[s]["failed"] for s in range(first, ending.last_sequence + 1)
    )


def _nominal_variants(
    config: dict[str, Any], renditions: list[Rendition]
) -> list[hls.VariantEntry]:
    """The live master's lines: nothing is measured yet, so each rung's target rates."""
    audio = config["audio_kbps"] if config["has_audio"] else 0
    return [
        hls.VariantEntry(
            uri=f"{rung.name}/live.m3u8",
            bandwidth=(rung.maxrate_kbps + audio) * 1000,
            average_bandwidth=(rung.kbps + audio) * 1000,
            width=rung.width,
            height=rung.height,
            frame_rate=config["frame_rate"],
            codecs=rung.codecs + (",mp4a.40.2" if config["has_audio"] else ""),
        )
        for rung in renditions
    ]


def _audio_entry(config: dict[str, Any], playlist_name: str) -> hls.AudioEntry | None:
    if not config["has_audio"]:
        return None
    return hls.AudioEntry(uri=f"audio/{playlist_name}", group=AUDIO_GROUP, channels=2)


def _rung_names(config: dict[str, Any]) -> list[str]:
    return [r["name"] for r in config["renditions"]] + (["audio"] if config["has_audio"] else [])


def _write_live_playlists(
    output: Bucket,
    paths: StreamPaths,
    config: dict[str, Any],
    playlist: live.LivePlaylist,
    *,
    master: bool,
) -> None:
    """Every rung's live playlist (one text: every rung has the same segments), then the
    live master the first time there is anything to play."""
    text = live.render(
        playlist, target_duration=config["segment_seconds"], window=config["window"]
    ).encode()
    names = _rung_names(config)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda name: output.put_bytes(paths.live_playlist_key(name), text), names))
    if master:
        renditions = [Rendition.from_dict(r) for r in config["renditions"]]
        body = hls.master_playlist(
            _nominal_variants(config, renditions), _audio_entry(config, "live.m3u8")
        )
        output.put_bytes(paths.live_master_key, body.encode())


def publish_recording(
    stream: str,
    table: StreamTable,
    output: Bucket,
    config: dict[str, Any],
    ended: live.LivePlaylist,
) -> None:
    """The whole stream as a VOD asset of the VOD pipeline's shape, master written last.

    Every sequence from the first to the last is in it: a segment that came after its
    gap was shown live is in the recording; one that never came stays a gap.
    """
    paths = StreamPaths(stream)
    first = ended.first_sequence or 0
    last = ended.entries[-1].sequence if ended.entries else first - 1
    arrivals = table.arrivals(stream, first)
    entries = []
    for sequence in range(first, last + 1):
        arrival = arrivals.get(sequence)
        if arrival is None or arrival["failed"]:
            entries.append(live.Entry(sequence, config["segment_seconds"], gap=True))
        else:
            entries.append(live.Entry(sequence, float(arrival["duration"])))
    recording = live.LivePlaylist(first, tuple(entries), ended=True)
    text = live.render(recording, target_duration=config["segment_seconds"], window=0, vod=True)
    renditions = [Rendition.from_dict(r) for r in config["renditions"]]
    playlists = {
        name: [
            hls.SegmentEntry(e.uri, e.duration, arrivals[e.sequence]["bytes"][name])
            for e in entries
            if not e.gap
        ]
        for name in _rung_names(config)
    }
    for name in playlists:
        output.put_bytes(f"{paths.prefix}{name}/index.m3u8", text.encode())
    variants = hls.measured_variants(renditions, playlists, config["frame_rate"])
    audio = _audio_entry(config, "index.m3u8")
    duration = round(sum(e.duration for e in entries), 6)
    manifest = build_manifest(
        job_id=f"live-{stream}",
        source={
            "stream": stream,
            "first_sequence": first,
            "last_sequence": last,
            "gaps": sum(e.gap for e in entries),
            "duration": duration,
            "frame_rate": config["frame_rate"],
        },
        plan={
            "segment_seconds": config["segment_seconds"],
            "chunks": entries,
            "audio_kbps": config["audio_kbps"],
        },
        renditions=list(zip(renditions, variants, strict=True)),
        playlists=playlists,
        audio=audio,
        timings={},
    )
    output.put_json(paths.manifest_key, manifest)
    output.put_bytes(paths.master_key, hls.master_playlist(variants, audio).encode())
