"""Chunks encoded separately must stitch into one gap-free, frame-exact rendition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.asset import read_rendition
from tests.source_facts import decode_video
from workflow.formats import hls
from workflow.local.binaries import ffmpeg_binary
from workflow.media import encode
from workflow.media.chunks import plan_chunks
from workflow.media.ladder import build_ladder
from workflow.media.probe import probe
from workflow.media.runner import listed_segments, run_ffmpeg
from workflow.settings import Limits


def encode_in_chunks(
    source: Path, workdir: Path, chunk_seconds: float, segment_seconds: float
) -> Any:
    data = source.read_bytes()
    probed = probe(str(source), head=data[:65536], size=len(data), limits=Limits())
    facts = probed.facts
    ladder = build_ladder(
        facts.display_width, facts.display_height, facts.frame_rate, "240:400,144:200"
    )
    chunks = plan_chunks(probed.index, chunk_seconds, segment_seconds)
    segments: dict[str, list[hls.SegmentEntry]] = {r.name: [] for r in ladder}
    for chunk in chunks:
        chunk_dir = workdir / f"chunk{chunk.index}"
        for rung in ladder:
            (chunk_dir / rung.name).mkdir(parents=True)
        run_ffmpeg(
            encode.build_chunk_command(
                str(source),
                facts.container,
                facts.container_start,
                chunk,
                ladder,
                chunk_dir,
                binary=ffmpeg_binary(),
                preset="ultrafast",
            ),
            timeout=300,
        )
        for rung in ladder:
            listed = listed_segments(
                chunk_dir / rung.name,
                chunk.start + encode.TS_OFFSET,
                chunk.end + encode.TS_OFFSET,
            )
            for segment in listed:
                target = workdir / rung.name / segment.path.name
                target.parent.mkdir(exist_ok=True)
                segment.path.rename(target)
                segments[rung.name].append(
                    hls.SegmentEntry(target.name, segment.duration, target.stat().st_size)
                )
    for name, entries in segments.items():
        (workdir / name / "index.m3u8").write_text(hls.media_playlist(entries))
    return facts, ladder, chunks


@pytest.mark.parametrize("name", ["h264_aac_2gop", "mpegts_bframes", "long_gop", "vfr"])
def test_chunk_boundaries_are_invisible(name: str, clip: Any, tmp_path: Path) -> None:
    # GIVEN a source cut into many short chunks, each encoded by its own ffmpeg
    source = clip(name)
    facts, ladder, chunks = encode_in_chunks(source, tmp_path, chunk_seconds=2, segment_seconds=1)
    assert len(chunks) >= 2
    truth = decode_video(source)
    frame = 1 / facts.frame_rate
    for rung in ladder:
        # WHEN the rung's segments are played back in playlist order
        played = read_rendition(tmp_path / rung.name / "index.m3u8", "video")
        # THEN every source frame is there once, in order, and decodes cleanly
        assert played.frames == truth.frames
        assert played.duplicates == 0
        assert played.decode_errors == ""
        assert played.keyframes_at_segment_starts
        if not facts.variable_frame_rate:
            assert played.largest_gap <= frame * 1.01
        assert abs(played.duration - truth.duration) <= max(0.35, 0.03 * truth.duration)
        assert (played.width, played.height) == (rung.width, rung.height)
