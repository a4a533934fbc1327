"""Clips: a span of a live stream, live or ended, published as a VOD asset.

An app asks for a clip by writing ``clips/<stream>/<name>.json`` to the ingest bucket
(``{"from": 61.5, "to": 68.8}``; ``vidflow clip`` does it); LiveIngest starts one
Standard execution per request version, and this step publishes
``clips/<stream>/<name>/`` in the output bucket: every rung, the audio, images,
``manifest.json`` and ``master.m3u8``, the layout of an upload's asset, but that each
version of the request has segment files, media playlists, images and a manifest of its
own (``manifest.json`` is its copy, made once its master is written).

Times are stream time: the live playlist's own timeline, 0 at the stream's first
segment, each segment (and gap) lasting its ``EXTINF``. In an EVENT playlist (the
default) that is what a player's ``currentTime`` shows. A clip is frame-accurate at both
ends: the segments it cuts into are re-encoded from the stream's own published rungs,
keeping their timestamps; every segment between is the stream's, copied inside S3.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import botocore.exceptions

from workflow import events
from workflow.errors import (
    ClipRangeError,
    ClipRequestError,
    ClipSupersededError,
    EventError,
    EventNotSentError,
    InputTooLargeError,
    SourceChangedError,
)
from workflow.failures import FailureRecord
from workflow.formats import hls
from workflow.formats.manifest import build_manifest
from workflow.live import rules
from workflow.live.config import StreamSettings, is_json_number
from workflow.live.paths import MAX_RECORD_BYTES, ClipPaths, StreamPaths
from workflow.live.publish import live_timeline
from workflow.live.store import StreamTable
from workflow.media import encode, images, runner
from workflow.media.ladder import Rendition
from workflow.names import AUDIO, segment_name
from workflow.runtime import Clients, Deadline, scratch_dir
from workflow.settings import Settings
from workflow.storage import Bucket, Pin, transient_aws_errors

# A highlight, not a recording: the stream's own recording is the whole of it.
MAX_CLIP_SECONDS = 600.0
# A cut this close (s) to a segment's edge takes the whole segment: timestamps round.
EDGE = 0.001
THUMBNAIL_SECONDS = 2.0
# The most of the clip's top rung joined in /tmp for its images, its segments beside the
# joined file until it is made: ClipFunction's ``EphemeralStorage`` (2,048 MB) less room
# for the cut segments and the images, halved (600 s, the longest clip, at 10 Mb/s).
MAX_JOINED_BYTES = 768 * 1024 * 1024
# The master's S3 metadata naming the request version that wrote it: an earlier version
# of the same clip name may have left a master of its own.
REQUEST_METADATA = "vidflow-request"
# A clip request's fields: one it does not know (a typo, an option clips lack) is refused,
# as stream.json's are, never read as the span it may not be.
REQUEST_FIELDS = frozenset({"from", "to"})


@dataclass(frozen=True)
class ClipRequest:
    """The span a clip asks for, in seconds of stream time."""

    start: float
    end: float

    @classmethod
    def parse(cls, body: bytes) -> ClipRequest:
        try:
            declared = json.loads(body, object_pairs_hook=_fields)
            start, end = _seconds(declared["from"]), _seconds(declared["to"])
            unknown = sorted(set(declared) - REQUEST_FIELDS)
            if unknown:
                raise ValueError(f"unknown fields: {', '.join(map(repr, unknown))}")
        # OverflowError: a number past a float's range; RecursionError: JSON nested deeper
        # than Python goes.
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
            raise ClipRequestError(
                f'a clip request is {{"from": seconds, "to": seconds}}: {exc}'
            ) from None
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
            raise ClipRequestError(
                f"a clip runs from 0 or later to after its start: {start}, {end}"
            )
        if end - start > MAX_CLIP_SECONDS:
            raise ClipRequestError(
                f"a clip is at most {MAX_CLIP_SECONDS:.0f} s; this one is {end - start:.3f} s "
                "(the stream's recording is the whole of it)"
            )
        return cls(start, end)


def _fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's fields; one named twice is an error (``json`` keeps the last)."""
    fields = dict(pairs)
    if len(fields) < len(pairs):
        named = [name for name, _ in pairs]
        twice = sorted({name for name in named if named.count(name) > 1})
        raise ValueError(f"fields named twice: {', '.join(map(repr, twice))}")
    return fields


def _seconds(value: Any) -> float:
    """A JSON number as seconds; a string or boolean (which ``float`` takes) is not one."""
    if not is_json_number(value):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


