"""``manifest.json``: what a published asset holds, for machines, in a versioned schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workflow.hls import AudioEntry, SegmentEntry, VariantEntry
from workflow.ladder import Rendition

SCHEMA = "vidflow.manifest/1"


def build_manifest(
    *,
    job_id: str,
    source: dict[str, Any],
    plan: dict[str, Any],
    renditions: list[tuple[Rendition, VariantEntry]],
    playlists: dict[str, list[SegmentEntry]],
    audio: AudioEntry | None,
    timings: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of one asset: its source, every rendition, the audio, and timings.

    ``source`` is the upload (bucket, key, ETag, size) with the probe's facts;
    ``playlists`` maps each rung's name (and ``"audio"``) to its segments.
    """
    return {
        "schema": SCHEMA,
        "job_id": job_id,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "source": {k: v for k, v in source.items() if k != "audio"},
        "source_audio": source.get("audio"),
        "master": "master.m3u8",
        "duration": source["duration"],
        "segment_seconds": plan["segment_seconds"],
        "chunks": len(plan["chunks"]),
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
            "kbps": plan["audio_kbps"],
            **_totals(playlists["audio"]),
        },
        "timings": timings,
    }


def _totals(segments: list[SegmentEntry]) -> dict[str, Any]:
    return {
        "segments": len(segments),
        "duration": round(sum(s.duration for s in segments), 6),
        "bytes": sum(s.bytes for s in segments),
    }
