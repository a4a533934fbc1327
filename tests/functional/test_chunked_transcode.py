"""Chunks encoded separately must stitch into one gap-free, frame-exact rendition, wherever
the plan cuts and whatever the source's GOPs do."""

from __future__ import annotations

import itertools
import struct
import subprocess
from pathlib import Path
from typing import Any

import av
import pytest

from tests.asset import read_rendition
from tests.logs import own_log
from tests.source_facts import decode_video
from workflow.errors import UnsupportedInputError
from workflow.formats import hls
from workflow.local.binaries import ffmpeg_binary
from workflow.media import encode, rungs
from workflow.media.chunks import Chunk, FrameIndex, plan_chunks
from workflow.media.ladder import build_ladder
from workflow.media.probe import probe
from workflow.media.rungs import encode_chunk
from workflow.settings import Limits


def encode_in_chunks(
    source: Path,
    workdir: Path,
    chunk_seconds: float,
    segment_seconds: float,
    index: FrameIndex | None = None,
) -> Any:
    """Plan ``source`` (from ``index`` if given, else its probe's) and encode each chunk
    as TranscodeChunk does; write each rung's playlist."""
    data = source.read_bytes()
    probed = probe(str(source), head=data[:65536], size=len(data), limits=Limits())
    facts = probed.facts
    ladder = build_ladder(
        facts.display_width, facts.display_height, facts.frame_rate, "240:400,144:200"
    )
    chunks = plan_chunks(index or probed.index, chunk_seconds, segment_seconds)
    segments: dict[str, list[hls.SegmentEntry]] = {r.name: [] for r in ladder}
    for chunk in chunks:
        chunk_dir = workdir / f"chunk{chunk.index}"
        chunk_dir.mkdir()

        def commands(directory: Path, margin: float, chunk: Any = chunk) -> list[list[str]]:
            return [
                encode.build_chunk_command(
                    str(source),
                    facts.container,
                    facts.container_start,
                    chunk,
                    ladder,
                    directory,
                    margin=margin,
                    final=chunk is chunks[-1],
                    binary=ffmpeg_binary(),
                    preset="ultrafast",
                )
            ]

        rungs = encode_chunk(
            commands,
            chunk_dir,
            [rung.name for rung in ladder],
            chunk,
            facts.container_start,
            timeout=lambda: 300,
            final=chunk is chunks[-1],
        )
        for name, listed in rungs.items():
            for segment in listed:
                target = workdir / name / segment.path.name
                target.parent.mkdir(exist_ok=True)
                segment.path.rename(target)
                segments[name].append(
                    hls.SegmentEntry(target.name, segment.duration, target.stat().st_size)
                )
    for name, entries in segments.items():
        (workdir / name / "index.m3u8").write_text(hls.media_playlist(entries))
    return facts, ladder, chunks


def assert_every_frame_once(source: Path, workdir: Path, facts: Any, ladder: Any) -> None:
    truth = decode_video(source)
    frame = 1 / facts.frame_rate
    for rung in ladder:
        # WHEN the rung's segments are played back in playlist order
        played = read_rendition(workdir / rung.name / "index.m3u8", "video")
        # THEN every source frame is there once, in order, and decodes cleanly
        assert played.frames == truth.frames, rung.name
        assert played.duplicates == 0
        assert played.decode_errors == ""
        assert played.keyframes_at_segment_starts
        assert played.keyframes == played.segments, rung.name  # and nowhere else
        if not facts.variable_frame_rate:
            assert played.largest_gap <= frame * 1.01
        assert abs(played.duration - truth.duration) <= max(0.35, 0.03 * truth.duration)
        assert (played.width, played.height) == (rung.width, rung.height)


@pytest.mark.parametrize("name", ["h264_aac_2gop", "mpegts_bframes", "long_gop", "vfr"])
def test_chunk_boundaries_are_invisible(name: str, clip: Any, tmp_path: Path) -> None:
    # GIVEN a source cut into many short chunks, each encoded by its own ffmpeg
    source = clip(name)
    facts, ladder, chunks = encode_in_chunks(source, tmp_path, chunk_seconds=2, segment_seconds=1)
    assert len(chunks) >= 2
    assert_every_frame_once(source, tmp_path, facts, ladder)


