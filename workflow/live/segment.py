"""LiveTranscode: one segment into every rung and the audio, on the stream's own timeline."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from workflow.errors import (
    InitSegmentMismatchError,
    InputTooLargeError,
    MissingInitSegmentError,
    SegmentClaimedError,
    SegmentReusedError,
    SourceChangedError,
    StreamNotReadyError,
)
from workflow.keys import segments as aes128
from workflow.keys.store import KeyStore
from workflow.live.config import StreamSettings
from workflow.live.paths import INIT_SEGMENT, StreamPaths
from workflow.live.store import (
    CLAIM_SECONDS,
    StreamRecord,
    StreamTable,
    upload_etag,
    upload_of,
    upload_time,
)
from workflow.media import audio_pieces, encode, picture, runner
from workflow.media.chunks import Chunk
from workflow.media.facts import SourceFacts
from workflow.media.rungs import encode_span
from workflow.media.sniff import HEAD_BYTES
from workflow.runtime import Clients, Deadline, event_time, scratch_dir
from workflow.settings import Settings
from workflow.shapes import known_fields
from workflow.storage import Bucket, Pin, transient_aws_errors

# The audio of one segment is one file: its "segment length" is longer than any segment.
_ONE_FILE = 3600.0
# How far a segment's own audio may start or end from its video's (the B-frame delay and
# the muxer's interleaving, tens of ms) before it counts as lost or late instead.
SOUND_REACH = 0.5


@dataclass(frozen=True)
class ProbedSegment:
    """What LiveProbe found in one segment, as LiveTranscode reads it: its container,
    its span on the source's clock, its picture (as displayed) and frame rate, its
    form (``segment_form``) and, for fMP4, the upload of ``init.mp4`` it fits behind;
    the defaults stand for a segment probed before they were kept."""

    container: str
    container_start: float
    start: float
    end: float
    has_audio: bool
    width: int = 0
    height: int = 0
    frame_rate: float = 0.0
    form: str | None = None
    interlaced: bool = False
    hdr: str | None = None
    assumed_colour: dict[str, str] = field(default_factory=dict)
    init: dict[str, str | None] | None = None
    # Where the file's own audio starts and ends (``probe``'s ``audio_span``), and
    # which of its audio streams that is (ffmpeg's ``0:a:N``: ``AudioFacts.index``).
    audio_span: tuple[float, float] | None = None
    audio_stream: int = 0
    # The rate its audio is encoded at (``audio_rate``).
    audio_rate: int = audio_pieces.SAMPLE_RATE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbedSegment:
        kept = known_fields(cls, data)
        if kept.get("audio_span") is not None:
            kept["audio_span"] = tuple(kept["audio_span"])
        return cls(**kept)

    def sound(self) -> tuple[float, float]:
        """The span the segment's audio rendition covers: the file's own audio, which a
        muxer interleaving by decode time ends a B-frame delay before its video (the
        rest is at the head of the next file), within ``SOUND_REACH`` of its video's
        ends; beyond that the audio was lost or late (a microphone unplugged or plugged
        in mid-segment) and the span is the video's, padded with silence."""
        start, end = self.start, self.end
        if self.audio_span is None:
            return start, end
        first, last = self.audio_span
        sound = (
            first if abs(first - start) <= SOUND_REACH else start,
            last if abs(last - end) <= SOUND_REACH else end,
        )
        # (a segment shorter than the reach, its sound past its video: the video's span)
        return sound if sound[1] > sound[0] else (start, end)


# AAC rates a venue's own frames keep: 1,024 samples each, as the encode's are.
NATIVE_AAC_RATES = frozenset({44_100, 48_000})


def audio_rate(facts: SourceFacts) -> int:
    """The rate a segment's audio is encoded at: a venue's AAC at 44.1 or 48 kHz keeps its
    own, so each file's sound is whole AAC frames and joins the next file's exactly (at
    another rate it would end in a frame filled out with silence over the next one's);
    any other, 48 kHz."""
    audio = facts.audio
    if audio is not None and audio.codec == "aac" and audio.sample_rate in NATIVE_AAC_RATES:
        return audio.sample_rate
    return audio_pieces.SAMPLE_RATE


def segment_form(facts: SourceFacts) -> str:
    """What a segment's encoder was set to, and the rate its audio is encoded at where that
    is not 48 kHz: a change starts a new discontinuity run. (Every segment was encoded at 48
    kHz before ``audio_rate`` was kept, under the form without it: a deploy that keeps a
    venue's 44.1 kHz starts a run there, and one at 48 kHz goes on unbroken.)"""
    size = f"{facts.display_width}x{facts.display_height}"
    video = f"{facts.video_codec} {size} {facts.frame_rate:.3f}fps"
    if facts.audio is None:
        return f"{video}, no audio"
    audio = facts.audio
    form = f"{video}, {audio.codec} {audio.channels}ch {audio.sample_rate}Hz"
    rate = audio_rate(facts)
    return form if rate == audio_pieces.SAMPLE_RATE else f"{form}, encoded at {rate}Hz"