@dataclass(frozen=True)
class Cut:
    """The part of one stream segment a clip takes: ``[cut_in, cut_out)`` seconds into it."""

    sequence: int
    duration: float
    cut_in: float
    cut_out: float
    discontinuity: bool = False

    @property
    def whole(self) -> bool:
        return self.cut_in <= EDGE and self.cut_out >= self.duration - EDGE

    @property
    def length(self) -> float:
        return round(self.cut_out - self.cut_in, 6)


def plan_clip(entries: Sequence[rules.Entry], start: float, end: float) -> list[Cut]:
    """The segments of ``[start, end)`` (stream time, over ``entries`` from the stream's
    first segment) and where each is cut; a named error if the span is not all there."""
    published = sum(e.duration for e in entries)
    if end > published + EDGE:
        raise ClipRangeError(
            f"the clip ends at {end:.3f} s, but {published:.3f} s of the stream is published"
        )
    cuts: list[Cut] = []
    position = 0.0
    for entry in entries:
        if position < end - EDGE and position + entry.duration > start + EDGE:
            if entry.gap:
                raise ClipRangeError(
                    f"the clip crosses a gap at {position:.3f} s (segment {entry.sequence} "
                    "never came)"
                )
            cuts.append(
                Cut(
                    entry.sequence,
                    entry.duration,
                    max(0.0, start - position),
                    min(entry.duration, end - position),
                    # The clip's first segment starts it: nothing before it to break from.
                    entry.discontinuity and bool(cuts),
                )
            )
        position += entry.duration
    if not cuts:
        raise ClipRangeError(f"the clip from {start:.3f} s to {end:.3f} s holds no frame")
    return cuts


