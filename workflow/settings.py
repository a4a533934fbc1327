"""Settings parsed once, at cold start, from a function's environment."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from workflow.errors import ConfigurationError
from workflow.media.ladder import parse_ladder
from workflow.media.per_title import parse_targets

_N = TypeVar("_N", int, float)


@dataclass(frozen=True)
class Limits:
    """Bounds an upload must respect before any decoding starts."""

    max_bytes: int = 20 * 1024**3
    max_seconds: float = 4 * 3600.0
    max_pixels: int = 4096 * 2304
    max_fps: float = 120.0
    max_streams: int = 16


@dataclass(frozen=True)
class Settings:
    """Everything a vidflow function reads from its environment."""

    output_bucket: str = ""
    state_machine_arn: str = ""
    ladder: str = "1080:5000,720:2800,480:1400,360:800"
    audio_kbps: int = 128
    chunk_seconds: float = 12.0
    # The audio is encoded in pieces this long, in parallel (a file under one and a half
    # pieces is one); 0 encodes it in one piece.
    audio_piece_seconds: float = 120.0
    segment_seconds: float = 4.0
    x264_preset: str = "veryfast"
    map_max_concurrency: int = 40
    live_table: str = ""
    live_state_machine_arn: str = ""
    clip_state_machine_arn: str = ""
    # Live playlists: newest segments kept (0 keeps all, an EVENT playlist) and how
    # long a missing segment is waited for (0: three segment durations).
    live_window: int = 0
    live_gap_seconds: float = 0.0
    # VOD output: "hls-ts" (MPEG-TS segments) or "cmaf" (fMP4 segments behind both an
    # HLS and a DASH manifest); an upload's ``vidflow-packaging`` metadata overrides it.
    packaging: str = "hls-ts"
    # The ladder: "fixed" (``ladder`` as it is) or "per-title" (each rung's bitrate chosen
    # from test encodes of the title, ``media.per_title``); an upload's ``vidflow-ladder``
    # metadata overrides it. ``target_vmaf``: what per-title aims each rung at.
    ladder_mode: str = "fixed"
    target_vmaf: str = "95"
    # "sampled": each chunk job scores its rungs with VMAF and PSNR (``media.quality``)
    # for the manifest's quality report; "off": no scores.
    quality_report: str = "sampled"
    # A thumbnail (and trick-play tile) every this many seconds of video; 0: no images.
    thumbnail_seconds: float = 5.0
    # The reconciler: the ingest bucket it lists, how long an upload may wait for its job
    # before it starts one, and how far back it looks.
    ingest_bucket: str = ""
    reconcile_grace_seconds: float = 600.0
    reconcile_lookback_hours: float = 48.0
    # Where outcomes are announced (``workflow.events``), and the base URL that subscribers
    # reach the output bucket's objects at (empty: their ``s3://`` URIs).
    event_bus: str = ""
    playback_base_url: str = ""
    # Protected playback (``workflow.keys``): "none", "aes-128" (hls-ts segments
    # encrypted whole) or "cbcs" (cmaf samples, common encryption); an upload's
    # ``vidflow-encryption`` metadata overrides it. Content keys are made once per asset,
    # wrapped by ``content_key_kms_key``, in ``keys_table``; players fetch them from the
    # key service at ``key_service_url`` with a token signed with the secret named
    # ``playback_secret``.
    encryption: str = "none"
    keys_table: str = ""
    content_key_kms_key: str = ""
    playback_secret: str = ""
    key_service_url: str = ""
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``); fail fast on bad values."""
        env = os.environ if env is None else env
        limits = Limits(
            max_bytes=_number(env, "MAX_INPUT_BYTES", Limits.max_bytes, int),
            max_seconds=_number(env, "MAX_INPUT_SECONDS", Limits.max_seconds, float),
            max_pixels=_number(env, "MAX_INPUT_PIXELS", Limits.max_pixels, int),
            max_fps=_number(env, "MAX_INPUT_FPS", Limits.max_fps, float),
            max_streams=_number(env, "MAX_INPUT_STREAMS", Limits.max_streams, int),
        )
        settings = cls(
            output_bucket=env.get("OUTPUT_BUCKET", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            ladder=env.get("LADDER", cls.ladder),
            audio_kbps=_number(env, "AUDIO_KBPS", cls.audio_kbps, int),
            chunk_seconds=_number(env, "CHUNK_SECONDS", cls.chunk_seconds, float),
            audio_piece_seconds=_number(
                env, "AUDIO_PIECE_SECONDS", cls.audio_piece_seconds, float, allow_zero=True
            ),
            segment_seconds=_number(env, "SEGMENT_SECONDS", cls.segment_seconds, float),
            x264_preset=env.get("X264_PRESET", cls.x264_preset),
            map_max_concurrency=_number(env, "MAP_MAX_CONCURRENCY", cls.map_max_concurrency, int),
            live_table=env.get("LIVE_TABLE", ""),
            live_state_machine_arn=env.get("LIVE_STATE_MACHINE_ARN", ""),
            clip_state_machine_arn=env.get("CLIP_STATE_MACHINE_ARN", ""),
            live_window=_number(env, "LIVE_WINDOW", cls.live_window, int, allow_zero=True),
            live_gap_seconds=_number(
                env, "LIVE_GAP_SECONDS", cls.live_gap_seconds, float, allow_zero=True
            ),
            packaging=env.get("PACKAGING", cls.packaging),
            ladder_mode=env.get("LADDER_MODE", cls.ladder_mode),
            target_vmaf=env.get("TARGET_VMAF", cls.target_vmaf),
            quality_report=env.get("QUALITY_REPORT", cls.quality_report),
            thumbnail_seconds=_number(
                env, "THUMBNAIL_SECONDS", cls.thumbnail_seconds, float, allow_zero=True
            ),
            ingest_bucket=env.get("INGEST_BUCKET", ""),
            reconcile_grace_seconds=_number(
                env, "RECONCILE_GRACE_SECONDS", cls.reconcile_grace_seconds, float, allow_zero=True
            ),
            reconcile_lookback_hours=_number(
                env, "RECONCILE_LOOKBACK_HOURS", cls.reconcile_lookback_hours, float
            ),
            event_bus=env.get("EVENT_BUS_NAME", ""),
            playback_base_url=env.get("PLAYBACK_BASE_URL", ""),
            encryption=env.get("ENCRYPTION", cls.encryption),
            keys_table=env.get("KEYS_TABLE", ""),
            content_key_kms_key=env.get("CONTENT_KEY_KMS_KEY", ""),
            playback_secret=env.get("PLAYBACK_SECRET", ""),
            key_service_url=env.get("KEY_SERVICE_URL", ""),
            limits=limits,
        )
        for name, value, allowed in (
            ("PACKAGING", settings.packaging, PACKAGINGS),
            ("LADDER_MODE", settings.ladder_mode, LADDER_MODES),
            ("QUALITY_REPORT", settings.quality_report, QUALITY_REPORTS),
            ("ENCRYPTION", settings.encryption, ENCRYPTIONS),
        ):
            if value not in allowed:
                raise ConfigurationError(
                    f"{name} must be one of {', '.join(allowed)}, got {value!r}"
                )
        sides = {side for side, _ in parse_ladder(settings.ladder)}
        strays = sorted(set(parse_targets(settings.target_vmaf)) - sides - {0})
        if strays:
            raise ConfigurationError(
                f"TARGET_VMAF names {', '.join(map(str, strays))}, not a rung of LADDER "
                f"({settings.ladder}): its target would never apply"
            )
        if "?" in settings.playback_base_url or "#" in settings.playback_base_url:
            raise ConfigurationError(
                "PLAYBACK_BASE_URL may hold no query or fragment (keys are added after it), "
                f"got {settings.playback_base_url!r}"
            )
        if not 0.5 <= settings.segment_seconds <= 60 or settings.chunk_seconds > 3600:
            raise ConfigurationError(
                "SEGMENT_SECONDS must be 0.5 to 60 and CHUNK_SECONDS at most 3600, got "
                f"{settings.segment_seconds} and {settings.chunk_seconds}"
            )
        if 0 < settings.thumbnail_seconds < MIN_THUMBNAIL_SECONDS or (
            settings.thumbnail_seconds > MAX_THUMBNAIL_SECONDS
        ):
            raise ConfigurationError(
                f"THUMBNAIL_SECONDS must be 0 (no images) or {MIN_THUMBNAIL_SECONDS:g} to "
                f"{MAX_THUMBNAIL_SECONDS:g}, got {settings.thumbnail_seconds:g}"
            )
        if 0 < settings.live_window < MIN_LIVE_WINDOW:
            raise ConfigurationError(
                f"LIVE_WINDOW must be 0 (every segment) or {MIN_LIVE_WINDOW} or more, got "
                f"{settings.live_window}: {LIVE_WINDOW_REASON}"
            )
        packaging = ENCRYPTION_PACKAGING.get(settings.encryption, settings.packaging)
        if packaging != settings.packaging:
            raise ConfigurationError(
                f"ENCRYPTION {settings.encryption} protects PACKAGING {packaging}, got "
                f"{settings.packaging}: every upload without options would fail"
            )
        if settings.reconcile_grace_seconds >= settings.reconcile_lookback_hours * 3600:
            raise ConfigurationError(
                "RECONCILE_GRACE_SECONDS must be less than the reconciler's lookback "
                f"({settings.reconcile_lookback_hours:g} h), got "
                f"{settings.reconcile_grace_seconds:g}: it would look at no upload"
            )
        ratio = settings.chunk_seconds / settings.segment_seconds
        if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6:
            raise ConfigurationError(
                "CHUNK_SECONDS must be a positive multiple of SEGMENT_SECONDS, got "
                f"{settings.chunk_seconds} and {settings.segment_seconds}"
            )
        return settings


# The closest thumbnails may be (THUMBNAIL_SECONDS, 0 aside). They are decoded from
# keyframes, mostly a second or more apart, so closer ticks repeat frames; and every 100
# ticks are a Map item writing 100 objects: 0.01 s would make 3,600 items of an hour.
MIN_THUMBNAIL_SECONDS = 1.0
# The farthest apart: each images item pads its span by one interval, decoding as it goes.
MAX_THUMBNAIL_SECONDS = 3600.0
# The packagings vidflow makes (the PACKAGING setting, an upload's metadata).
PACKAGINGS = ("hls-ts", "cmaf")
# How the ladder is chosen (the LADDER_MODE setting, an upload's metadata), and whether
# the chunk jobs score their output.
LADDER_MODES = ("fixed", "per-title")
QUALITY_REPORTS = ("sampled", "off")
# How segments are protected (the ENCRYPTION setting, an upload's metadata), and the one
# packaging each method applies to.
ENCRYPTIONS = ("none", "aes-128", "cbcs")
ENCRYPTION_PACKAGING = {"aes-128": "hls-ts", "cbcs": "cmaf"}


# The fewest segments a sliding live playlist holds: a player stays three target
# durations from its end (RFC 8216 6.2.2, 6.3.3), so a shorter one leaves it nothing.
MIN_LIVE_WINDOW = 3
LIVE_WINDOW_REASON = "players keep three segments from a live playlist's end (RFC 8216 6.3.3)"


def _number(
    env: Mapping[str, str], name: str, default: _N, kind: type[_N], allow_zero: bool = False
) -> _N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except (ValueError, OverflowError):
        number = "a whole number" if kind is int else "a number"
        raise ConfigurationError(f"{name} must be {number}, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        kind_of = "zero or more" if allow_zero else "positive"
        raise ConfigurationError(f"{name} must be {kind_of}, got {raw!r}")
    return value