@transient_aws_errors()
def transcode_segment(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
) -> dict[str, Any]:
    """Encode one segment into every rung, and its audio, on the stream's own timeline.

    Timestamps pass through from the encoder (``-copyts``), so consecutive segments
    join without a gap; each rung's segment starts with a keyframe.
    """
    stream, sequence = event["stream"], int(event["sequence"])
    paths = StreamPaths(stream)
    table = StreamTable(clients.dynamodb, settings.live_table)
    record = table.get(stream)
    if record is None or record.config is None:
        raise StreamNotReadyError(f"stream {stream} has no settings; its probe did not run")
    # Before anything is encoded or claimed, so another broadcast under an ended stream's
    # name never writes its files. The end it is too late for was recorded before it was
    # uploaded, so this read sees it: an end recorded later (a mend being encoded as END
    # lands) is one it was uploaded before, and in time for.
    record.refuse_past_the_end(sequence, upload_time(event["source"], clients.s3))
    config = StreamSettings.from_dict(record.config)
    segment = ProbedSegment.from_dict(event["segment"])
    with scratch_dir() as workdir:
        with segment_input(event["source"], clients, workdir, init=segment.init) as source:
            rungs = encode_span(
                _encodes(source, segment, sequence, config, workdir, settings.limits.max_pixels),
                workdir,
                config.rungs,
                segment.start,
                segment.end,
                timeout=runner.time_limit(
                    remaining(), (segment.end - segment.start) * len(config.renditions)
                ),
                offset=config.ts_offset,
                # A frame shown half guessed is not the venue's: refused, never published.
                whole_frames=True,
            )
        files = {paths.segment_key(name, sequence): s[0].path for name, s in rungs.items()}
        if config.encryption != "none":
            key = KeyStore.of(settings, clients).get(paths.asset).key
            period = config.key_period(sequence)
            if period is not None:
                key = aes128.period_key(key, period)
            for name, path in files.items():
                aes128.encrypt_segment(path, key, name.removeprefix(paths.prefix))
        if _claimed(table, stream, sequence, upload_of(event["source"]), clients.clock()):
            Bucket(clients.s3, settings.output_bucket).upload_all(files)
        sizes = {name: s[0].path.stat().st_size for name, s in rungs.items()}
    return {
        "stream": stream,
        "sequence": sequence,
        "duration": round(segment.end - segment.start, 6),
        "bytes": sizes,
    }


def _claimed(table: StreamTable, stream: str, sequence: int, upload: str, now: float) -> bool:
    """Whether this upload may write the segment's files: True once it holds the claim.

    False where its bytes were published already (an event delivered twice): its own
    publish is then refused as a duplicate. Refused by name where other bytes were
    published under the number or are on their way there (a restarted encoder counting
    from 0 again), whose files are never written over; to be tried again where they were
    a failed upload's, whose claim runs out (this one mends it).
    """
    claimed = table.claim(stream, sequence, upload, now=now)
    if claimed.made:
        return True
    given, holder = upload_etag(upload), claimed.holder
    if holder:
        stored = table.arrival(stream, sequence) or {}
        if stored.get("failed") and upload_etag(str(stored.get("upload"))) == holder:
            raise SegmentClaimedError(
                f"segment {sequence}'s files stay claimed for up to {CLAIM_SECONDS:.0f} s by "
                f"an upload whose attempt failed (ETag {holder}, {stored.get('error')}): this "
                "upload is started again after that"
            )
        raise reused_error(
            sequence, holder, given, published=False, ended=ended_at(table.get(stream))
        )
    stored = claimed.arrival or {}
    shown = upload_etag(str(stored.get("upload", "")))
    if stored.get("failed") or shown == given:
        return False  # its own failed arrival, not to be tried again; or its bytes, shown
    raise reused_error(sequence, shown, given, ended=ended_at(table.get(stream)))


def ended_at(record: StreamRecord | None) -> int | None:
    """The last segment of the stream's end, where its record says it has ended."""
    ending = None if record is None else record.ending
    return None if ending is None else int(ending["last_sequence"])


