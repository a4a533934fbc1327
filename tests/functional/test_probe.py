"""The probe on real files: facts a planner relies on, and named refusals."""

from __future__ import annotations

import re
import struct
import subprocess
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import pytest

from tests.media import synth
from tests.media.registry import REAL_MEDIA
from tests.source_facts import decode_video
from workflow.errors import (
    InputTooLargeError,
    InputTooLongError,
    NoVideoStreamError,
    TransientError,
    TruncatedInputError,
    UnsupportedInputError,
)
from workflow.local.binaries import ffmpeg_binary
from workflow.media.chunks import MAX_KEYFRAME_INTERVAL, refused_hole
from workflow.media.probe import UndecodableHead, probe
from workflow.settings import Limits


def _probe(path: Path, limits: Limits | None = None, **options: Any) -> Any:
    data = path.read_bytes()
    return probe(str(path), head=data[:65536], size=len(data), limits=limits or Limits(), **options)


@pytest.mark.parametrize("name", synth.VIDEOS)
def test_the_span_is_that_of_every_decodable_frame(name: str, clip: Any) -> None:
    # GIVEN a clip whose frames we time by decoding them all
    path = clip(name)
    truth = decode_video(path)
    # WHEN the probe reads its index (or its head and tail where it has none)
    result = _probe(path)
    # THEN its span runs from the first decodable frame to the end of the last (a
    # Matroska file gives only the container's duration, whose audio may run on 0.1 s)
    assert result.index.start == pytest.approx(truth.first_pts, abs=1e-3)
    assert result.facts.start_time == result.index.start
    assert result.facts.duration == pytest.approx(truth.duration, abs=0.1)


@pytest.mark.parametrize("name", synth.VIDEOS)
def test_listed_keyframes_are_keyframes(name: str, clip: Any) -> None:
    # GIVEN a clip and the presentation times of its real keyframes
    path = clip(name)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = {
            round(float(p.pts * stream.time_base), 3)
            for p in container.demux(stream)
            if p.is_keyframe and p.pts is not None
        }
    # WHEN it is probed
    index = _probe(path).index
    # THEN every keyframe its index lists is one, and MP4 and Matroska list them all
    assert {round(k, 3) for k in index.keyframes} <= keys
    if path.suffix in (".mp4", ".mkv", ".webm") and len(keys) > 1:
        assert {round(k, 3) for k in index.keyframes} == keys
    assert _probe(path).facts.keyframe_count == len(index.keyframes)


def test_rotation_swaps_display_size(clip: Any) -> None:
    facts = _probe(clip("rotated_90")).facts
    assert (facts.coded_width, facts.coded_height) == (320, 240)
    assert (facts.display_width, facts.display_height) == (240, 320)
    assert facts.rotation in (90, 270)


def test_a_camera_jpeg_video_whose_pictures_carry_exif_is_probed(tmp_path: Path) -> None:
    # GIVEN MJPEG in AVI whose pictures carry Exif saying "turned a quarter" (orientation
    # 6), as a camera's do: FFmpeg 8 gives each decoded picture Exif side data, a type
    # PyAV cannot name
    picture = subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90", "-frames:v", "1", "-f", "mjpeg", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    tiff = b"II*\0" + struct.pack("<IHHHII", 8, 1, 0x0112, 3, 1, 6) + b"\0" * 4
    exif = b"Exif\0\0" + tiff
    marked = picture[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + picture[2:]
    (tmp_path / "frames.mjpeg").write_bytes(marked * 50)
    path = tmp_path / "camera.avi"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "mjpeg", "-framerate", "25",
         "-i", str(tmp_path / "frames.mjpeg"), "-c", "copy", str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed, THEN it is read, turned as its Exif says, not refused as damaged
    facts = _probe(path).facts
    assert (facts.video_codec, facts.duration, facts.rotation) == ("mjpeg", 2.0, 270)
    assert (facts.display_width, facts.display_height) == (90, 160)


def test_variable_frame_rate_is_detected(clip: Any) -> None:
    assert _probe(clip("vfr")).facts.variable_frame_rate
    assert not _probe(clip("h264_aac_2gop")).facts.variable_frame_rate


def test_ten_bit_source_reports_its_depth(clip: Any) -> None:
    facts = _probe(clip("hevc_10bit")).facts
    assert facts.video_codec == "hevc" and facts.bit_depth == 10
    # ten bits are not HDR: this one is SDR, its transfer unset
    assert facts.hdr is None


@pytest.mark.parametrize(
    "name", ["mpegts_h264_aac_captions", "mpegts_h264_608_multichannel_no_audio"]
)
def test_cea_608_captions_in_the_video_are_found(
    real_media: dict[str, Path], clip: Any, name: str
) -> None:
    # GIVEN real footage whose H.264 carries CEA-608 captions (on one channel, on several)
    # THEN the probe says so, and says nothing of a clip without
    assert _probe(real_media[name]).facts.captions
    assert not _probe(clip("h264_aac_2gop")).facts.captions


@pytest.mark.parametrize(
    ("filename", "options", "named"),
    [
        # a ProRes/Blackmagic-style MOV's timecode track
        ("camera.mov", ["-timecode", "01:00:00:00", "-metadata:s:d", "language=eng"],
         ["en (timecode)"]),
        # a broadcast TS's private data stream beside its picture and sound
        ("feed.ts", ["-f", "data", "-i", "{blob}", "-map", "0", "-map", "1", "-map", "2",
                     "-c:d", "copy"], ["und (bin_data)"]),
    ],
)  # fmt: skip
def test_data_tracks_are_accepted_and_named_as_left_out(
    tmp_path: Path, clip: Any, filename: str, options: list[str], named: list[str]
) -> None:
    # GIVEN a file whose picture and sound come with a data track
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 16)
    source = tmp_path / filename
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=30000/1001:duration=2", "-f", "lavfi", "-i",
         "sine=sample_rate=48000:duration=2", *(o.format(blob=blob) for o in options),
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(source)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed
    facts = _probe(source).facts
    # THEN it is read as a video with sound, and the data track is named as left out
    assert facts.audio is not None and facts.duration == pytest.approx(2.002, abs=0.04)
    assert facts.data_left_out == named
    assert facts.to_dict()["data_left_out"] == named
    assert "data_left_out" not in _probe(clip("h264_aac_2gop")).facts.to_dict()