@pytest.mark.parametrize(
    "frames",
    [
        "testsrc2=size=160x90:rate=1/3:duration=15",  # a slide every 3 s
        # 30 fps with a pause of 2.5 s (7 to 9.5 s) across a chunk's end
        "testsrc2=size=160x90:rate=30:duration=15,select='not(between(t\\,7\\,9.5))'",
    ],
    ids=["slides", "pause"],
)
def test_a_frame_shown_long_past_its_chunks_end_is_no_mislabelled_file(
    frames: str, tmp_path: Path
) -> None:
    # GIVEN a source whose frame before a chunk's end is shown until well after it
    source = tmp_path / "long_frames.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", frames,
         "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", "-g", "300",
         "-pix_fmt", "yuv420p", str(source)],
        check=True,
    )  # fmt: skip
    (tmp_path / "out").mkdir()
    # WHEN it is encoded in 4 s chunks
    _, ladder, chunks = encode_in_chunks(
        source, tmp_path / "out", chunk_seconds=4, segment_seconds=1
    )
    # THEN its chunks are encoded (their frames all start before their end), and every
    # frame is there once
    assert len(chunks) >= 3
    truth = decode_video(source)
    for rung in ladder:
        played = read_rendition(tmp_path / "out" / rung.name / "index.m3u8", "video")
        assert played.frames == truth.frames and played.duplicates == 0, rung.name
        assert abs(played.duration - truth.duration) <= 0.35, rung.name


def test_a_chunk_starting_between_two_frames_still_cuts_every_segment(tmp_path: Path) -> None:
    # GIVEN 59.94 fps MPEG-TS, planned by time: its chunks start between two frames, so
    # each chunk's first frame comes up to 16.7 ms after the chunk's start
    source = tmp_path / "ntsc.ts"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=60000/1001:duration=24",
         "-c:v", "libx264", "-preset", "ultrafast", str(source)],
        check=True,
    )  # fmt: skip
    (tmp_path / "out").mkdir()
    # WHEN it is encoded in 8 s chunks of 1 s segments
    facts, ladder, chunks = encode_in_chunks(
        source, tmp_path / "out", chunk_seconds=8, segment_seconds=1
    )
    frame = 1001 / 60000
    offsets = [(c.start - facts.start_time) % frame for c in chunks[1:]]
    assert facts.keyframe_count == 0 and any(1e-3 < o < frame - 1e-3 for o in offsets)
    # THEN every planned segment is its own (a cut missed makes two segments one) and
    # every frame is there once
    planned = sum(len(c.segment_starts) for c in chunks)
    for rung in ladder:
        text = (tmp_path / "out" / rung.name / "index.m3u8").read_text()
        durations = [float(x[8:].split(",")[0]) for x in text.split() if x.startswith("#EXTINF:")]
        assert len(durations) == planned, (rung.name, durations)
        assert max(durations) < 1.02, (rung.name, durations)
    assert_every_frame_once(source, tmp_path / "out", facts, ladder)


def test_a_seek_that_lands_past_the_chunk_is_made_again_from_further_back(
    clip: Any, tmp_path: Path
) -> None:
    # GIVEN an AVI with B-frames, whose first chunk starts after the container's start
    # (so it is entered with a seek) and whose seeks land on 4 s keyframes
    source = clip("avi_bframes")
    # WHEN it is encoded in 4 s chunks (the first chunk's seek lands past its end: ffmpeg
    # finds nothing to encode)
    facts, ladder, _ = encode_in_chunks(source, tmp_path, chunk_seconds=4, segment_seconds=2)
    # THEN that chunk is encoded again from further back, and every frame is there once
    # (its first segment runs to the next keyframe: the chunk's first frame is later than
    # the start its segment times count from)
    assert facts.container == "avi"
    truth = decode_video(source)
    for rung in ladder:
        played = read_rendition(tmp_path / rung.name / "index.m3u8", "video")
        assert played.frames == truth.frames, rung.name
        assert played.duplicates == 0 and played.decode_errors == ""
        assert played.keyframes_at_segment_starts