@transient_aws_errors()
def make_clip(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
) -> dict[str, Any]:
    """Publish the clip ``event`` asks for (or, after an error, record its failure)."""
    paths = ClipPaths(event["stream"], event["name"])
    if event["request"]["key"] != paths.request_key:
        # Another object (another clip's request, an upload): made, it would publish (or
        # fail) this clip from what it holds, and look at it for a newer version.
        raise EventError(
            f"the event's 'request' is {event['request']['key']!r:.200}, not the clip's own "
            f"request {paths.request_key!r}"
        )
    output = Bucket(clients.s3, settings.output_bucket)
    if event.get("error") is not None:
        failure = FailureRecord.of(
            {"stream": paths.stream, "clip": paths.name}, event["error"], event["request"], clients
        )
        master = _master_tag(output, paths)
        if master == _request_tag(event):
            # This request's master is written: the clip is published, whatever failed after
            # it (its manifest.json, its announcement), which is finished here where S3 and
            # the bus now take it: else the earlier version's manifest.json would describe
            # this master, and no event would tell of it. No failure record, no Clip
            # Failed; the execution names the error.
            with contextlib.suppress(Exception):
                manifest = output.get_json(_manifest_key(paths, event))
                _announce_published(paths, event, manifest, settings, output, clients)
            return {"error": failure.error, "cause": failure.cause}
        # What it wrote before it failed: no published master names it.
        output.delete_keys(_own_files(output, paths, event, published=master is not None))
        if failure.error == ClipSupersededError.__name__ or _superseded(event, clients):
            # The failure record and the clip's outcome are a newer request's to tell.
            return {"error": failure.error, "cause": failure.cause}
        output.put_json(paths.failure_key, failure.to_dict())
        failed = events.clip_failed(
            paths.stream, paths.name, _etag(event), failure.to_dict(), _version(event)
        )
        events.announce(failed, settings.event_bus, output, clients)
        return {"error": failure.error, "cause": failure.cause}
    if _published_by(output, paths, event):
        # Run again after the bus refused Clip Published (or after the master, before
        # manifest.json): announce it, encode nothing again.
        manifest = output.get_json(_manifest_key(paths, event))
        return _announce_published(paths, event, manifest, settings, output, clients)
    _give_way(paths, event, clients)
    began = time.monotonic()
    # This execution's version of the request: a newer one has an execution of its own.
    try:
        body = Bucket(clients.s3, event["request"]["bucket"]).get_small(
            event["request"]["key"], MAX_RECORD_BYTES, Pin.of(event["request"])
        )
    except SourceChangedError:  # (a bucket without versions: read by its ETag)
        raise ClipSupersededError(_SUPERSEDED.format(paths.request_key)) from None
    if body is None:
        raise ClipRequestError(f"a clip request is more than {MAX_RECORD_BYTES} bytes")
    request = ClipRequest.parse(body)
    table = StreamTable(clients.dynamodb, settings.live_table)
    record = table.get(paths.stream)
    if record is None or record.config is None or record.state is None:
        raise ClipRangeError(f"stream {paths.stream} has published nothing yet")
    config = StreamSettings.from_dict(record.config)
    if config.encryption != "none":
        # Its segments are encrypted; a clip would have to decrypt and protect them again.
        raise ClipRequestError(
            f"stream {paths.stream} is encrypted ({config.encryption}); clips of encrypted "
            "streams are not made yet"
        )
    timeline, arrivals = live_timeline(paths.stream, table, record, config, clients.clock())
    cuts = plan_clip(timeline.entries, request.start, request.end)
    _fits_scratch(cuts, arrivals, config)
    with scratch_dir() as workdir:
        # Segment files are this version's own: one that fails, or runs beside another,
        # never rewrites a segment that a published version's playlists name.
        names = _segment_names(event)
        playlists, cuts = _cut_rungs(
            paths, cuts, arrivals, config, output, workdir, remaining, names
        )
        made, image_files = _images(
            paths, cuts, config, output, workdir, remaining, names, _files_tag(event)
        )
        # Last look before the clip's files are written: the newest request wins.
        _give_way(paths, event, clients)
        output.upload_all(image_files, metadata={REQUEST_METADATA: _request_tag(event)})
    target = hls.common_target(playlists.values())  # one for every playlist played together
    text = {
        name: hls.media_playlist(entries, playlist_type="VOD", fixed_target=target).encode()
        for name, entries in playlists.items()
    }
    # This version's own playlists: a player still on an earlier version's master keeps
    # reading that version's, whichever rung it switches to.
    playlist = _playlist_name(event)
    output.put_all({f"{paths.prefix}{name}/{playlist}": body for name, body in text.items()})
    variants = hls.measured_variants(config.renditions, playlists, config.frame_rate, playlist)
    audio = (
        hls.AudioEntry(uri=f"{AUDIO}/{playlist}", group=hls.AUDIO_GROUP, channels=2)
        if config.has_audio
        else None
    )
    duration = round(sum(c.length for c in cuts), 6)
    manifest = build_manifest(
        job_id=f"clip-{paths.stream}-{paths.name}",
        source={
            "stream": paths.stream,
            "clip": paths.name,
            "from": request.start,
            "to": request.end,
            "first_sequence": cuts[0].sequence,
            "last_sequence": cuts[-1].sequence,
            "recut": sum(not c.whole for c in cuts),
            "duration": duration,
            "frame_rate": config.frame_rate,
        },
        segment_seconds=config.segment_seconds,
        chunks=len(cuts),
        audio_kbps=config.audio_kbps,
        renditions=list(zip(config.renditions, variants, strict=True)),
        playlists=playlists,
        audio=audio,
        timings={"clip_seconds": round(time.monotonic() - began, 3)},
        images=made,
    )
    # The manifest is this version's own until its master is written: one that fails
    # between the two never leaves the published master beside another span's manifest.
    output.put_bytes(
        _manifest_key(paths, event),
        json.dumps(manifest, indent=1).encode(),
        metadata={REQUEST_METADATA: _request_tag(event)},
    )
    # And a look just before the master: a newer request made while this one uploaded
    # (a short clip beside a long one) would have its master replaced by this older one's.
    _give_way(paths, event, clients)
    output.put_bytes(
        f"{paths.prefix}master.m3u8",
        hls.master_playlist(variants, audio, captions=config.captions).encode(),
        metadata={REQUEST_METADATA: _request_tag(event)},
    )
    return _announce_published(paths, event, manifest, settings, output, clients)