@pytest.mark.parametrize(("name", "hdr"), [("hdr_hlg", "hlg"), ("hdr_pq", "pq")])
def test_an_hdr_source_names_its_transfer(clip: Any, name: str, hdr: str) -> None:
    facts = _probe(clip(name)).facts
    assert facts.hdr == hdr and facts.bit_depth == 10
    assert not _probe(clip("h264_aac_2gop")).facts.hdr


def test_limits_refuse_before_decoding(clip: Any) -> None:
    path = clip("h264_aac_2gop")
    with pytest.raises(InputTooLargeError, match="pixels"):
        _probe(path, Limits(max_pixels=640 * 359))
    with pytest.raises(InputTooLongError):
        _probe(path, Limits(max_seconds=5))
    with pytest.raises(InputTooLargeError, match="bytes"):
        _probe(path, Limits(max_bytes=1000))
    with pytest.raises(InputTooLargeError, match="fps"):
        _probe(path, Limits(max_fps=24))


def test_truncated_transport_stream_is_still_usable_up_to_the_cut(
    clip: Any, tmp_path: Path
) -> None:
    # A TS cut mid-file is what a dropped upload of a recording looks like: keep what is there.
    data = clip("mpegts_bframes").read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    facts = _probe(cut).facts
    assert 0 < facts.duration < _probe(clip("mpegts_bframes")).facts.duration


def test_truncated_mp4_is_refused(clip: Any, tmp_path: Path) -> None:
    data = clip("h264_aac_2gop").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(TruncatedInputError):
        _probe(cut)


@pytest.mark.parametrize("suffix", ["mkv", "flv"])
@pytest.mark.parametrize(("video", "audio"), [(2, 10), (6, 12), (12, 6)])
def test_a_video_ends_where_its_own_track_does_not_where_the_audio_does(
    suffix: str, video: int, audio: int, tmp_path: Path
) -> None:
    # GIVEN Matroska or FLV whose video (with B-frames) and audio end apart: each
    # declares the longer track's duration (2 s of video is read whole by the probe's
    # sampling, 6 s is not)
    path = tmp_path / f"apart.{suffix}"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=30:duration={video}",
         "-f", "lavfi", "-i", f"sine=sample_rate=48000:duration={audio}",
         "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed, THEN the video lasts as its own track does (as an MP4's would):
    # planned to the audio's end, the last segment would claim seconds it has no frames for
    assert _probe(path).facts.duration == pytest.approx(video, abs=0.002)


@pytest.mark.parametrize("suffix", ["mkv", "ts", "mp4"])
def test_a_clip_cut_from_hours_in_is_as_long_as_its_frames(suffix: str, tmp_path: Path) -> None:
    # GIVEN 2 s whose timestamps start 5 h in, as "-copyts" leaves a cut (Matroska
    # declares its duration from the timeline's zero: 5 h and 2 s)
    path = tmp_path / f"cut.{suffix}"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
         "-c:v", "libx264", "-preset", "ultrafast", "-output_ts_offset", "18000", str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed under a 4 h limit, THEN it is 2 s long, 5 h in
    facts = _probe(path, Limits(max_seconds=4 * 3600)).facts
    assert facts.duration == pytest.approx(2.0, abs=0.05)
    assert facts.start_time == pytest.approx(18000, abs=1.5)
    # AND a limit under its length still refuses it
    with pytest.raises(InputTooLongError, match="the limit is 1 s"):
        _probe(path, Limits(max_seconds=1))


def _joined(tmp_path: Path, suffix: str, recordings: dict[str, list[str]]) -> Path:
    """Each recording (its name: ffmpeg's arguments before its output file) made on its
    own, as ``<name>.<suffix>``, then all joined end to end, as ``cat a b`` joins them."""
    parts = []
    for name, arguments in recordings.items():
        part = tmp_path / f"{name}.{suffix}"
        base = [ffmpeg_binary(), "-nostdin", "-loglevel", "error"]
        subprocess.run([*base, *arguments, str(part)], check=True)
        parts.append(part.read_bytes())
    joined = tmp_path / f"joined.{suffix}"
    joined.write_bytes(b"".join(parts))
    return joined


@pytest.mark.parametrize(
    ("muxer", "suffix", "offsets", "span"),
    [
        ("mpegts", "ts", (0, 5000), r"500\d"),
        ("vob", "mpg", (0, 5000), r"500\d"),
        # the later capture first: the tail's timestamps are under the head's, read as a
        # span across the 33-bit wrap (26 h), which is past the length limit too
        ("mpegts", "ts", (5000, 0), r"\d{5}"),
    ],
)
def test_captures_joined_hours_apart_are_refused_by_name(
    muxer: str, suffix: str, offsets: tuple[int, int], span: str, tmp_path: Path
) -> None:
    # GIVEN two 2 s captures joined end to end ("cat a b"), written 5000 s apart: a few
    # kilobytes whose head and tail timestamps span 5002 s (or, the later one first, 26 h)
    joined = _joined(
        tmp_path,
        suffix,
        {
            str(offset): ["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
                          "-c:v", "mpeg2video", "-output_ts_offset", str(offset), "-f", muxer]
            for offset in offsets
        },
    )  # fmt: skip
    # WHEN it is probed, THEN it is refused by name before hundreds of chunks are planned
    with pytest.raises(UnsupportedInputError, match=rf"spans {span} s .* timestamps jump"):
        _probe(joined)
    # AND either capture alone is read as the 2 s it is
    assert _probe(tmp_path / f"5000.{suffix}").facts.duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(
    ("muxer", "suffix", "codec", "lengths"),
    [
        ("mpegts", "ts", "libx264", (6, 6)),
        ("mpegts", "ts", "libx264", (6, 2)),
        ("vob", "mpg", "mpeg2video", (6, 6)),
    ],
)
def test_recordings_joined_on_one_clock_restarting_are_refused_by_name(
    muxer: str, suffix: str, codec: str, lengths: tuple[int, int], tmp_path: Path
) -> None:
    # GIVEN two recordings joined end to end ("cat a b"), each from the encoder's clock
    # at zero: head and tail read as one recording, the size as one at twice the rate
    joined = _joined(
        tmp_path,
        suffix,
        {
            str(n): ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=30:duration={seconds}",
                     "-c:v", codec, "-g", "30", "-b:v", "1M", "-f", muxer]
            for n, seconds in enumerate(lengths)
        },
    )  # fmt: skip
    # WHEN it is probed, THEN it is refused by name, where it was published as the first
    # recording's span with the second's frames in it
    with pytest.raises(UnsupportedInputError, match=r"clock goes back .* joined end to end"):
        _probe(joined)
    # AND each recording alone is read as the span it is
    for n, seconds in enumerate(lengths):
        probed = _probe(tmp_path / f"{n}.{suffix}").facts.duration
        assert probed == pytest.approx(seconds, abs=0.1)