def flv_declaring(path: Path, seconds: int, declared: float) -> Path:
    """An FLV of ``seconds`` of video whose header says it lasts ``declared``."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=25:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", str(path)],
        check=True,
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    at = data.find(b"duration") + len(b"duration") + 1  # the AMF number's 8 bytes
    data[at : at + 8] = struct.pack(">d", declared)
    path.write_bytes(bytes(data))
    return path


def test_a_file_holding_more_than_it_declares_is_refused_by_name(tmp_path: Path) -> None:
    # GIVEN a 12 s FLV whose header says it lasts 4 s
    flv = flv_declaring(tmp_path / "long.flv", 12, 4.0)
    # WHEN it is planned from that header and encoded (the last chunk keeps every frame)
    # THEN the 8 s more it holds are not published under a 4 s playlist: it is refused
    (tmp_path / "out").mkdir()
    declared = r"until 12\.0\d* s, past the 4\.000 s it declares"
    with pytest.raises(UnsupportedInputError, match=declared):
        encode_in_chunks(flv, tmp_path / "out", chunk_seconds=2, segment_seconds=1)


def test_a_file_declaring_more_than_it_holds_is_planned_to_its_video_or_refused(
    tmp_path: Path,
) -> None:
    # GIVEN an 8 s FLV, whole, whose header says it lasts 16 s: its tags tell its video's
    # end, so it is planned to that and published whole
    flv = flv_declaring(tmp_path / "short.flv", 8, 16.0)
    (tmp_path / "flv").mkdir()
    facts, ladder, _ = encode_in_chunks(flv, tmp_path / "flv", chunk_seconds=2, segment_seconds=1)
    assert_every_frame_once(flv, tmp_path / "flv", facts, ladder)
    # AND a Matroska file that says 16 s in its header, its tracks' own lengths gone
    mkv = tmp_path / "short.mkv"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(flv), "-c", "copy",
         str(mkv)],
        check=True,
    )  # fmt: skip
    data = bytearray(mkv.read_bytes().replace(b"DURATION", b"DURATIOX"))
    at = data.find(b"\x44\x89\x88") + 3  # the Info's Duration, 8-byte float, in ms
    data[at : at + 8] = struct.pack(">d", 16000.0)
    mkv.write_bytes(bytes(data))
    # WHEN it is planned from that header and encoded
    # THEN the first chunk with nothing to encode, even read from the file's start, names
    # the span the header claims and the file does not hold
    (tmp_path / "mkv").mkdir()
    with pytest.raises(UnsupportedInputError, match=r"no video from 8\.0\d* to 10\.0\d* s"):
        encode_in_chunks(mkv, tmp_path / "mkv", chunk_seconds=2, segment_seconds=1)


def frame_times(playlist: Path) -> list[float]:
    """Every frame's presentation time in a rung, its segments read in playlist order."""
    times: list[float] = []
    for line in playlist.read_text().splitlines():
        if line and not line.startswith("#"):
            with av.open(str(playlist.parent / line)) as container:
                stream = container.streams.video[0]
                times += [float(f.time) for f in container.decode(stream) if f.time is not None]
    return sorted(times)


def test_frames_faster_than_the_average_rate_keep_their_own_times(
    clip: Any, tmp_path: Path
) -> None:
    # GIVEN a source at 30 fps, 10 fps, then 60 fps: faster than the rate it declares
    source = clip("vfr_faster")
    truth = decode_video(source)
    # WHEN it is encoded chunk by chunk
    facts, ladder, _ = encode_in_chunks(source, tmp_path, chunk_seconds=2, segment_seconds=1)
    assert facts.variable_frame_rate and facts.frame_rate < 59
    # THEN every rung shows each frame at its own time, 1/60 s apart at the least, never
    # squeezed onto the average rate's grid one clock tick after the frame before
    for rung in ladder:
        times = frame_times(tmp_path / rung.name / "index.m3u8")
        assert len(times) == truth.frames
        assert min(b - a for a, b in itertools.pairwise(times)) > 0.9 / 60, rung.name


@pytest.mark.parametrize("name", ["h264_aac_2gop", "mpegts_bframes"])
def test_cuts_off_the_keyframes_lose_and_double_no_frame(
    name: str, clip: Any, tmp_path: Path
) -> None:
    # GIVEN an index that lies: its "keyframes" sit between real frames, mid-GOP, and say
    # the source can be entered there without a margin
    source = clip(name)
    data = source.read_bytes()
    real = probe(str(source), head=data[:65536], size=len(data), limits=Limits()).index
    wrong = [round(real.start + 0.37 + 1.3 * k, 6) for k in range(int(real.end - real.start))]
    index = FrameIndex(start=real.start, end=real.end, keyframes=[real.start, *wrong])
    # WHEN it is planned on that index and encoded chunk by chunk
    facts, ladder, chunks = encode_in_chunks(source, tmp_path, 2, 1, index=index)
    # THEN the cuts are off the keyframes, and yet every frame is there exactly once
    assert any(c.start in wrong for c in chunks)
    assert_every_frame_once(source, tmp_path, facts, ladder)


