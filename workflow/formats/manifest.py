"""``manifest.json``: what a published asset holds, for machines, in a versioned schema.

The schema is ``workflow/formats/manifest.schema.json`` (JSON Schema 2020-12); the tests
validate every manifest vidflow writes against it. A change that could break a
reader (a field removed, renamed or retyped) bumps ``SCHEMA``; new optional
fields do not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflow.formats.hls import AudioEntry, SegmentEntry, VariantEntry
from workflow.media.ladder import Rendition
from workflow.media.subtitles import SubtitleTrack
from workflow.names import AUDIO

SCHEMA = "vidflow.manifest/5"
SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")


def json_schema() -> dict[str, Any]:
    """The JSON Schema every ``manifest.json`` conforms to."""
    return dict(json.loads(SCHEMA_FILE.read_text()))


def build_manifest(
    *,
    job_id: str,
    source: dict[str, Any],
    segment_seconds: float,
    chunks: int,
    audio_kbps: int,
    renditions: list[tuple[Rendition, VariantEntry]],
    playlists: dict[str, list[SegmentEntry]],
    audio: AudioEntry | None,
    timings: dict[str, Any],
    packaging: str = "hls-ts",
    images: dict[str, Any] | None = None,
    subtitles: Sequence[SubtitleTrack] = (),
    ladder: dict[str, Any] | None = None,
    quality: dict[str, Any] | None = None,
    encryption: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of one asset: its source, every rendition, the audio, and timings.

    ``source`` is the upload (bucket, key, ETag, size) with the probe's facts;
    ``playlists`` maps each rung's name (and ``"audio"``) to its segments. ``ladder`` is
    how the ladder was chosen (``Plan.ladder``), ``quality`` the quality report, if any;
    ``encryption`` how the segments are protected (never the key itself).
    """
    return {
        "schema": SCHEMA,
        "job_id": job_id,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "source": {k: v for k, v in source.items() if k != "audio"},
        "source_audio": source.get("audio"),
        "packaging": packaging,
        "master": "master.m3u8",
        "dash": "manifest.mpd" if packaging == "cmaf" else None,
        "duration": source["duration"],
        "segment_seconds": segment_seconds,
        "chunks": chunks,
        "renditions": [
            {
                **rung.to_dict(),
                "playlist": variant.uri,
                "codecs": variant.codecs,
                "bandwidth": variant.bandwidth,
                "average_bandwidth": variant.average_bandwidth,
                **_totals(playlists[rung.name]),
            }
            for rung, variant in renditions
        ],
        "audio": None
        if audio is None
        else {
            "playlist": audio.uri,
            "group": audio.group,
            "codecs": "mp4a.40.2",
            "channels": audio.channels,
            "language": audio.language,
            "kbps": audio_kbps,
            **_totals(playlists[AUDIO]),
        },
        "images": None
        if images is None
        else {k: images[k] for k in ("poster", "poster_time", "thumbnails", "sprites")},
        "subtitles": [
            {
                "language": t.language,
                "name": t.display_name,
                "playlist": t.playlist_uri,
                "webvtt": t.webvtt_uri,
            }
            for t in subtitles
        ],
        "timings": timings,
        "ladder": ladder or {"mode": "fixed"},
        "quality": quality,
        "encryption": encryption,
    }


def _totals(segments: list[SegmentEntry]) -> dict[str, Any]:
    return {
        "segments": len(segments),
        "duration": round(sum(s.duration for s in segments), 6),
        "bytes": sum(s.bytes for s in segments),
    }