@pytest.mark.parametrize("frames", [180, 1])
def test_an_avi_without_b_frames_spans_its_frames_from_the_first(
    frames: int, tmp_path: Path
) -> None:
    # GIVEN an AVI of H.264 without B-frames (its frames presented in decoding order),
    # with sound beside, as a camera or a screen recorder writes one
    path = tmp_path / "clip.avi"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=6",
         "-f", "lavfi", "-i", "sine=duration=6", "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "veryfast", "-g", "45", "-bf", "0",
         "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed / THEN it spans its frames at 30 fps from its first, not a frame
    # less (its last segment, and its sound, cut a frame short)
    probed = _probe(path)
    assert probed.index.end - probed.index.start == pytest.approx(frames / 30, abs=1e-6)


def test_a_matroska_file_declaring_hours_it_does_not_hold_is_refused_by_name(
    tmp_path: Path,
) -> None:
    # GIVEN 10 s of Matroska (377 KB) whose segment Duration is rewritten to 14000 s and
    # whose track has no DURATION tag, so the probe has only the Duration to go by
    path = tmp_path / "forged.mkv"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=10",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", str(path)],
        check=True,
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    duration = data.index(b"\x44\x89\x88")  # Duration, an 8-byte float of milliseconds
    data[duration + 3 : duration + 11] = struct.pack(">d", 14_000_000.0)
    tag = data.index(b"DURATION")
    data[tag : tag + 8] = b"XURATION"
    path.write_bytes(data)
    # WHEN it is probed, THEN it is refused by name, not planned as 1167 chunks
    with pytest.raises(UnsupportedInputError, match=r"spans 14000 s .* a duration it does not"):
        _probe(path)


def _dash_on_demand(path: Path) -> bytearray:
    """8 s of 160x90 at 25 fps in 1 s fragments, indexed by a sidx per track at the head."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=8",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-movflags", "dash+global_sidx", str(path)],
        check=True,
    )  # fmt: skip
    return bytearray(path.read_bytes())


def test_a_fragmented_mp4_is_planned_from_its_segment_index(tmp_path: Path) -> None:
    # GIVEN an MP4 whose fragments are listed in a sidx, which ffmpeg opens lazily
    path = tmp_path / "indexed.mp4"
    _dash_on_demand(path)
    # WHEN it is probed, THEN it spans every fragment with a keyframe at each, not the
    # first fragment's second
    index = _probe(path).index
    assert index.end - index.start == pytest.approx(8.0, abs=1e-3)
    assert [round(k - index.start, 3) for k in index.keyframes] == [float(n) for n in range(8)]


def test_a_single_fragment_indexed_mp4_keyed_once_is_refused_as_a_plain_one_is(
    tmp_path: Path,
) -> None:
    # GIVEN 400 s at 10 fps, one keyframe, written as one fragment behind a sidx: ffmpeg
    # lists every frame of it on opening, so the index adds nothing
    path = tmp_path / "one_fragment.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=400",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "10000", "-keyint_min", "10000",
         "-sc_threshold", "0", "-movflags", "dash+global_sidx", "-frag_duration", "1000000000",
         str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed, THEN its keyframes are checked as a plain MP4's: refused by name,
    # not planned as chunks that each decode from the file's start
    with pytest.raises(UnsupportedInputError, match="no keyframe for 400 s"):
        _probe(path, max_keyframe_interval=MAX_KEYFRAME_INTERVAL)


def test_a_fragmented_mp4_cut_short_of_its_segment_index_is_refused_by_name(
    tmp_path: Path,
) -> None:
    # GIVEN an indexed fragmented MP4 whose upload stopped after its fifth fragment
    path = tmp_path / "cut.mp4"
    data = _dash_on_demand(path)
    sixth = [m.start() - 4 for m in re.finditer(b"moof", data)][5]
    path.write_bytes(data[:sixth])
    # WHEN it is probed, THEN it is refused as cut short, not planned to 8 s
    with pytest.raises(TruncatedInputError, match="segment index lists fragments up to byte"):
        _probe(path)


def test_a_segment_index_declaring_hours_a_small_file_does_not_hold_is_refused_by_name(
    tmp_path: Path,
) -> None:
    # GIVEN an indexed fragmented MP4 (8 s, ~120 KB) whose sidx says each 1 s fragment
    # lasts 1000 s
    path = tmp_path / "forged.mp4"
    data = _dash_on_demand(path)
    sidx = data.index(b"sidx") - 4
    timescale = struct.unpack_from(">I", data, sidx + 16)[0]
    references = sidx + 36 + 4  # version 1: 64-bit times
    for n in range(struct.unpack_from(">H", data, references - 2)[0]):
        struct.pack_into(">I", data, references + 12 * n + 4, 1000 * timescale)
    path.write_bytes(data)
    # WHEN it is probed, THEN it is refused by name, not planned as 667 chunks
    with pytest.raises(UnsupportedInputError, match=r"spans 800\d s .* does not hold"):
        _probe(path)


def test_an_mp4_whose_frames_pause_longer_than_a_plan_can_cut_is_refused_by_name(
    tmp_path: Path,
) -> None:
    # GIVEN 150 KB of MP4: 2 s of frames, then 2 s more written 5000 s later
    path = tmp_path / "hole.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=4",
         "-vf", "setpts='if(lt(N,50),PTS,PTS+5000/TB)'", "-fps_mode", "passthrough",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed for chunks of 12 s in 4 s segments, THEN the pause is refused by
    # name, not planned as 440 chunks with nothing to encode in all but two
    with pytest.raises(UnsupportedInputError, match=r"no frame for 5000 s after 1\.960 s"):
        _probe(path, max_hole=refused_hole(12.0, 4.0))
    # AND without a bound (a live segment's probe) it reads as the 5004 s it spans
    assert _probe(path).facts.duration == pytest.approx(5004, abs=0.1)


def test_an_avi_whose_header_counts_hours_of_frames_it_does_not_hold_is_refused_by_name(
    tmp_path: Path,
) -> None:
    # GIVEN 10 s of AVI (386 KB) whose main and stream headers are rewritten to count
    # 350000 frames (14000 s at 25 fps)
    path = tmp_path / "forged.avi"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=10",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", str(path)],
        check=True,
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.index(b"avih") + 8 + 16, 350_000)  # dwTotalFrames
    struct.pack_into("<I", data, data.index(b"strh") + 8 + 32, 350_000)  # dwLength
    path.write_bytes(data)
    # WHEN it is probed, THEN it is refused by name, not planned as 1167 chunks
    with pytest.raises(UnsupportedInputError, match=r"spans 14000 s .* a duration it does not"):
        _probe(path)


def sparsely_keyed(path: Path, seconds: int, keys: str = "0", rate: int = 30) -> Path:
    """``seconds`` of video at ``rate`` fps keyed only at the times ``keys`` lists."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate={rate}:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "100000", "-keyint_min", "100000",
         "-sc_threshold", "0", "-force_key_frames", keys, str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("name", "keys", "refused"),
    [
        ("one-key.mp4", "0", "no keyframe for 150 s after 0.000 s"),
        ("late-key.mp4", "0,20", "no keyframe for 130 s after 20.000 s"),
        ("cues.mkv", "0,130", "no keyframe for 130 s after 0.000 s"),
    ],
)
def test_keyframes_listed_further_apart_than_a_chunk_may_decode_are_refused_by_name(
    name: str, keys: str, refused: str, tmp_path: Path
) -> None:
    # GIVEN 150 s of video whose index lists keyframes 130 s or more apart (every chunk
    # between them would decode from the first)
    path = sparsely_keyed(tmp_path / name, 150, keys)
    # WHEN it is probed for a VOD job, THEN it is refused by name, saying what to do
    with pytest.raises(UnsupportedInputError, match=rf"{refused} .* re-encode .* -g"):
        _probe(path, max_keyframe_interval=MAX_KEYFRAME_INTERVAL)
    # AND without the bound (a live segment's probe) it is read as it is
    assert _probe(path).facts.duration == pytest.approx(150, abs=0.3)