def test_cuts_at_frames_whose_times_round_up_key_those_frames_alone(
    clip: Any, tmp_path: Path
) -> None:
    # GIVEN an index whose keyframes are frames at times that, written to six decimals,
    # round up past the frame (at 30 fps, 2/30 s is 0.0666667: "0.066667")
    source = clip("h264_aac_2gop")
    data = source.read_bytes()
    probed = probe(str(source), head=data[:65536], size=len(data), limits=Limits())
    real, step = probed.index, 1 / probed.facts.frame_rate
    times = [real.start + n * step for n in range(int((real.end - real.start) / step))]
    cuts = [t for t in times[1:] if round(t, 6) - t > 1e-7][::17]
    assert len(cuts) >= 4
    index = FrameIndex(real.start, real.end, [real.start, *(round(t, 6) for t in cuts)])
    # WHEN it is planned on that index and encoded chunk by chunk
    facts, ladder, chunks = encode_in_chunks(source, tmp_path, 2, 1, index=index)
    # THEN chunks start on those frames, and each segment has one keyframe, its first:
    # none on the frame after a start, none missing where a segment should begin
    assert sum(1 for c in chunks if round(c.start, 6) in index.keyframes[1:]) >= 2
    assert_every_frame_once(source, tmp_path, facts, ladder)
    planned = sum(len(c.segment_starts) for c in chunks)
    for rung in ladder:
        assert read_rendition(tmp_path / rung.name / "index.m3u8", "video").segments == planned


def spliced(directory: Path, container: str) -> Path:
    """Two encodes joined byte for byte as MPEG-TS (remuxed to MP4 if asked): 4 s of
    half-second GOPs without B-frames, then 6 s of one 5 s GOP with three B-frames."""
    parts = []
    for i, (seconds, options) in enumerate(
        [(4, ["-g", "12", "-bf", "0"]), (6, ["-g", "125", "-keyint_min", "125", "-bf", "3"])]
    ):
        part = directory / f"part{i}.ts"
        subprocess.run(
            [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"]
            + [f"testsrc2=size=320x240:rate=25:duration={seconds}", "-c:v", "libx264"]
            + ["-preset", "ultrafast", "-sc_threshold", "0", *options, "-pix_fmt", "yuv420p"]
            + ["-output_ts_offset", str(4 * i), "-f", "mpegts", str(part)],
            check=True,
        )
        parts.append(part.read_bytes())
    joined = directory / "spliced.ts"
    joined.write_bytes(b"".join(parts))
    if container == "ts":
        return joined
    remuxed = directory / "spliced.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(joined)]
        + ["-c", "copy", str(remuxed)],
        check=True,
    )
    return remuxed


@pytest.mark.parametrize("container", ["ts", "mp4"])
def test_a_spliced_source_whose_gops_change_loses_and_doubles_no_frame(
    container: str, tmp_path: Path
) -> None:
    # GIVEN a spliced source: short GOPs, then a 5 s GOP longer than the 3 s margin that a
    # source without an index is entered with
    source = spliced(tmp_path, container)
    out = tmp_path / "out"
    out.mkdir()
    # WHEN it is cut every 2 s and encoded chunk by chunk
    facts, ladder, chunks = encode_in_chunks(source, out, 2, 1)
    # THEN every frame is there exactly once in every rung
    assert len(chunks) >= 4
    assert_every_frame_once(source, out, facts, ladder)


