"""Checks a published HLS asset the way a player and a strict validator would."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import m3u8

from workflow.local.binaries import ffmpeg_binary

NODE_TOOLS = Path(__file__).parent / "node"


@dataclass
class Stream:
    """What one rendition's segments hold, read back in playlist order."""

    frames: int = 0
    first_pts: float = 0.0
    end_pts: float = 0.0
    duplicates: int = 0
    largest_gap: float = 0.0
    decode_errors: str = ""
    width: int = 0
    height: int = 0
    pix_fmt: str = ""
    codec: str = ""
    keyframes_at_segment_starts: bool = True
    keyframes: int = 0
    segments: int = 0

    @property
    def duration(self) -> float:
        return self.end_pts - self.first_pts


@dataclass
class Asset:
    root: Path
    master: m3u8.M3U8
    video: dict[str, Stream] = field(default_factory=dict)
    audio: Stream | None = None


def read_asset(root: Path) -> Asset:
    """Read every rendition of the asset at ``root`` (a folder with ``master.m3u8``)."""
    master = m3u8.load(str(root / "master.m3u8"))
    asset = Asset(root, master)
    for playlist in master.playlists:
        asset.video[playlist.uri.split("/")[0]] = read_rendition(root / playlist.uri, "video")
    for media in master.media:
        if media.type == "AUDIO" and media.uri:
            asset.audio = read_rendition(root / media.uri, "audio")
    return asset


def read_rendition(playlist_path: Path, kind: str) -> Stream:
    """Concatenate a media playlist's TS segments and inspect the result."""
    playlist = m3u8.load(str(playlist_path))
    joined = playlist_path.parent / f".joined-{kind}.ts"
    with joined.open("wb") as out:
        for segment in playlist.segments:
            out.write((playlist_path.parent / segment.uri).read_bytes())
    starts = []
    with av.open(str(joined)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        report = Stream(codec=stream.codec_context.name)
        if kind == "video":
            report.width = stream.codec_context.width
            report.height = stream.codec_context.height
            report.pix_fmt = stream.codec_context.pix_fmt or ""
        times, durations, keys = [], [], []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            times.append(float(packet.pts * packet.time_base))
            durations.append(float((packet.duration or 0) * packet.time_base))
            if packet.is_keyframe:
                keys.append(round(times[-1], 3))
    times.sort()
    report.frames = len(times)
    report.first_pts = times[0]
    step = min((b - a for a, b in pairwise(times) if b > a), default=0.0)
    report.end_pts = times[-1] + (max(durations) if durations and max(durations) else step)
    report.duplicates = sum(1 for a, b in pairwise(times) if b - a < 1e-6)
    report.largest_gap = max((b - a for a, b in pairwise(times)), default=0.0)
    if kind == "video":
        offset = 0.0
        for segment in playlist.segments:
            starts.append(round(report.first_pts + offset, 3))
            offset += segment.duration
        report.keyframes, report.segments = len(keys), len(playlist.segments)
        key_set = set(keys)
        report.keyframes_at_segment_starts = all(
            any(abs(s - k) < 0.06 for k in key_set) for s in starts
        )
    decoded = subprocess.run(
        # (on the stream's own clock: at 1/frame rate, a variable rate's fast frames would
        # reach the null muxer with equal timestamps and read as errors)
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-i", str(joined)]
        + ["-enc_time_base:v", "demux", "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    report.decode_errors = decoded.stderr.strip() + ("" if decoded.returncode == 0 else " (exit)")
    joined.unlink()
    return report


def strict_parse(root: Path) -> subprocess.CompletedProcess[str]:
    """Run the strict npm ``hls-parser`` over the master and every media playlist."""
    files = [str(p) for p in sorted(root.rglob("*.m3u8"))]
    return subprocess.run(
        ["node", str(NODE_TOOLS / "validate.js"), *files], capture_output=True, text=True
    )


def read_manifest(root: Path) -> dict[str, Any]:
    """``root/manifest.json``, validated against the schema file the project publishes."""
    import jsonschema

    from workflow.formats.manifest import SCHEMA, json_schema

    manifest = json.loads((root / "manifest.json").read_text())
    jsonschema.validate(manifest, json_schema())
    assert manifest["schema"] == SCHEMA
    return dict(manifest)