@pytest.mark.parametrize("name", ["cues.mkv", "idx1.avi"])
def test_every_probe_of_a_file_reads_the_keyframes_its_index_lists(
    name: str, tmp_path: Path
) -> None:
    # GIVEN a file keyed every 10 s, whose index lists them all (reading its first
    # packets adds to FFmpeg's index, which may move it)
    path = sparsely_keyed(tmp_path / name, 60, "0,10,20,30,40,50")
    # WHEN it is probed again and again in one process
    seen = {tuple(_probe(path).index.keyframes) for _ in range(30)}
    # THEN every probe lists the same keyframes, those it was keyed at
    assert seen == {(0, 10, 20, 30, 40, 50)}


def test_keyframes_as_far_apart_as_a_chunk_may_decode_are_taken(tmp_path: Path) -> None:
    # GIVEN 150 s of MP4 keyed every 75 s
    path = sparsely_keyed(tmp_path / "sparse.mp4", 150, "0,75")
    # WHEN it is probed for a VOD job, THEN it is planned from the keyframes it lists
    probed = _probe(path, max_keyframe_interval=MAX_KEYFRAME_INTERVAL)
    assert probed.index.keyframes == pytest.approx([0, 75])


def test_a_low_frame_rate_video_may_key_further_apart_in_time_not_in_frames(
    tmp_path: Path,
) -> None:
    # GIVEN a still picture's video at 1 fps (a cover over an audio track), keyed every 250
    # frames as x264 does by default: 250 s apart, but less to decode than 10 s of 25 fps
    path = sparsely_keyed(tmp_path / "cover.mp4", 400, "0,250", rate=1)
    # WHEN it is probed for a VOD job, THEN it is taken: the bound counts frames there
    assert _probe(path, max_keyframe_interval=MAX_KEYFRAME_INTERVAL).facts.duration > 399
    # AND the same 250 s without a keyframe at 30 fps (7,500 frames) is not
    with pytest.raises(UnsupportedInputError, match="no keyframe for 250 s"):
        _probe(sparsely_keyed(tmp_path / "fast.mp4", 400, "0,250"), max_keyframe_interval=120)


def test_an_avi_remuxed_from_mp4_runs_at_its_picture_rate_not_its_tick(tmp_path: Path) -> None:
    # GIVEN 25 fps H.264 in MP4 copied into AVI, which declares MP4's 1/600 s tick as
    # its rate (ffmpeg: "600 fps, 25 tbr"), empty frames filling the ticks between
    # pictures; and an AVI whose 600 fps are real
    mp4, remuxed, fast = tmp_path / "in.mp4", tmp_path / "remuxed.avi", tmp_path / "fast.avi"
    encode = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi"]
    subprocess.run(
        [*encode, "-i", "testsrc2=size=160x90:rate=25:duration=2", "-c:v", "libx264",
         "-preset", "ultrafast", str(mp4)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(mp4), "-c", "copy",
         str(remuxed)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*encode, "-i", "testsrc2=size=160x90:rate=600:duration=0.5", "-c:v", "libx264",
         "-preset", "ultrafast", str(fast)],
        check=True,
    )  # fmt: skip
    with av.open(str(remuxed)) as container:
        assert container.streams.video[0].average_rate == 600
    # WHEN each is probed, THEN the remuxed one is 25 fps, constant, as long as its frames
    facts = _probe(remuxed).facts
    assert facts.frame_rate == 25.0
    assert not facts.variable_frame_rate
    assert facts.duration == pytest.approx(decode_video(remuxed).duration, abs=0.05)
    # AND the real 600 fps is still refused
    with pytest.raises(InputTooLargeError, match="600 fps; the limit is 120"):
        _probe(fast)


@pytest.mark.parametrize("frames", [1, 2, 3])
def test_a_segment_of_a_frame_or_two_keeps_its_rate_and_length(frames: int, tmp_path: Path) -> None:
    # GIVEN the few-frame MPEG-TS segment an encoder writes as it stops, cut from 30 fps
    path = tmp_path / f"{frames}.ts"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed, THEN it is 30 fps (ffmpeg guesses 60 from a frame or two) and
    # lasts its frames (not half a frame for the last)
    facts = _probe(path).facts
    assert facts.frame_rate == 30.0
    assert facts.duration == pytest.approx(frames / 30, abs=1e-5)


@pytest.mark.parametrize(("size", "refused"), [("16x16", True), ("64x16", True), ("32x32", False)])
def test_a_picture_too_small_to_encode_and_score_is_refused_by_name(
    size: str, refused: bool, tmp_path: Path
) -> None:
    # GIVEN a video a few pixels across (libvmaf, which scores every chunk, crashes on 16)
    path = tmp_path / f"{size}.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=1",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    # THEN the probe names it before anything is encoded, and takes 32 a side
    if refused:
        with pytest.raises(UnsupportedInputError, match=f"the video is {size}; .* at least 32"):
            _probe(path)
    else:
        assert _probe(path).facts.display_width == 32