def test_a_live_segment_faster_than_its_stream_is_brought_to_the_streams_rate(
    tmp_path: Path,
) -> None:
    # GIVEN a 2 s MPEG-TS segment at 60 fps, in a stream set up at 30 fps
    segment = tmp_path / "7.ts"
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=60",
         "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "120", "-f", "mpegts",
         str(segment)],
        check=True,
    )  # fmt: skip
    data = segment.read_bytes()
    facts = probe(str(segment), head=data[:65536], size=len(data), limits=Limits()).facts
    ladder = build_ladder(320, 180, 30.0, "180:300")
    start, end = facts.start_time, facts.start_time + facts.duration
    chunk = Chunk(7, start, end, 7, [start], margin=start - facts.container_start)

    # WHEN it is encoded as LiveTranscode does, brought to 30 fps (and, to compare, not)
    def encoded(name: str, frame_rate: float | None) -> Any:
        workdir = tmp_path / name
        (workdir / "180p").mkdir(parents=True)
        command = encode.build_chunk_command(
            str(segment), facts.container, facts.container_start, chunk, ladder, workdir,
            final=True, frame_rate=frame_rate, binary=ffmpeg_binary(), preset="ultrafast",
        )  # fmt: skip
        subprocess.run(command, check=True)
        return read_rendition(_one_segment_playlist(workdir / "180p" / "seg_00007.ts"), "video")

    converted, kept = encoded("converted", 30.0), encoded("kept", None)
    # THEN the rung has 30 frames a second, evenly spaced, on the same timeline
    assert kept.frames == 120 and converted.frames == 60
    assert converted.duplicates == 0 and converted.decode_errors == ""
    assert converted.largest_gap == pytest.approx(1 / 30, abs=1e-3)
    assert converted.first_pts == pytest.approx(kept.first_pts, abs=1e-3)
    assert converted.end_pts == pytest.approx(kept.end_pts, abs=1e-3)


def _one_segment_playlist(segment: Path) -> Path:
    playlist = segment.parent / "one.m3u8"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{segment.name}\n#EXT-X-ENDLIST\n"
    )
    return playlist


