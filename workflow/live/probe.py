"""LiveProbe: read one segment as untrusted input; the first fixes the stream's settings.

PyAV ships only in the PyAV layer: no function but LiveProbe may reach this module.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from workflow import metrics
from workflow.errors import (
    SegmentStartsMidGopError,
    SegmentTooLongError,
    SequenceBeforeStartError,
    SequenceJumpError,
)
from workflow.keys.store import KeyStore
from workflow.live import rules
from workflow.live.config import StreamSettings, declared_config, stream_config
from workflow.live.paths import StreamPaths
from workflow.live.segment import (
    ProbedSegment,
    audio_rate,
    ended_at,
    reused_error,
    segment_form,
    segment_input,
)
from workflow.live.store import (
    StreamRecord,
    StreamTable,
    replaces,
    upload_etag,
    upload_of,
    upload_time,
)
from workflow.media.probe import UndecodableHead, fits_init, probe
from workflow.runtime import Clients, Deadline, scratch_dir
from workflow.settings import Settings
from workflow.storage import transient_aws_errors

log = logging.getLogger(__name__)

# The most LiveProbe spends reading a segment's audio packets to find where its sound
# ends; past it the segment's audio is cut to its video's span.
AUDIO_READ_SECONDS = 10.0


@transient_aws_errors()
def probe_segment(
    event: dict[str, Any], settings: Settings, clients: Clients, remaining: Deadline
) -> dict[str, Any]:
    """Probe one segment as untrusted input; say so if it was published already.

    The stream's first probed segment fixes its settings (``stream.json`` and the
    ladder for its picture size), so every later segment is encoded the same way.
    """
    stream, sequence = event["stream"], int(event["sequence"])
    table = StreamTable(clients.dynamodb, settings.live_table)
    stored = table.arrival(stream, sequence)
    if stored is not None and not replaces(stored, event["source"]):
        _same_segment(stored, event["source"], sequence, lambda: table.get(stream))
        # Counted here: a repeated delivery of a published segment ends at this step.
        metrics.about(stream=stream, sequence=sequence)
        metrics.count(metrics.LIVE_DUPLICATE_SEGMENTS)
        return {**event, "duplicate": True}
    record = table.get(stream)
    if record is not None:
        record.refuse_past_the_end(sequence, upload_time(event["source"], clients.s3))
    _within_reach(record, sequence)
    fits = functools.partial(fits_init, limits=settings.limits)
    with (
        scratch_dir() as workdir,
        segment_input(event["source"], clients, workdir, fits=fits) as source,
    ):
        probed = probe(
            source.source,
            head=source.head,
            size=source.size,
            limits=settings.limits,
            timeout=max(5.0, min(30.0, remaining() - 5)),
            headers=source.headers,
            # A segment lasts seconds: its audio is read whole in well under a second,
            # and a file too big for that keeps its video's span (``audio_span``).
            read_for=max(1.0, min(AUDIO_READ_SECONDS, remaining() - 10)),
            audio_span=True,
            # The stream's track, or silence where it carries no sound this time.
            audio_as_declared=True,
            leading_frames=True,
        )
        facts = probed.facts
    # A probe that ran meanwhile may have fixed the settings: configure keeps the first.
    if record is None or record.config is None:
        record = table.configure(
            stream,
            stream_config(
                declared_config(event["source"]["bucket"], stream, clients),
                facts.display_width,
                facts.display_height,
                facts.frame_rate,
                # Always an audio rendition, silent where a segment has none: an encoder
                # started before its microphone was plugged in would otherwise lose the
                # stream's sound for its life.
                True,
                settings,
                first_duration=facts.duration,
                captions=facts.captions,
            ).to_dict(),
        )
    config = StreamSettings.from_dict(record.config or {})
    _after_the_start(record, sequence)
    if config.encryption != "none":
        # Made once, before any of the stream's segments is encoded or listed.
        store = KeyStore.of(settings, clients)
        asset = StreamPaths(stream).asset
        if not store.exists(asset):
            store.make_once(asset, rotation=config.key_rotation)
    if not rules.fits(facts.duration, config.segment_seconds):
        raise SegmentTooLongError(
            f"segment {sequence} lasts {facts.duration:.3f} s; the stream's target duration is "
            f"{rules.live_target(config.segment_seconds)} s, which a live playlist may not "
            "change: cut shorter segments"
        )
    _keyed_at_start(probed.undecodable_head, stream, sequence, facts.start_time)
    return {
        **event,
        "duplicate": False,
        "segment": ProbedSegment(
            container=facts.container,
            container_start=facts.container_start,
            start=facts.start_time,
            end=round(facts.start_time + facts.duration, 6),
            has_audio=facts.audio is not None,
            audio_span=probed.audio_span,
            audio_stream=facts.audio.index if facts.audio else 0,
            audio_rate=audio_rate(facts),
            width=facts.display_width,
            height=facts.display_height,
            frame_rate=facts.frame_rate,
            form=segment_form(facts),
            interlaced=facts.interlaced,
            hdr=facts.hdr,
            assumed_colour=facts.assumed_colour,
            init=source.init,
        ).to_dict(),
    }


def _same_segment(
    stored: dict[str, Any],
    source: dict[str, Any],
    sequence: int,
    record: Callable[[], StreamRecord | None] = lambda: None,
) -> None:
    """Refuse, by name, other bytes under a segment number published already: they are
    never shown (a published segment is never replaced), and a venue whose restarted
    encoder counts from 0 again must hear of it. The same bytes (the same ETag: an event
    delivered twice, or an upload sent twice) are a duplicate, and so is any upload of a
    number whose segment failed and was not replaced. ``record`` is the stream's record,
    read only to refuse: an ended stream's refusal says a new broadcast needs a new name."""
    shown = upload_etag(str(stored.get("upload", "")))
    given = upload_etag(upload_of(source))
    if not stored.get("failed") and shown and given and shown != given:
        raise reused_error(sequence, shown, given, ended=ended_at(record()))


