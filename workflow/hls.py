"""HLS playlists, rendered from plain values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from workflow.ladder import Rendition


@dataclass(frozen=True)
class SegmentEntry:
    uri: str
    duration: float
    bytes: int


@dataclass(frozen=True)
class VariantEntry:
    """One ``EXT-X-STREAM-INF`` line of a master playlist."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    frame_rate: float
    codecs: str


@dataclass(frozen=True)
class AudioEntry:
    uri: str
    group: str
    channels: int
    name: str = "Main"


def target_duration(segments: Sequence[SegmentEntry]) -> int:
    """``EXT-X-TARGETDURATION``: no segment may be longer, rounded to an integer."""
    return max(1, math.ceil(max((s.duration for s in segments), default=1.0) - 1e-3))


def media_playlist(segments: Sequence[SegmentEntry], init: str | None = None) -> str:
    """A complete VOD media playlist for ``segments``; fMP4 ones name their ``init``."""
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{3 if init is None else 7}",
        f"#EXT-X-TARGETDURATION:{target_duration(segments)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if init is not None:
        lines.append(f'#EXT-X-MAP:URI="{init}"')
    for segment in segments:
        lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def peak_bandwidth(segments: Sequence[SegmentEntry]) -> int:
    """The highest bitrate of any segment, in bits per second."""
    return max((math.ceil(s.bytes * 8 / s.duration) for s in segments if s.duration > 0), default=0)


def average_bandwidth(segments: Sequence[SegmentEntry]) -> int:
    total = sum(s.duration for s in segments)
    return math.ceil(sum(s.bytes for s in segments) * 8 / total) if total > 0 else 0


def measured_variants(
    renditions: Sequence[Rendition],
    playlists: Mapping[str, Sequence[SegmentEntry]],
    frame_rate: float,
) -> list[VariantEntry]:
    """The master's line for each rung, with bitrates measured from its segments and,
    where ``playlists`` has an ``"audio"`` entry, the audio's added to each."""
    audio = playlists.get("audio", [])
    codecs_audio = ",mp4a.40.2" if "audio" in playlists else ""
    return [
        VariantEntry(
            uri=f"{rung.name}/index.m3u8",
            bandwidth=peak_bandwidth(playlists[rung.name]) + peak_bandwidth(audio),
            average_bandwidth=average_bandwidth(playlists[rung.name]) + average_bandwidth(audio),
            width=rung.width,
            height=rung.height,
            frame_rate=frame_rate,
            codecs=rung.codecs + codecs_audio,
        )
        for rung in renditions
    ]


def master_playlist(
    variants: Sequence[VariantEntry],
    audio: AudioEntry | None,
    *,
    version: int = 4,
    subtitles: Sequence[str] = (),
    subtitle_group: str | None = None,
) -> str:
    """The multivariant playlist: every rung, the audio rendition group if any, and
    ``subtitles`` (ready ``EXT-X-MEDIA`` lines of ``subtitle_group``)."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    lines += subtitles
    if audio is not None:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{audio.group}",NAME="{audio.name}",'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="{audio.channels}",URI="{audio.uri}"'
        )
    for v in variants:
        attributes = [
            f"BANDWIDTH={v.bandwidth}",
            f"AVERAGE-BANDWIDTH={v.average_bandwidth}",
            f"RESOLUTION={v.width}x{v.height}",
            f"FRAME-RATE={v.frame_rate:.3f}",
            f'CODECS="{v.codecs}"',
        ]
        if audio is not None:
            attributes.append(f'AUDIO="{audio.group}"')
        if subtitles and subtitle_group:
            attributes.append(f'SUBTITLES="{subtitle_group}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), v.uri]
    return "\n".join(lines) + "\n"