def reused_error(
    sequence: int, shown: str, given: str, *, published: bool = True, ended: int | None = None
) -> SegmentReusedError:
    """The error for an upload (ETag ``given``) under a number another upload (ETag
    ``shown``) was published from (or is being published from). Where the stream has
    ended (at segment ``ended``) it says so: numbering on would only meet
    ``StreamEndedError``, and a venue reusing an old stream's name (next week's game)
    needs a new one."""
    done = "was published already" if published else "is being published"
    advice = (
        "number segments on from the last uploaded"
        if ended is None
        else f"the stream ended at segment {ended}: a new broadcast needs a new stream name"
    )
    return SegmentReusedError(
        f"segment {sequence} {done} from another upload (ETag {shown or '?'}); this one "
        f"(ETag {given or '?'}) is not used: {advice}"
    )


def _encodes(
    source: SegmentInput,
    segment: ProbedSegment,
    sequence: int,
    config: StreamSettings,
    workdir: Path,
    max_pixels: int,
) -> list[list[str]]:
    """The ffmpeg runs of one segment: every video rung in one, the audio in another
    (the picture's size capped at ``max_pixels``, as the probe capped its first).

    The stream's ladder holds for its life: a picture of another shape is fitted into the
    rungs and padded, a faster frame rate brought down to the stream's; a segment
    without audio in a stream with audio gets silence, so the audio rendition has no hole.
    """
    start, end, binary = segment.start, segment.end, runner.ffmpeg_binary()
    sound_start, sound_end = segment.sound() if segment.has_audio else (start, end)
    commands = [
        encode.build_chunk_command(
            source.source,
            segment.container,
            segment.container_start,
            # The whole file from its start, every frame to its end.
            Chunk(sequence, start, end, sequence, [start], margin=start - segment.container_start),
            config.renditions,
            workdir,
            final=True,
            fit=_reshaped(segment, config),
            frame_rate=config.frame_rate if segment.frame_rate > config.frame_rate * 1.01 else None,
            binary=binary,
            preset=config.preset,
            cpus=runner.cpus(),
            source_pixels=segment.width * segment.height,
            headers=source.headers,
            offset=config.ts_offset,
            max_pixels=max_pixels,
            source_filters=picture.source_filters(segment),
        )
    ]
    if config.has_audio:
        audio = (
            functools.partial(
                encode.build_audio_command,
                source.source,
                segment.container,
                headers=source.headers,
                audio_stream=segment.audio_stream,
                sample_rate=segment.audio_rate,
            )
            if segment.has_audio
            else encode.build_silence_command
        )
        commands.append(
            audio(
                sound_start,
                sound_end - sound_start,
                workdir,
                kbps=config.audio_kbps,
                segment_seconds=end - start + _ONE_FILE,
                binary=binary,
                first_segment=sequence,
                drop_priming=True,
                offset=config.ts_offset,
            )
        )
    return commands


def _reshaped(segment: ProbedSegment, config: StreamSettings) -> bool:
    """Whether the segment's picture is of another shape than the stream's rungs."""
    if not segment.width or not segment.height:
        return False
    top = config.renditions[0]
    return abs(segment.width * top.height / (segment.height * top.width) - 1) > 0.02


class SegmentInput(NamedTuple):
    """Where ffmpeg reads a segment, the HTTP headers that pin each read, its first
    bytes and its size; for fMP4, the upload of ``init.mp4`` it was joined behind (its
    ``version_id`` and ``etag``, a ``Pin``'s record)."""

    source: str
    headers: str | None
    head: bytes
    size: int
    init: dict[str, str | None] | None = None


# The distinct uploads of a stream's init.mp4 LiveProbe tries a segment behind, at most,
# on each side of the segment's upload time.
INIT_TRIES_EACH_SIDE = 4
# The most of an fMP4 segment, and of an init.mp4, read into memory to be joined: a live
# segment lasts seconds (256 MiB is 340 Mbit/s for 6 s), an init a few KB; an upload of
# gigabytes would otherwise end the function out of memory on every retry, unnamed.
MAX_FMP4_SEGMENT_BYTES = 256 * 1024 * 1024
MAX_INIT_BYTES = 1024 * 1024


@contextmanager
def segment_input(
    source: dict[str, Any],
    clients: Clients,
    workdir: Path,
    *,
    init: dict[str, str | None] | None = None,
    fits: Callable[[bytes, bytes], bool] | None = None,
) -> Iterator[SegmentInput]:
    """A segment, every read pinned to the version its event names.

    MPEG-TS is read from a presigned URL; an fMP4 segment is joined behind its
    stream's ``init.mp4`` in a local file, since neither half plays alone: behind the
    upload of it ``init`` names, or, given ``fits`` (LiveProbe's check), the upload the
    segment fits behind (``init_behind``); else the newest. The pin is checked again
    once the reading is over: a segment uploaded again under its name mid-read ends in
    ``SourceChangedError`` (the new upload has an execution of its own), never in a
    probe of one version and an encode of another.
    """
    ingest = Bucket(clients.s3, source["bucket"])
    key, pin = source["key"], Pin.of(source)
    with ingest.pinned(key, pin):
        if key.endswith(".m4s"):
            data, chosen = init_behind(ingest, source, init, fits)
            path = workdir / "segment.mp4"
            path.write_bytes(data)
            yield SegmentInput(str(path), None, data[:HEAD_BYTES], len(data), chosen)
            return
        size = int(ingest.head(key, pin)["ContentLength"])
        head = ingest.read_range(key, size, HEAD_BYTES, pin)
        yield SegmentInput(ingest.presign(key, pin=pin), pin.http_headers(), head, size)