@pytest.mark.parametrize(
    ("suffix", "codec", "disposition", "refused"),
    [
        ("mp4", "mjpeg", "0", True),  # a one-frame track listed before the video
        ("mkv", "png", "0", True),
        ("mp4", "png", "attached_pic", False),  # cover art
    ],
)
def test_a_second_video_stream_is_refused_not_guessed_past(
    suffix: str, codec: str, disposition: str, refused: bool, tmp_path: Path
) -> None:
    # GIVEN a 2 s 640x360 video with sound, and a one-frame 320x240 still muxed in with it
    base, still, path = tmp_path / "base.mp4", tmp_path / "still.mkv", tmp_path / f"two.{suffix}"
    ffmpeg = [ffmpeg_binary(), "-nostdin", "-loglevel", "error"]
    subprocess.run(
        [*ffmpeg, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2",
         "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", str(base)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*ffmpeg, "-f", "lavfi", "-i", "color=red:size=320x240", "-frames:v", "1",
         "-c:v", codec, str(still)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*ffmpeg, "-i", str(still), "-i", str(base), "-map", "0", "-map", "1", "-c", "copy",
         "-disposition:v:0", disposition, str(path)],
        check=True,
    )  # fmt: skip
    if refused:
        # THEN the probe refuses it by name rather than publish the still (the first video
        # stream, which the encodes read) and cut the sound to its one frame
        with pytest.raises(
            UnsupportedInputError, match="2 video streams and vidflow publishes one"
        ):
            _probe(path)
    else:
        # cover art is no video stream to choose: the video is published
        facts = _probe(path).facts
        assert (facts.coded_width, facts.duration) == (640, pytest.approx(2.0, abs=0.05))


