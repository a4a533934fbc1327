"""A stream's settings: its stream.json over the functions' defaults, and its ladder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from workflow.errors import ConfigurationError, StreamConfigError
from workflow.formats.hls import rounded_duration
from workflow.live.paths import LIVE_PREFIX, MAX_RECORD_BYTES, MAX_SEQUENCE, STREAM_CONFIG
from workflow.live.store import MEND_SECONDS
from workflow.media.encode import TS_OFFSET
from workflow.media.ladder import Rendition, build_ladder, parse_ladder
from workflow.names import AUDIO
from workflow.runtime import Clients
from workflow.settings import LIVE_WINDOW_REASON, MIN_LIVE_WINDOW, Settings
from workflow.shapes import known_fields
from workflow.storage import Bucket

# What a live stream may be protected with (its segments are MPEG-TS), and what each
# stack-wide default protects a stream with.
LIVE_ENCRYPTIONS = ("none", "aes-128")
# The longest a stream waits for a missing segment before showing a gap.
MAX_GAP_SECONDS = 86_400.0
# How long a stream waits for its next segment, undeclared, before it is ended (or twice
# its gap_seconds, where that is longer).
IDLE_SECONDS = 3_600.0
# The longest a stream.json may ask a stream to wait for its next segment.
MAX_IDLE_SECONDS = 7 * 86_400.0
LIVE_ENCRYPTION = {"none": "none", "aes-128": "aes-128", "cbcs": "aes-128"}
# The longest a stream.json may let an ended stream's gaps be mended (a year).
MAX_MEND_SECONDS = 366 * 86_400.0


@dataclass(frozen=True)
class StreamSettings:
    """How every segment of one stream is encoded and shown, fixed by its first probe."""

    renditions: list[Rendition]
    segment_seconds: float
    window: int
    gap_seconds: float
    first_sequence: int | None
    frame_rate: float
    has_audio: bool
    audio_kbps: int
    preset: str
    # "aes-128": every segment encrypted under the stream's key (``StreamPaths.asset``).
    encryption: str = "none"
    # Segments per key period (0: one key for the stream's life).
    key_rotation: int = 0
    # What every output time is shifted by, fixed for the stream's life so that its clock
    # runs on across a deploy that changes ``encode.TS_OFFSET``; a stream begun before it
    # was kept has the 10 s of then.
    ts_offset: float = 10.0
    # A stream with no new segment for this long is ended as if by its marker, at its
    # last segment (0: never): an encoder that died or lost its uplink for good.
    idle_seconds: float = 0.0
    # Its first segment's video carries CEA-608/708 captions: every master declares them.
    captions: bool = False
    # An upload written this long after the stream ended is another broadcast under a
    # reused name, not a mend of one of its gaps (``StreamRecord.refuse_past_the_end``).
    mend_seconds: float = MEND_SECONDS

    def key_period(self, sequence: int) -> int | None:
        """The rotation period segment ``sequence`` is encrypted in; None without rotation."""
        return sequence // self.key_rotation if self.key_rotation else None

    @property
    def rungs(self) -> list[str]:
        """Every rung's name: the video rungs, then the audio if the stream has any."""
        return [r.name for r in self.renditions] + ([AUDIO] if self.has_audio else [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "renditions": [r.to_dict() for r in self.renditions],
            "segment_seconds": self.segment_seconds,
            "window": self.window,
            "gap_seconds": self.gap_seconds,
            "first_sequence": self.first_sequence,
            "frame_rate": self.frame_rate,
            "has_audio": self.has_audio,
            "audio_kbps": self.audio_kbps,
            "preset": self.preset,
            "encryption": self.encryption,
            "key_rotation": self.key_rotation,
            "ts_offset": self.ts_offset,
            "idle_seconds": self.idle_seconds,
            "mend_seconds": self.mend_seconds,
            # (only where there are: a reader from before it takes no field it does not know)
            **({"captions": True} if self.captions else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamSettings:
        renditions = [Rendition.from_dict(r) for r in data["renditions"]]
        return cls(**{**known_fields(cls, data), "renditions": renditions})


def is_json_number(value: Any) -> bool:
    """Whether ``value`` is a JSON number as ``json`` reads one (``float()`` would also
    take ``true`` as 1 and ``"6"`` as 6)."""
    return type(value) in (int, float)


def stream_config(
    declared: dict[str, Any],
    width: int,
    height: int,
    frame_rate: float,
    has_audio: bool,
    settings: Settings,
    first_duration: float = 0.0,
    captions: bool = False,
) -> StreamSettings:
    """A stream's settings: ``stream.json`` over the functions' defaults, and its ladder.

    ``stream.json`` may set ``ladder`` ("720:2800,360:800"), ``segment_seconds`` (the
    target duration), ``window`` (segments in a sliding playlist; 0 keeps all, an
    EVENT playlist), ``gap_seconds``, ``first_sequence``, ``encryption`` ("none" or
    "aes-128", else the stack's ``Encryption``, aes-128 where that is cbcs) and
    ``key_rotation_segments`` (a new key every N segments; 0, the default, keeps one) and
    ``idle_seconds`` (no new segment for that long ends the stream; 0 never) and
    ``mend_seconds`` (how long after its end an upload may still mend one of its gaps).
    Undeclared, the target duration is the functions' default or, if longer, the first
    segment's (to 60 s): it holds for the stream's life, so a venue that cuts 6 s
    segments is not refused.
    """
    _known_only(declared)
    for name in ("segment_seconds", "gap_seconds", "idle_seconds", "mend_seconds"):
        # float() would take true as 1 s and "6" as 6 s: a JSON number or nothing.
        value = declared.get(name, 0)
        if not is_json_number(value):
            raise StreamConfigError(f"stream.json: {name} is {value!r:.40}; give a number")
    try:
        ladder = str(declared.get("ladder", settings.ladder))
        parse_ladder(ladder)
    except ConfigurationError as exc:
        raise StreamConfigError(f"stream.json: {exc}") from None
    try:
        segment_seconds = float(
            declared.get(
                "segment_seconds",
                min(60, max(settings.segment_seconds, rounded_duration(first_duration))),
            )
        )
        gap_seconds = float(
            declared.get("gap_seconds", settings.live_gap_seconds or 3 * segment_seconds)
        )
        idle_seconds = float(declared.get("idle_seconds", max(IDLE_SECONDS, 2 * gap_seconds)))
        mend_seconds = float(declared.get("mend_seconds", MEND_SECONDS))
    except (TypeError, ValueError, OverflowError) as exc:  # Overflow: past a float's range
        raise StreamConfigError(f"stream.json: {exc}") from None
    window = _whole(declared, "window", settings.live_window, MAX_SEQUENCE)
    if 0 < window < MIN_LIVE_WINDOW:
        raise StreamConfigError(
            f"stream.json: window is {window}; give 0 (every segment) or {MIN_LIVE_WINDOW} "
            f"or more: {LIVE_WINDOW_REASON}"
        )
    first = declared.get("first_sequence")
    first_sequence = None if first is None else _whole(declared, "first_sequence", 0, MAX_SEQUENCE)
    # Live segments are MPEG-TS: a stack whose uploads default to cbcs (CMAF) protects
    # its streams with the TS method, AES-128.
    encryption = declared.get("encryption", LIVE_ENCRYPTION[settings.encryption])
    if encryption not in LIVE_ENCRYPTIONS:
        raise StreamConfigError(
            f"stream.json: encryption is {encryption!r}; live segments are MPEG-TS: use one "
            f"of {', '.join(LIVE_ENCRYPTIONS)}"
        )
    if encryption == "none" and settings.encryption != "none":
        # A venue's encoder is not trusted with what the stack protects (SECURITY.md).
        raise StreamConfigError(
            "stream.json: encryption is 'none', and this stack protects every stream "
            f"(Encryption={settings.encryption}): leave it out, or ask for aes-128"
        )
    rotation = declared.get("key_rotation_segments", 0)
    if type(rotation) is not int or not 0 <= rotation <= 1_000_000:
        raise StreamConfigError(
            f"stream.json: key_rotation_segments is {rotation!r}; give a whole number of "
            "segments, 0 for one key"
        )
    if rotation and encryption == "none":
        raise StreamConfigError("stream.json: key_rotation_segments needs encryption aes-128")
    # NaN passes no comparison: each bound is asked the way round that refuses it.
    if not (0.5 <= segment_seconds <= 60 and 0 < gap_seconds <= MAX_GAP_SECONDS):
        raise StreamConfigError(
            f"stream.json: segment_seconds must be 0.5 to 60 and gap_seconds more than 0, "
            f"at most {MAX_GAP_SECONDS:.0f} (a day)"
        )
    if not (idle_seconds == 0 or gap_seconds < idle_seconds <= MAX_IDLE_SECONDS):
        raise StreamConfigError(
            f"stream.json: idle_seconds must be 0 (never ended for want of segments) or more "
            f"than gap_seconds ({gap_seconds:g}), at most {MAX_IDLE_SECONDS:.0f} (a week)"
        )
    if not 0 <= mend_seconds <= MAX_MEND_SECONDS:
        raise StreamConfigError(
            f"stream.json: mend_seconds must be 0 (no mending once ended) to "
            f"{MAX_MEND_SECONDS:.0f} (a year)"
        )
    return StreamSettings(
        renditions=build_ladder(width, height, frame_rate, ladder),
        segment_seconds=segment_seconds,
        window=window,
        gap_seconds=gap_seconds,
        first_sequence=first_sequence,
        frame_rate=frame_rate,
        has_audio=has_audio,
        captions=captions,
        audio_kbps=settings.audio_kbps,
        preset=settings.x264_preset,
        encryption=str(encryption),
        key_rotation=rotation,
        ts_offset=TS_OFFSET,
        idle_seconds=idle_seconds,
        mend_seconds=mend_seconds,
    )


# What ``stream.json`` may set.
SETTINGS_NAMES = frozenset(
    {"ladder", "segment_seconds", "window", "gap_seconds", "first_sequence", "encryption",
     "key_rotation_segments", "idle_seconds", "mend_seconds"}
)  # fmt: skip


def _known_only(declared: dict[str, Any]) -> None:
    unknown = sorted(set(declared) - SETTINGS_NAMES)
    if unknown:
        raise StreamConfigError(f"stream.json has unknown settings: {', '.join(unknown)}")


def _whole(declared: dict[str, Any], name: str, default: int, most: int) -> int:
    """``stream.json``'s ``name``: a whole number from 0 to ``most``, or a named error."""
    value = declared.get(name, default)
    if type(value) is not int or not 0 <= value <= most:
        raise StreamConfigError(
            f"stream.json: {name} is {value!r}; give a whole number from 0 to {most}"
        )
    return value


def declared_config(bucket: str, stream: str, clients: Clients) -> dict[str, Any]:
    ingest = Bucket(clients.s3, bucket)
    key = f"{LIVE_PREFIX}{stream}/{STREAM_CONFIG}"
    if not ingest.exists(key):
        return {}
    body = ingest.get_small(key, MAX_RECORD_BYTES)
    if body is None:
        raise StreamConfigError(f"stream.json is more than {MAX_RECORD_BYTES} bytes")
    try:
        declared = json.loads(body)
    except (ValueError, RecursionError) as exc:  # not JSON, or nested deeper than Python goes
        raise StreamConfigError(f"stream.json is not JSON: {exc}") from None
    if not isinstance(declared, dict):
        raise StreamConfigError("stream.json must be a JSON object")
    _known_only(declared)
    return declared