def init_behind(
    ingest: Bucket,
    source: dict[str, Any],
    init: dict[str, str | None] | None,
    fits: Callable[[bytes, bytes], bool] | None,
) -> tuple[bytes, dict[str, str | None] | None]:
    """An fMP4 segment joined behind an upload of its stream's ``init.mp4``, and that
    upload's pin record (None where no choice was made).

    An encoder that restarts with other settings uploads a new init; a segment of its
    previous run that comes late (uploaded late, or tried again by Reconcile) would be
    read behind the new one and publish mangled. So the uploads are tried newest first
    from the one current when the segment was uploaded, then those after it, and the
    first the segment ``fits`` behind is the one: a new run's segment that overtook its
    init fails (and is tried again) rather than read behind the old. The read of the
    chosen init is pinned (``init``) from then on, so one uploaded meanwhile changes
    nothing, or ends in ``SourceChangedError`` where the bucket keeps no versions.
    """
    key, pin = source["key"], Pin.of(source)
    init_key = f"{key.rsplit('/', 1)[0]}/{INIT_SEGMENT}"
    body = _bounded(ingest, key, pin, MAX_FMP4_SEGMENT_BYTES)
    if init is not None:
        return _bounded(ingest, init_key, Pin.of(init), MAX_INIT_BYTES) + body, init
    if fits is None:  # no choice made (a job probed before there was one): the newest
        if not ingest.exists(init_key):
            raise MissingInitSegmentError(f"{key} needs {init_key}, which is not uploaded")
        return _bounded(ingest, init_key, None, MAX_INIT_BYTES) + body, None
    uploads = ingest.versions(init_key)
    if not uploads:
        raise MissingInitSegmentError(f"{key} needs {init_key}, which is not uploaded")
    tried = _in_trying_order(uploads, source.get("uploaded_at"))
    for upload in tried:
        chosen = {"version_id": upload["VersionId"], "etag": upload["ETag"].strip('"')}
        try:
            data = _bounded(ingest, init_key, Pin.of(chosen), MAX_INIT_BYTES)
        except SourceChangedError:
            continue  # that upload expired or was deleted since the listing
        if fits(data, body):
            return data + body, chosen
    raise InitSegmentMismatchError(
        f"{key} fits behind none of {len(tried)} uploads of {init_key} (its picture "
        "decodes at another size, or misread): it is damaged, or was made by an encoder "
        "run whose init.mp4 is not uploaded yet (an encoder that restarts with other "
        "settings uploads its new init.mp4 first)"
    )


def _bounded(ingest: Bucket, key: str, pin: Pin | None, most: int) -> bytes:
    """``key``'s bytes, read only where it holds ``most`` at most (told by the answer's
    length, before any of its body is read)."""
    data = ingest.get_small(key, most, pin)
    if data is None:
        raise InputTooLargeError(
            f"{key} is over {most} bytes: a live fMP4 segment or init.mp4 is read whole "
            "to be joined, and may be no larger"
        )
    return data


def _in_trying_order(
    uploads: list[dict[str, Any]], uploaded_at: str | None
) -> list[dict[str, Any]]:
    """``uploads`` (newest first) in the order to try them behind a segment uploaded at
    ``uploaded_at``: those made by then, newest first, then the later ones, oldest first;
    the same bytes uploaded again tried once, and at most ``INIT_TRIES_EACH_SIDE`` on each
    side. S3 keeps a version's time to the second, so one made in the segment's second
    counts as made by then (the check tells the two apart where it can)."""
    made_by, after = list(uploads), []
    at = event_time(uploaded_at)
    if at is not None:
        at = at.replace(microsecond=0)
        made_by = [u for u in uploads if u["LastModified"] <= at]
        after = [u for u in reversed(uploads) if u["LastModified"] > at]
    seen: set[str] = set()

    def distinct(side: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for upload in side:
            if upload["ETag"] not in seen and len(kept) < INIT_TRIES_EACH_SIDE:
                seen.add(upload["ETag"])
                kept.append(upload)
        return kept

    return distinct(made_by) + distinct(after)