@pytest.mark.parametrize("suffix", ["m4a", "mka"])
def test_a_song_with_cover_art_is_refused_as_no_video_naming_the_picture(
    suffix: str, tmp_path: Path
) -> None:
    # GIVEN a song with its cover art, as MP4 (iTunes' covr) and Matroska (an attachment)
    # carry it
    cover, path = tmp_path / "cover.png", tmp_path / f"song.{suffix}"
    run = [ffmpeg_binary(), "-nostdin", "-loglevel", "error"]
    subprocess.run(
        [*run, "-f", "lavfi", "-i", "color=red:size=64x64", "-frames:v", "1", str(cover)],
        check=True,
    )
    picture = (
        ["-i", str(cover), "-map", "0", "-map", "1", "-disposition:v:0", "attached_pic"]
        if suffix == "m4a"
        else ["-attach", str(cover), "-metadata:s:t:0", "mimetype=image/png"]
    )
    subprocess.run(
        [*run, "-f", "lavfi", "-i", "sine=duration=1", *picture, "-c:a", "aac", "-c:v", "copy",
         str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed, THEN it is refused as holding no video, and what it holds is
    # named as it is: sound and a cover picture, not a video it says is missing
    with pytest.raises(NoVideoStreamError) as refused:
        _probe(path)
    assert str(refused.value) == "the file has no video stream (it holds audio, cover art)"


def test_fonts_and_cover_art_attached_to_matroska_are_no_streams_to_bound(tmp_path: Path) -> None:
    # GIVEN a 2 s Matroska file as a subtitled release is muxed: a video, an audio and an
    # ASS track, the fonts its subtitles are styled in (20 attachments, as mkvmerge writes
    # them) and a cover picture
    cues = tmp_path / "cues.srt"
    cues.write_text("1\n00:00:00,500 --> 00:00:01,500\nhello\n\n")
    (tmp_path / "font.ttf").write_bytes(b"\0\1\0\0 not a real font")
    (tmp_path / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n not a real picture")
    fonts = [
        arg
        for n in range(20)
        for arg in ("-attach", str(tmp_path / "font.ttf"), f"-metadata:s:t:{n}",
                    "mimetype=font/ttf", f"-metadata:s:t:{n}", f"filename=font{n}.ttf")
    ]  # fmt: skip
    path = tmp_path / "release.mkv"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
         "-f", "lavfi", "-i", "sine=duration=2", "-i", str(cues),
         "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-c:s", "ass", *fonts, "-attach", str(tmp_path / "cover.png"),
         "-metadata:s:t:20", "mimetype=image/png", "-metadata:s:t:20", "filename=cover.png",
         str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed under the stream bound (which its three tracks are well within)
    facts = _probe(path).facts
    # THEN it is read, not refused as a file of 24 streams: attachments are no tracks to
    # demux, and the video, its sound and its subtitle track are what the facts describe
    assert (facts.coded_width, facts.duration) == (160, pytest.approx(2.0, abs=0.05))
    assert facts.audio is not None
    assert facts.subtitles_left_out == ["und (ssa)"]
    # AND tracks over the bound are still refused
    with pytest.raises(InputTooLargeError, match="3 tracks; the limit is 2"):
        _probe(path, Limits(max_streams=2))


@pytest.mark.parametrize(
    ("sar", "limits", "error", "message"),
    [
        ("1/20", Limits(), UnsupportedInputError, "shown at 16x240; .* at least 32 pixels a side"),
        ("100/1", Limits(), InputTooLargeError, "shown at 32000x240; .* 16384 pixels a side"),
        ("2/1", Limits(max_pixels=100_000), InputTooLargeError, "shown at 640x240; .* 100000"),
    ],
)
def test_the_size_a_picture_is_shown_at_is_bound_as_its_coded_size_is(
    sar: str, limits: Limits, error: type[Exception], message: str, tmp_path: Path
) -> None:
    # GIVEN 320x240 whose pixel aspect shows it 16, 32000 or 640 wide: the rungs are made
    # at that size (libvmaf crashes on 16; x264 opens nothing wider than 16384)
    path = tmp_path / "stretched.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-vf", f"setsar={sar}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed, THEN it is refused by name, saying the size it is shown at
    with pytest.raises(error, match=f"the video is 320x240 with a pixel aspect of .*{message}"):
        _probe(path, limits)


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
@pytest.mark.parametrize("name", ["vfr", "vp9_opus", "avi_bframes", "h264_aac_flv"])
def test_a_file_shorter_than_its_container_declares_is_refused(
    name: str, fraction: float, clip: Any, tmp_path: Path
) -> None:
    # GIVEN a Matroska, WebM, AVI or FLV file that declares its length, whole and cut
    # short (its demuxer would read on to the cut under the whole file's duration)
    whole = clip(name)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{whole.suffix}"
    cut.write_bytes(data[: int(len(data) * fraction)])
    # WHEN each is probed, THEN the whole one is read and the cut one refused by name
    assert _probe(whole).facts.duration > 1
    with pytest.raises(TruncatedInputError, match="the file is cut short"):
        _probe(cut)


@pytest.mark.real_media
def test_real_webm_cut_short_is_refused(real_media: dict[str, Path], tmp_path: Path) -> None:
    data = real_media["vp8_vorbis_webm"].read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) * 9 // 10])
    with pytest.raises(TruncatedInputError, match=f"declares {len(data)} bytes"):
        _probe(cut)


@pytest.mark.parametrize("cut", [False, True])
def test_matroska_with_neither_duration_nor_cues_is_read_to_its_end(
    tmp_path: Path, cut: bool
) -> None:
    # GIVEN Matroska written to a pipe (the writer cannot go back for its duration and
    # cues), whole or cut off mid-way as a recording whose writer was killed
    piped = subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=6",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "matroska", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    path = tmp_path / "recording.mkv"
    path.write_bytes(piped[: len(piped) * 2 // 3] if cut else piped)
    with av.open(str(path)) as container:
        assert not container.duration
    truth = decode_video(path)
    # WHEN it is probed, THEN its span is that of the frames it holds
    facts = _probe(path).facts
    assert facts.duration == pytest.approx(truth.duration, abs=0.05)
    assert (facts.duration < 5.0) is cut
    # AND one longer than the limit is refused as soon as the reading passes it
    with pytest.raises(InputTooLongError, match=r"(longer than|the limit is) 2 s"):
        _probe(path, Limits(max_seconds=2))
    # AND one too big to read whole in the probe's time is refused by name, not left to
    # the function's timeout (a whole file is read only as long as ``read_for``; the cut
    # one is short enough for the sampled frames to reach its end)
    data = path.read_bytes()
    if not cut:
        with pytest.raises(InputTooLargeError, match="remux it"):
            probe(str(path), head=data[:65536], size=len(data), limits=Limits(), read_for=0.0)


@pytest.mark.real_media
@pytest.mark.parametrize(
    "name",
    [n for n, facts in REAL_MEDIA.items() if facts.pyav_decodes and facts.video_frames],
)
def test_real_footage_facts_match_an_independent_decode(
    name: str, real_media: dict[str, Path]
) -> None:
    path = real_media[name]
    truth = decode_video(path, "mpegts" if path.suffix == ".ts" else None)
    facts = _probe(path).facts
    expected = REAL_MEDIA[name]
    # An AVI's frames have no presentation times, only their order: where its first one
    # is is where the ffmpeg that encodes it puts it (PyAV's FFmpeg guesses its own)
    first = _encoders_first_frame(path) if path.suffix == ".avi" else truth.first_pts
    assert facts.start_time == pytest.approx(first, abs=1e-3)
    assert facts.duration == pytest.approx(truth.duration, abs=0.1)
    assert (facts.coded_width, facts.coded_height) == (expected.width, expected.height)
    assert facts.video_codec.startswith(expected.video_codec or "?")


@pytest.mark.real_media
def test_a_video_track_without_a_frame_is_refused_as_empty_not_as_fast(
    real_media: dict[str, Path],
) -> None:
    # GIVEN a fragmented MP4's init segment alone (mux.js's): a video track, no frame, no
    # rate but ffmpeg's guess, which is its clock's 90000
    # WHEN it is probed, THEN it is refused for holding no frames (not as 90000 fps)
    with pytest.raises(TruncatedInputError, match="its video track holds no frames"):
        _probe(real_media["broken_mp4_init_segment_only"])


def _encoders_first_frame(path: Path) -> float:
    """The time the ffmpeg command line gives ``path``'s first video frame."""
    ran = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-copyts", "-i", str(path),
         "-map", "0:v:0", "-vf", "showinfo", "-frames:v", "1", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    match = re.search(r"pts_time:(-?[0-9.]+)", ran.stderr)
    assert match, ran.stderr
    return float(match.group(1))


def test_an_unreachable_source_is_transient_not_the_users_fault(clip: Any) -> None:
    head = clip("half_second").read_bytes()[:65536]
    with pytest.raises(TransientError, match="could not be read"):
        probe(
            "http://127.0.0.1:9/upload.mp4", head=head, size=len(head), limits=Limits(), timeout=3
        )


@pytest.mark.parametrize(("flags", "listed"), [((), 0), (("-flvflags", "add_keyframe_index"), 30)])
def test_an_flv_lists_keyframes_only_where_it_has_an_index(
    tmp_path: Path, flags: tuple[str, ...], listed: int
) -> None:
    # GIVEN 60 s of FLV with a keyframe every 2 s, with and without the keyframe list in
    # its metadata
    path = tmp_path / "clip.flv"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-f", "lavfi",
         "-i", "testsrc2=s=64x36:r=10:d=60", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "20", *flags, str(path)],
        check=True,
    )  # fmt: skip
    # WHEN it is probed
    result = _probe(path)
    # THEN without the list it is cut by time: the few keyframes the demuxer met while
    # opening it are no index (a plan trusting them would seek it with no margin, and
    # split its images into pieces that each read it from the start)
    assert result.facts.keyframe_count == len(result.index.keyframes) == listed
    assert result.index.by_time == (listed == 0)


@pytest.mark.real_media
@pytest.mark.parametrize("offset", [0.0, 95_441.0], ids=["clock", "across-the-33-bit-wrap"])
def test_a_live_segments_audio_span_is_where_its_own_sound_starts_and_ends(
    offset: float, real_media: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN 1 s venue segments of real footage, one set with its clock crossing the wrap
    from workflow.cli.venue import cut_segments

    settings = ["-output_ts_offset", f"{offset:.6f}"] if offset else []
    segments = cut_segments(
        real_media["h264_aac_1080p_gop6s"], tmp_path, 1.0, binary=ffmpeg_binary(), height=180,
        settings=settings,
    )[:4]  # fmt: skip
    # WHEN each is probed for its audio's span
    spans = []
    for path in segments:
        data = path.read_bytes()
        found = probe(
            str(path), head=data[:65536], size=len(data), limits=Limits(), audio_span=True
        )
        spans.append(found.audio_span)
        # THEN it is its audio packets' first and last instants, read independently
        with av.open(str(path)) as container:
            packets = [p for p in container.demux(audio=0) if p.pts is not None and p.size]
        tb = packets[0].time_base
        first = float(packets[0].pts * tb)
        assert found.audio_span[0] == pytest.approx(first, abs=1e-6)
        assert found.audio_span[1] - found.audio_span[0] == pytest.approx(
            float(sum(p.duration for p in packets) * tb), abs=1e-3
        )
    # AND one file's sound ends where the next one's starts: nothing between, nothing twice
    for (_, end), (start, _) in pairwise(spans):
        assert end == pytest.approx(start, abs=1e-4)
    # AND none ends where its video does: the muxer put the rest in the next file
    assert any(end < _probe(path).facts.start_time + _probe(path).facts.duration - 0.01
               for (_, end), path in zip(spans, segments, strict=True))  # fmt: skip


def _two_audio_tracks(path: Path, *dispositions: str) -> Path:
    """2 s with an English 440 Hz track and a Spanish 880 Hz one, flagged as given."""
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
         "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=44100:duration=2",
         "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa",
         "-disposition:a:0", dispositions[0], "-disposition:a:1", dispositions[1], str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("dispositions", "index", "language"),
    [(("0", "default"), 1, "es"), (("default", "default"), 0, "en"), (("0", "0"), 0, "en")],
)
def test_the_audio_is_the_track_the_file_flags_default(
    dispositions: tuple[str, str], index: int, language: str, tmp_path: Path
) -> None:
    # GIVEN Matroska with two audio tracks, as OBS or an editor writes them, flagged default
    # as given (players, and ffmpeg's own stream selection, play the first flagged one)
    path = _two_audio_tracks(tmp_path / "two.mkv", *dispositions)
    # WHEN it is probed
    audio = _probe(path).facts.audio
    # THEN the audio described (and so encoded) is that track, or the first where none or
    # every track is flagged
    assert (audio.index, audio.language) == (index, language)
    assert audio.sample_rate == (44100 if index else 48000)
    # AND the other track is named as left out (the manifest's source says it), as a
    # subtitle track in the file is
    assert _probe(path).facts.audio_left_out == ["en (aac)" if index else "es (aac)"]


def test_a_live_segment_whose_declared_audio_track_is_empty_has_no_audio(tmp_path: Path) -> None:
    # GIVEN MPEG-TS whose first audio track (English) is listed without a packet (its
    # input lost) beside a Spanish one, as a venue's segment may be; and Matroska whose
    # second track is flagged default
    lost = tmp_path / "lost.ts"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
         "-itsoffset", "1000", "-f", "lavfi", "-i", "sine=duration=2",
         "-f", "lavfi", "-i", "sine=frequency=880:duration=2",
         "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-t", "2", "-metadata:s:a:0", "language=eng",
         "-metadata:s:a:1", "language=spa", str(lost)],
        check=True,
    )  # fmt: skip
    flagged = _two_audio_tracks(tmp_path / "two.mkv", "0", "default")
    # WHEN each is probed as a file, THEN the track that has sound is taken
    assert _probe(lost).facts.audio.language == "es"
    # AND as a live segment (the track it declares, or none) the lost one's has none,
    # rather than another track's, and the flagged track is still the one taken
    assert _probe(lost, audio_as_declared=True).facts.audio is None
    assert _probe(flagged, audio_as_declared=True).facts.audio.language == "es"