def _announce_published(
    paths: ClipPaths,
    event: dict[str, Any],
    manifest: dict[str, Any],
    settings: Settings,
    output: Bucket,
    clients: Clients,
) -> dict[str, Any]:
    """Announce ``Clip Published`` for the clip whose master this request wrote; the
    execution's result. A bus that refuses is ``EventNotSentError``, which the state
    machine runs Clip again on (finding this master, it encodes nothing) and, after
    that, ends the execution naming, with no failure record."""
    # The clip's manifest.json, now that its master is this version's.
    output.put_bytes(
        f"{paths.prefix}manifest.json",
        json.dumps(manifest, indent=1).encode(),
        metadata={REQUEST_METADATA: _request_tag(event)},
    )
    # An earlier request's failure record names a clip that is now published.
    output.delete_keys([paths.failure_key])
    urls = {
        name: events.object_url(output.name, f"{paths.prefix}{key}", settings.playback_base_url)
        for name, key in (("master", "master.m3u8"), ("manifest", "manifest.json"))
    }
    published = events.clip_published(
        paths.stream, paths.name, _etag(event), manifest, urls, _version(event)
    )
    try:
        events.announce(published, settings.event_bus, output, clients)
    except (EventNotSentError, botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError) as exc:  # fmt: skip
        raise EventNotSentError(
            f"the clip is published, but its Clip Published event was not put: {exc}"
        ) from exc
    return {
        "stream": paths.stream,
        "clip": paths.name,
        "master": f"{paths.prefix}master.m3u8",
        "duration": manifest["duration"],
        "segments": manifest["chunks"],
        "recut": manifest["source"]["recut"],
    }


def _request_tag(event: dict[str, Any]) -> str:
    """Which version of the clip's request ``event`` is, as the master's metadata names it."""
    return events.request_tag(_etag(event), _version(event))


def _files_tag(event: dict[str, Any]) -> str:
    """8 hex digits of the request version, in the name of every media file it writes."""
    return hashlib.sha256(_request_tag(event).encode()).hexdigest()[:8]


def _segment_names(event: dict[str, Any]) -> Callable[[int], str]:
    """The file name of a stream segment in this request version's clip:
    ``seg_00042-<its files tag>.ts``."""
    tag = _files_tag(event)
    return lambda sequence: segment_name(sequence, f"-{tag}.ts")


def _manifest_key(paths: ClipPaths, event: dict[str, Any]) -> str:
    """This request version's own manifest, ``manifest-<its files tag>.json``: written
    before its master, copied to the clip's ``manifest.json`` after it."""
    return f"{paths.prefix}manifest-{_files_tag(event)}.json"


def _playlist_name(event: dict[str, Any]) -> str:
    """The file name of each of this request version's media playlists:
    ``index-<its files tag>.m3u8``."""
    return f"index-{_files_tag(event)}.m3u8"


def _own_files(
    output: Bucket, paths: ClipPaths, event: dict[str, Any], *, published: bool
) -> list[str]:
    """What this request version wrote in the clip's folder: its segments, playlists,
    images and manifest (their names carry its files tag); and, where no version's
    master is ``published`` (nothing in the folder is), anything else its metadata names
    it in (``manifest.json``, copied after a master that is gone)."""
    tag = _files_tag(event)
    mine = (f"-{tag}.ts", f"/{_playlist_name(event)}", f"/manifest-{tag}.json")
    keys = output.keys(paths.prefix)
    own = [k for k in keys if k.endswith(mine) or k.startswith(f"{paths.prefix}images/{tag}/")]
    if not published:
        request = _request_tag(event)
        own += [k for k in keys if k not in own and _written_by(output, k) == request]
    return own


def _written_by(output: Bucket, key: str) -> str | None:
    """The request version whose metadata ``key`` has; None if it has none, or is gone."""
    try:
        tag = output.head(key).get("Metadata", {}).get(REQUEST_METADATA)
    except botocore.exceptions.ClientError as exc:
        if output.missing(exc, key):
            return None
        raise
    return None if tag is None else str(tag)


_SUPERSEDED = (
    "{} was asked for again (or removed) while this request was being made: a newer "
    "request's execution tells the clip's outcome"
)


def _give_way(paths: ClipPaths, event: dict[str, Any], clients: Clients) -> None:
    """``ClipSupersededError`` if the request was replaced after this execution started:
    two versions made at once would otherwise mix their playlists, manifest and master."""
    if _superseded(event, clients):
        raise ClipSupersededError(_SUPERSEDED.format(paths.request_key))


def _superseded(event: dict[str, Any], clients: Clients) -> bool:
    """Whether the clip's request is now another version than ``event``'s. A request
    deleted (or not to be seen: a missing key reads 403 without a listing) is not; any
    other failure to look is raised, never read as "nothing newer"."""
    request = event["request"]
    try:
        now = clients.s3.head_object(Bucket=request["bucket"], Key=request["key"])
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied", "403"):
            return False
        raise
    version = _version(event)
    if version not in (None, "null"):
        return now.get("VersionId") not in (None, "null", version)
    # (an event made by hand may name no ETag: nothing to compare)
    etag = _etag(event).strip('"')
    return bool(etag) and str(now.get("ETag", "")).strip('"') != etag


