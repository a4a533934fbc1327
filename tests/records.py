"""Typed records as a test needs them: whole, with a few fields chosen."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from workflow.live.config import StreamSettings
from workflow.media.audio_pieces import plan_audio_pieces
from workflow.media.chunks import Chunk
from workflow.media.facts import AudioFacts, SourceFacts
from workflow.media.ladder import Rendition
from workflow.vod.records import Plan

FACTS = SourceFacts(
    container="mp4",
    container_start=0.0,
    size_bytes=1_000_000,
    duration=8.0,
    start_time=0.0,
    video_codec="h264",
    profile="High",
    pix_fmt="yuv420p",
    bit_depth=8,
    coded_width=640,
    coded_height=360,
    display_width=640,
    display_height=360,
    rotation=0,
    frame_rate=30.0,
    variable_frame_rate=False,
    video_bitrate=900_000,
    audio=AudioFacts("aac", 2, 48_000, 0.0),
    keyframe_count=4,
)


def plan(facts: dict[str, Any] | None = None, **changes: Any) -> Plan:
    """A plan of two 4 s chunks in one 360p rung and the audio in one piece (none without
    audio), with ``facts`` and fields changed."""
    facts_now = replace(FACTS, **(facts or {}))
    base = Plan(
        facts=facts_now,
        renditions=[Rendition("360p", 640, 360, 800, "3.0")],
        chunks=[
            Chunk(0, 0.0, 4.0, 0, [0.0]),
            Chunk(1, 4.0, 8.0, 1, [4.0]),
        ],
        audio_pieces=plan_audio_pieces(facts_now.duration, 0.0, 4.0) if facts_now.audio else [],
        segment_seconds=4.0,
        audio_kbps=128,
        preset="veryfast",
        packaging="hls-ts",
        thumbnail_seconds=0.0,
        extras=[],
        timings={"probe": 0.1, "plan": 0.1},
    )
    return replace(base, **changes)


def stream_settings(**changes: Any) -> StreamSettings:
    """A live stream's settings: 2 s segments in one 360p rung, no audio, with fields changed."""
    base = StreamSettings(
        renditions=[Rendition("360p", 640, 360, 800, "3.0")],
        segment_seconds=2.0,
        window=0,
        gap_seconds=6.0,
        first_sequence=None,
        frame_rate=30.0,
        has_audio=False,
        audio_kbps=128,
        preset="veryfast",
    )
    return replace(base, **changes)