def _program_stream(path: Path, seconds: int, offset: int, audio: bool) -> Path:
    """``seconds`` of MPEG-PS starting at ``offset`` s, with a tone where ``audio``."""
    sound = ["-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:a", "mp2"] if audio else []
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=25:duration={seconds}", *sound,
         "-c:v", "mpeg2video", "-output_ts_offset", str(offset), "-f", "mpeg", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_a_recording_whose_microphone_comes_and_goes_is_read_to_its_end(tmp_path: Path) -> None:
    # GIVEN MPEG-PS whose sound starts at 10 s, past where the demuxer looks for streams
    # on opening, and stops at 12 s (the audio stream appears while it is read)
    parts = [
        _program_stream(tmp_path / "a.mpg", 10, 0, audio=False),
        _program_stream(tmp_path / "b.mpg", 2, 10, audio=True),
        _program_stream(tmp_path / "c.mpg", 10, 12, audio=False),
    ]
    path = tmp_path / "mic.mpg"
    path.write_bytes(b"".join(part.read_bytes() for part in parts))
    # WHEN it is probed as a live segment is, its packets read whole, again and again
    found = [_probe(path, leading_frames=True, audio_span=True).facts for _ in range(10)]
    # THEN every probe reads it to its end, none refuses it as damaged: each finds what
    # the probe that reads only its head and tail finds
    assert found == [_probe(path).facts] * 10


@pytest.mark.parametrize(
    ("name", "codec"), [("mpegps_late_sound", "mp2"), ("mpegts_late_sound", "aac")]
)
def test_sound_that_starts_past_the_head_a_file_opens_with_is_found(
    name: str, codec: str, clip: Any
) -> None:
    # GIVEN a recording whose sound starts 10 s in, past the ~5 s opening a file reads:
    # its audio stream is listed only from the file's tail, without channels or a rate
    # WHEN it is probed, THEN that stream is its audio, as its first sound describes it,
    # not a track left out (the asset was published without a sound)
    facts = _probe(clip(name)).facts
    assert facts.audio is not None
    assert (facts.audio.codec, facts.audio.channels, facts.audio.sample_rate) == (codec, 1, 48000)
    assert facts.audio_left_out == []


def test_audio_tracks_left_out_are_named_and_a_single_track_names_none(tmp_path: Path) -> None:
    # GIVEN an MP4 of a match with three audio tracks (home and away commentary, and an
    # untagged natural-sound track), and one with a single track
    path, single = tmp_path / "match.mp4", tmp_path / "single.mp4"
    run = [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
           "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2"]  # fmt: skip
    sine = ["-f", "lavfi", "-i", "sine=duration=2"]
    subprocess.run(
        [*run, *sine, *sine, *sine, "-map", "0", "-map", "1", "-map", "2", "-map", "3",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
         "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=ger",
         "-metadata:s:a:2", "language=und", str(path)],
        check=True,
    )  # fmt: skip
    subprocess.run([*run, *sine, "-c:v", "libx264", "-c:a", "aac", str(single)], check=True)
    # WHEN they are probed, THEN the match publishes its first track and names the two
    # others; the single track's file names none (and writes no field for it)
    facts = _probe(path).facts
    assert (facts.audio.index, facts.audio.language) == (0, "en")
    assert facts.audio_left_out == ["de (aac)", "und (aac)"]
    plain = _probe(single).facts
    assert plain.audio_left_out == []
    assert "audio_left_out" not in plain.to_dict()