def _after_the_start(record: StreamRecord, sequence: int) -> None:
    """Refuse a segment numbered below the first the stream shows (declared in
    ``stream.json``, or where it started): neither its playlists nor its recording would
    ever list it."""
    first = record.first_sequence
    if first is not None and sequence < first:
        raise SequenceBeforeStartError(
            f"segment {sequence} is numbered below {first}, the first segment the stream "
            "shows (its stream.json's first_sequence, or where it started): it would be "
            "shown nowhere"
        )


def _keyed_at_start(head: UndecodableHead | None, stream: str, sequence: int, start: float) -> None:
    """Refuse, by name, a segment cut between its encoder's keyframes (frames sent before
    its first keyframe, which refer to the file before it): encoded alone they would be
    dropped, a frozen picture or a jump (a segment an uploader cut by the clock, 2 s at a
    time, from an encoder keying every 2.4 s lost 30 % of its frames). An open GOP's
    leading pictures, sent after its keyframe, are dropped, logged and counted: one to a
    few frames a segment, refusing which would leave the venue nothing but gaps."""
    if head is None:
        return
    if head.cut:
        raise SegmentStartsMidGopError(
            f"segment {sequence} starts with {head.cut} frames sent before its first "
            f"keyframe (shown from {head.seconds:.3f} s before it, at {start:.3f} s), which "
            "refer to the file before it: each segment is encoded alone, so they cannot be "
            "shown. Cut segments at the encoder's keyframes (ffmpeg's segment or hls muxer "
            "does; force a keyframe every segment length: "
            "-force_key_frames 'expr:gte(t,n_forced*4)'), without intra-refresh"
        )
    log.warning(
        "segment %d of %s: its first %d frames (%.3f s) are an open GOP's leading pictures, "
        "which refer to the GOP before, and are dropped: encode with a closed GOP "
        "(x265's open-gop=0) to keep them",
        sequence, stream, head.leading, head.seconds,
    )  # fmt: skip
    metrics.about(stream=stream, sequence=sequence)
    metrics.count(metrics.LIVE_FRAMES_DROPPED, head.leading)


def _within_reach(record: StreamRecord | None, sequence: int) -> None:
    """Refuse a segment numbered past what the stream's playlists can ever reach from
    where they are (the rules would never wait for it): say so, rather than encode it
    for nothing."""
    if record is None or not record.state:
        return
    shown = rules.LivePlaylist.from_dict(record.state).next_sequence
    if shown is not None and sequence > shown + rules.MAX_SKIPPED:
        raise SequenceJumpError(
            f"segment {sequence} is {sequence - shown} numbers past the next the stream "
            f"shows ({shown}); a stream skips at most {rules.MAX_SKIPPED} at once (an "
            "outage): number segments on from the last uploaded"
        )