def _published_by(output: Bucket, paths: ClipPaths, event: dict[str, Any]) -> bool:
    """Whether the clip's master is there and was written by this version of its request.
    Only a master known to be missing is "not": a throttled or failed look is raised (and
    retried), never read as a clip to fail and clean up."""
    return _master_tag(output, paths) == _request_tag(event)


def _master_tag(output: Bucket, paths: ClipPaths) -> str | None:
    """The request version that wrote the clip's master ("" if it names none), or None
    where there is no master. A throttled or failed look is raised, never read as none."""
    key = f"{paths.prefix}master.m3u8"
    try:
        head = output.head(key)
    except botocore.exceptions.ClientError as exc:
        if output.missing(exc, key):
            return None
        raise
    return str(head.get("Metadata", {}).get(REQUEST_METADATA, ""))


def _etag(event: dict[str, Any]) -> str:
    return str((event.get("request") or {}).get("etag") or "")


def _version(event: dict[str, Any]) -> str | None:
    version = (event.get("request") or {}).get("version_id")
    return str(version) if version else None


def _cut_rungs(
    paths: ClipPaths,
    cuts: list[Cut],
    arrivals: dict[int, dict[str, Any]],
    config: StreamSettings,
    output: Bucket,
    workdir: Path,
    remaining: Deadline,
    names: Callable[[int], str],
) -> tuple[dict[str, list[hls.SegmentEntry]], list[Cut]]:
    """Every rung's segments of the clip: the cut ones re-encoded, the others copied; and
    the cuts kept (an end cut that holds no frame, a sliver between two frames, is left
    out: the clip's frames are the same without it)."""
    stream = StreamPaths(paths.stream)
    top = config.renditions[0].name
    binary = runner.ffmpeg_binary()
    playlists: dict[str, list[hls.SegmentEntry]] = {name: [] for name in config.rungs}
    kept: list[Cut] = []
    for cut in cuts:
        if not kept:
            cut = replace(cut, discontinuity=False)  # the clip's first segment starts it
        name = names(cut.sequence)
        if cut.whole:
            for rung in config.rungs:
                output.copy(stream.segment_key(rung, cut.sequence), f"{paths.prefix}{rung}/{name}")
                size = int(arrivals[cut.sequence]["bytes"][rung])
                playlists[rung].append(_entry(name, cut, size))
            kept.append(cut)
            continue
        here = workdir / f"cut-{cut.sequence}"
        here.mkdir()
        # Where the segment's first frame is on its own clock: the cut is counted from it.
        first = output.download(stream.segment_key(top, cut.sequence), here / f"{top}.ts")
        runner.run_ffmpeg(
            encode.build_first_frame_command(str(first), here, binary=binary),
            timeout=max(5.0, min(60.0, remaining() - 5)),
        )
        origin = encode.first_frame(here)
        if origin is None:
            raise ClipRangeError(f"segment {cut.sequence} of {paths.stream} has no picture")
        files: dict[str, Path] = {}
        encodes: list[Rendition | None] = [*config.renditions, *[None] * config.has_audio]
        for rendition in encodes:
            rung_name = AUDIO if rendition is None else rendition.name
            source = here / f"{rung_name}.ts"
            if not source.exists():
                output.download(stream.segment_key(rung_name, cut.sequence), source)
            recut = here / f"{rung_name}-clip.ts"
            start: float | None = origin + cut.cut_in
            end: float | None = origin + cut.cut_out
            start_sample = None
            if rendition is None:
                # The audio is cut only where the clip cuts the segment: at the segment's
                # own edge it keeps the sound its venue file held there (``sound``).
                start = None if cut.cut_in <= EDGE else start
                end = None if cut.cut_out >= cut.duration - EDGE else end
                if start is not None and end is None:
                    # Cut at a frame's start, so it ends where the segment does, in
                    # whole frames: no frame padded with silence over the next one's.
                    sound = _first_sound(source, here, remaining)
                    if sound is not None:
                        start_sample = encode.frame_start_sample(start, *sound)
                        start = None
            runner.run_ffmpeg(
                encode.build_recut_command(
                    str(source),
                    start,
                    end,
                    recut,
                    rendition=rendition,
                    audio_kbps=config.audio_kbps,
                    follows=bool(kept) and not cut.discontinuity,
                    binary=binary,
                    preset=config.preset,
                    start_sample=start_sample,
                ),
                timeout=runner.time_limit(remaining(), cut.length * len(config.renditions)),
            )
            if rung_name == top and recut.stat().st_size == 0:
                break  # no frame starts in the cut
            files[rung_name] = recut
        if top not in files:
            continue
        output.upload_all({f"{paths.prefix}{rung}/{name}": path for rung, path in files.items()})
        for rung, path in files.items():
            playlists[rung].append(_entry(name, cut, path.stat().st_size))
        kept.append(cut)
    if not kept:
        raise ClipRangeError(
            f"the clip holds no frame: its span lies between two frames of {paths.stream}"
        )
    return playlists, kept