def test_subtitle_tracks_in_the_file_are_named_as_left_out(tmp_path: Path) -> None:
    # GIVEN an MP4 with an English mov_text track and a Matroska file with an ASS and a
    # SubRip track (untagged)
    cues = tmp_path / "cues.srt"
    cues.write_text("1\n00:00:00,500 --> 00:00:01,500\nhello\n\n")
    video = ["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2", "-i", str(cues)]
    run = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", *video]
    subprocess.run(
        [*run, "-c:v", "libx264", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng",
         str(tmp_path / "tracks.mp4")],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*run, "-i", str(cues), "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264",
         "-c:s:0", "ass", "-c:s:1", "srt", str(tmp_path / "tracks.mkv")],
        check=True,
    )  # fmt: skip
    # WHEN they are probed, THEN the facts (which the manifest's source holds) name each
    # track, since only sidecar subtitle files are published
    assert _probe(tmp_path / "tracks.mp4").facts.subtitles_left_out == ["en (mov_text)"]
    assert _probe(tmp_path / "tracks.mkv").facts.subtitles_left_out == ["und (ssa)", "und (srt)"]
    # AND a file without any names none
    subprocess.run([*run[:-2], "-c:v", "libx264", str(tmp_path / "plain.mp4")], check=True)
    assert _probe(tmp_path / "plain.mp4").facts.subtitles_left_out == []


# How venue encoders and uploaders cut a live stream into 2 s MPEG-TS files: at forced
# keyframes with B-frames (clean); at an x264 or x265 open GOP's recovery points; from an
# intra-refresh run (no IDR after the first); by the clock alone, between keyframes 2.4 s
# apart. Each writes its parameter sets with every keyframe, so every file can be read.
_VENUE_CUTS = {
    "keyed": (["-force_key_frames", "expr:gte(t,n_forced*2)", "-sc_threshold", "0"], False),
    "open-gop": (["-bf", "3", "-x264-params",
                  "open-gop=1:keyint=50:min-keyint=50:scenecut=0:repeat-headers=1"], False),
    "intra-refresh": (["-x264-params", "intra-refresh=1:keyint=50:repeat-headers=1"], False),
    "clock": (["-g", "60", "-sc_threshold", "0", "-x264-params", "repeat-headers=1"], True),
    # x265's defaults: an open GOP, its CRA pictures' leading frames dropped
    "hevc-open-gop": (["-c:v", "libx265", "-x265-params",
                       "keyint=50:min-keyint=50:scenecut=0:log-level=error"], False),
}  # fmt: skip


def _venue_cut(out: Path, encoder: list[str], by_clock: bool) -> list[Path]:
    """The encoder's 2 s files as its own segment muxer writes them (at keyframes), or
    its whole stream copied into 2 s files by the clock alone."""
    out.mkdir()
    cut = ["-f", "segment", "-segment_time", "2", "-segment_format", "mpegts",
           "-reset_timestamps", "0"]  # fmt: skip
    whole = out / "encoder.ts"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25:duration=8", "-c:v", "libx264", "-preset",
         "veryfast", *encoder, *(["-f", "mpegts", str(whole)] if by_clock else
                                 [*cut, str(out / "%d.ts")])],
        check=True,
    )  # fmt: skip
    if by_clock:
        subprocess.run(
            [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(whole), "-c",
             "copy", *cut, "-break_non_keyframes", "1", str(out / "%d.ts")],
            check=True,
        )  # fmt: skip
    return sorted(out.glob("[0-9]*.ts"), key=lambda p: int(p.stem))


def _split(head: UndecodableHead | None) -> tuple[int, int]:
    return (head.cut, head.leading) if head else (0, 0)


@pytest.mark.parametrize("cut", sorted(_VENUE_CUTS))
def test_frames_before_a_segments_first_decodable_picture_are_counted(
    cut: str, tmp_path: Path
) -> None:
    # GIVEN a live stream cut into 2 s files as a venue's encoder or uploader cuts it
    segments = _venue_cut(tmp_path / cut, *_VENUE_CUTS[cut])
    lost_in_all = 0
    for segment in segments:
        # WHEN the probe reads one file's video packets for frames it cannot decode alone
        lost = _probe(segment, leading_frames=True).undecodable_head
        # THEN it counts exactly the frames ffmpeg, decoding that file alone, drops
        with av.open(str(segment)) as container:
            video = container.streams.video[0]
            packets = sum(1 for p in container.demux(video) if p.pts is not None and p.size)
        frames = decode_video(segment).frames
        assert (lost.cut + lost.leading if lost else 0) == packets - frames, (segment, lost)
        lost_in_all += packets - frames
        # AND tells a file cut between keyframes from an open GOP's leading pictures
        if lost:
            assert (lost.cut > 0) == (cut in ("clock", "intra-refresh")), (segment, lost)
        # AND its clock wrapping in the file (each ~26.5 h of an encoder's) changes nothing
        if segment.name == "1.ts":
            wrapped = segment.with_name("wrapped.ts")
            subprocess.run(
                [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(segment), "-c",
                 "copy", "-copyinkf", "-copyts", "-output_ts_offset", "95438", "-f", "mpegts",
                 str(wrapped)],
                check=True,
            )  # fmt: skip
            again = _probe(wrapped, leading_frames=True).undecodable_head
            assert _split(again) == _split(lost), (again, lost)
    # AND only the file cut at keyframes of a closed GOP loses none
    assert (lost_in_all == 0) == (cut == "keyed"), lost_in_all


@pytest.mark.parametrize(
    ("encoder", "by_clock"),
    [
        (["-g", "150", "-sc_threshold", "0"], True),
        (["-x264-params", "intra-refresh=1:keyint=50"], False),
        (["-bf", "3", "-x264-params", "open-gop=1:keyint=50:min-keyint=50:scenecut=0"], False),
    ],
    ids=["clock-cut-long-gop", "intra-refresh", "open-gop"],
)
def test_a_segment_without_its_parameter_sets_is_refused_saying_why(
    encoder: list[str], by_clock: bool, tmp_path: Path
) -> None:
    # GIVEN a live segment after the first from an encoder that writes H.264's parameter
    # sets only with an IDR frame, cut where none is (x264's defaults)
    later = _venue_cut(tmp_path / "cut", encoder, by_clock)[1]
    # WHEN it is probed THEN it is refused, saying what is missing and how to cut
    with pytest.raises(UnsupportedInputError, match="parameter sets") as refused:
        _probe(later, leading_frames=True)
    assert "repeat-headers" in str(refused.value)