def _ticks(path: Path, kind: str) -> list[int]:
    """A file's 90 kHz timestamps of one kind, as written (modulo the 33-bit wrap)."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return sorted(p.pts % 2**33 for p in container.demux(stream) if p.pts is not None)


def test_a_clip_cut_from_a_segment_just_before_the_wrap_keeps_its_clock(tmp_path: Path) -> None:
    # GIVEN a published 4 s segment (video and audio) written 30 s before the 33-bit wrap,
    # which ffmpeg reads as starting at -30 s
    segment = tmp_path / "seg.ts"
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "4", "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "100", "-c:a", "aac", "-muxdelay", "0",
         "-output_ts_offset", f"{encode.MPEGTS_WRAP - 30:.6f}", str(segment)],
        check=True,
    )  # fmt: skip
    first_frame = encode.build_first_frame_command(str(segment), tmp_path, binary=ffmpeg_binary())
    subprocess.run(first_frame, check=True)
    origin = encode.first_frame(tmp_path)
    assert origin is not None and origin < 0
    ladder = build_ladder(320, 180, 25.0, "180:300")
    # WHEN a clip's boundary re-encodes its seconds 1 to 3, video and audio
    for rendition, kind in ((ladder[0], "video"), (None, "audio")):
        out = tmp_path / f"{kind}.ts"
        command = encode.build_recut_command(
            str(segment), origin + 1, origin + 3, out, rendition=rendition, audio_kbps=96,
            binary=ffmpeg_binary(), preset="ultrafast",
        )  # fmt: skip
        subprocess.run(command, check=True)
        # THEN they are written where those seconds were, on the segment's own clock (the
        # muxer had moved them to zero)
        first = _ticks(segment, kind)[0] + 90_000
        assert abs(_ticks(out, kind)[0] - first) <= 90_000 // 25, kind


def test_a_clips_audio_cut_at_its_segments_start_across_the_wrap_keeps_its_clock(
    tmp_path: Path,
) -> None:
    # GIVEN a published 4 s audio segment that crosses the 33-bit wrap: ffmpeg reads it
    # from -2 s to 2 s
    segment = tmp_path / "seg.ts"
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i", "sine=sample_rate=48000",
         "-t", "4", "-c:a", "aac", "-muxdelay", "0",
         "-output_ts_offset", f"{encode.MPEGTS_WRAP - 2:.6f}", str(segment)],
        check=True,
    )  # fmt: skip
    # WHEN a clip ending 3 s in takes its audio from the segment's own start (no cut there)
    out = tmp_path / "audio.ts"
    command = encode.build_recut_command(
        str(segment), None, 1.0, out, rendition=None, audio_kbps=96, binary=ffmpeg_binary()
    )
    subprocess.run(command, check=True)
    # THEN it starts where the segment's audio does, not moved to zero by the muxer
    first = [_audio_spans(path)[0][0] % 2**33 for path in (segment, out)]
    assert abs(first[1] - first[0]) <= 90_000 // 40, first


def _audio_spans(path: Path) -> list[tuple[int, int]]:
    """(first, end) 90 kHz ticks of each audio packet in a file."""
    with av.open(str(path)) as container:
        return [
            (p.pts, p.pts + p.duration)
            for p in container.demux(audio=0)
            if p.pts is not None and p.size
        ]


@pytest.mark.parametrize("rate", [48_000, 44_100])
@pytest.mark.parametrize("cut_in", [0.3, 0.31, 0.33, 0.79])
def test_a_clips_audio_cut_mid_segment_ends_where_the_next_segment_starts(
    cut_in: float, rate: int, tmp_path: Path
) -> None:
    # GIVEN two published 1 s live audio segments: one AAC encode, whole frames, the
    # second going on from where the first ends (at 44.1 kHz: a venue's own rate)
    whole = tmp_path / "whole.ts"
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i",
         f"aevalsrc=0.5*sin(2*PI*440*t):s={rate}:d=2.2", "-c:a", "aac", "-ac", "2",
         "-output_ts_offset", "10", "-muxdelay", "0", str(whole)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-copyts", "-i", str(whole), "-c", "copy", "-f",
         "segment", "-segment_time", "1", "-reset_timestamps", "0",
         str(tmp_path / "seg_%d.ts")],
        check=True,
    )  # fmt: skip
    first, second = tmp_path / "seg_0.ts", tmp_path / "seg_1.ts"
    # WHEN a clip starts cut_in into the first: its audio is re-encoded from there to the
    # segment's own end (the rest of the clip is the second, copied)
    sound = tmp_path / "sound"
    sound.mkdir()
    subprocess.run(encode.build_first_sound_command(str(first), sound, binary=ffmpeg_binary()))
    found = encode.first_sound(sound)
    assert found is not None
    begins, frame = found
    assert frame == pytest.approx(1024 / rate)
    out = tmp_path / "cut.ts"
    command = encode.build_recut_command(
        str(first), None, None, out, rendition=None, audio_kbps=128, binary=ffmpeg_binary(),
        start_sample=encode.frame_start_sample(begins + cut_in, begins, frame),
    )  # fmt: skip
    subprocess.run(command, check=True)
    # THEN it ends exactly where the second starts: no frame padded with silence over it
    cut, following = _audio_spans(out), _audio_spans(second)
    # (to the 90 kHz tick: a 44.1 kHz frame's length there is rounded)
    assert abs(cut[-1][1] - following[0][0]) <= 1, (cut[-1], following[0])
    # AND it starts at most a frame before the clip does
    assert 0 <= begins + cut_in - cut[1][0] / 90_000 < 1024 / rate


def test_a_chunk_finding_no_keyframe_within_the_bound_fails_by_name_not_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = own_log(monkeypatch, rungs, "rungs.no_keyframe")
    # GIVEN 150 s of MPEG-TS (no index: planned by time) keyed only at its start
    source = tmp_path / "one-key.ts"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=5:duration=150",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "100000", "-keyint_min", "100000",
         "-sc_threshold", "0", str(source)],
        check=True,
    )  # fmt: skip
    data = source.read_bytes()
    probed = probe(str(source), head=data[:65536], size=len(data), limits=Limits())
    facts = probed.facts
    assert probed.index.by_time
    ladder = build_ladder(facts.display_width, facts.display_height, facts.frame_rate, "144:200")
    chunk = next(c for c in plan_chunks(probed.index, 4, 2) if c.start >= 140)

    def commands(directory: Path, margin: float) -> list[list[str]]:
        return [
            encode.build_chunk_command(
                str(source), facts.container, facts.container_start, chunk, ladder, directory,
                margin=margin, binary=ffmpeg_binary(), preset="ultrafast",
            )
        ]  # fmt: skip

    # WHEN its chunk 140 s in is encoded
    (tmp_path / "work").mkdir()
    with pytest.raises(UnsupportedInputError) as raised:
        encode_chunk(
            commands, tmp_path / "work", [r.name for r in ladder], chunk,
            facts.container_start, timeout=lambda: 300, final=False,
        )  # fmt: skip
    # THEN it fails by name once it has looked 120 s back, not decoding from the start
    assert str(raised.value) == (
        f"the video has no keyframe, or no video, in the 120 s before {chunk.start:.3f} s "
        "(vidflow takes keyframes up to 120 s apart here): re-encode it with a keyframe "
        "every few seconds (ffmpeg's -g, in frames: -g 60 at 30 fps)"
    )
    run_ins = [r.args[1] for r in kept if "decoding again" in r.getMessage()]
    assert run_ins == pytest.approx([chunk.start - m for m in (3, 12, 48)])