def _first_sound(source: Path, workdir: Path, remaining: Deadline) -> tuple[float, float] | None:
    """The time of a published audio segment's first frame, on its own clock, and how
    long its frames last."""
    found = workdir / "first-sound"
    found.mkdir()
    runner.run_ffmpeg(
        encode.build_first_sound_command(str(source), found, binary=runner.ffmpeg_binary()),
        timeout=max(5.0, min(60.0, remaining() - 5)),
    )
    return encode.first_sound(found)


def _entry(name: str, cut: Cut, size: int) -> hls.SegmentEntry:
    return hls.SegmentEntry(name, cut.length, size, discontinuity=cut.discontinuity)


def _fits_scratch(
    cuts: list[Cut], arrivals: dict[int, dict[str, Any]], config: StreamSettings
) -> None:
    """Refuse, before any work, a clip whose top rung (joined in /tmp for its images: see
    ``_images``) would not fit there: a long span of a stream with a high top rate."""
    top = config.renditions[0].name
    joined = sum(int(arrivals[cut.sequence]["bytes"][top]) for cut in cuts)
    if joined > MAX_JOINED_BYTES:
        seconds, most = sum(c.length for c in cuts), MAX_JOINED_BYTES / 2**20
        raise InputTooLargeError(
            f"the clip's top rung ({top}) is {joined / 2**20:,.0f} MB over {seconds:.0f} s, "
            f"more than the {most:,.0f} MB its images can be made from: ask for a shorter span"
        )


def _images(
    paths: ClipPaths,
    cuts: list[Cut],
    config: StreamSettings,
    output: Bucket,
    workdir: Path,
    remaining: Deadline,
    names: Callable[[int], str],
    tag: str,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Poster, thumbnails and sprites, from the clip's top rung joined into one file on
    one clock (``_fits_scratch`` bounds it and its segments): what the manifest says of
    them, and the files to upload (key -> path in ``workdir``), under ``images/<tag>/``
    (this request version's files tag: a version that fails never rewrites the images
    of the one published)."""
    top = config.renditions[0]
    parts = [
        output.download(
            f"{paths.prefix}{top.name}/{names(cut.sequence)}", workdir / f"part-{n:05d}.ts"
        )
        for n, cut in enumerate(cuts)
    ]
    listing = workdir / "top.txt"
    listing.write_text("".join(f"file '{part.name}'\n" for part in parts))
    joined = workdir / "top.ts"
    runner.run_ffmpeg(
        encode.build_join_command(listing, joined, binary=runner.ffmpeg_binary()),
        timeout=max(5.0, min(60.0, remaining() - 5)),
    )
    for part in parts:
        part.unlink()
    duration = sum(c.length for c in cuts)
    folder = workdir / "images"
    folder.mkdir()
    runner.run_ffmpeg(
        encode.build_first_frame_command(str(joined), folder, binary=runner.ffmpeg_binary()),
        timeout=max(5.0, min(60.0, remaining() - 5)),
    )
    made = images.make_images(
        str(joined),
        "mpegts",
        encode.first_frame(folder) or 0.0,
        duration,
        folder,
        interval=THUMBNAIL_SECONDS,
        thumb_width=min(320, top.width - top.width % 2),
        poster_size=(top.width, top.height),
        timeout=runner.time_limit(remaining(), duration / 4),
        binary=runner.ffmpeg_binary(),
    )

    def published(path: Path) -> str:
        return f"images/{tag}/{path.relative_to(folder)}"

    files = [made.poster, made.vtt, *made.thumbnails, *made.sprites]
    summary = {
        "poster": published(made.poster),
        "poster_time": made.poster_time,
        "thumbnails": {
            "count": len(made.thumbnails),
            "interval": made.interval,
            "width": made.thumb_width,
            "height": made.thumb_height,
            "first": published(made.thumbnails[0]),
        },
        "sprites": {
            "count": len(made.sprites),
            "columns": made.columns,
            "rows": made.rows,
            "vtt": published(made.vtt),
        },
    }
    return summary, {f"{paths.prefix}{published(p)}": p for p in files}
