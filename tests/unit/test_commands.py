"""ffmpeg argument lists, compiled by ffmpeg-python; nothing here runs ffmpeg."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from workflow.errors import TranscodeError
from workflow.media.chunks import Chunk
from workflow.media.encode import (
    FIRST_FRAME,
    TS_OFFSET,
    build_audio_command,
    build_chunk_command,
    build_silence_command,
    thread_counts,
)
from workflow.media.ladder import HIGH_PROFILE_TOOLS, VBV_INIT, Rendition
from workflow.media.runner import listed_segments
from workflow.media.sniff import ALLOWED_DEMUXERS

WORKDIR = Path("/tmp/vidflow-job")
RUNGS = [
    Rendition("1080p", 1920, 1080, 5000, "4.0"),
    Rendition("720p", 1280, 720, 2800, "3.1"),
    Rendition("360p", 640, 360, 800, "3.0"),
]
CHUNK = Chunk(
    index=3,
    start=36.036,
    end=48.048,
    first_segment=9,
    segment_starts=[36.036, 40.036, 44.036],
)
PRESIGNED = "https://ingest.s3.amazonaws.com/uploads/my%20clip.mp4?X-Amz-Signature=abc"


def input_options(args: list[str]) -> dict[str, str]:
    """Options given before ``-i``; a flag (no value) reads as ``""``."""
    before = args[1 : args.index("-i")]
    options, i = {}, 0
    while i < len(before):
        has_value = i + 1 < len(before) and not before[i + 1].startswith("-")
        options[before[i]] = before[i + 1] if has_value else ""
        i += 2 if has_value else 1
    return options


def outputs(args: list[str]) -> list[tuple[dict[str, str], str]]:
    """(options, path) per output: each output block starts at ``-map`` and ends in a path."""
    end = args.index("-nostdin")
    starts = [i for i, a in enumerate(args[:end]) if a == "-map"]
    blocks = [args[a:b] for a, b in zip(starts, [*starts[1:], end], strict=True)]
    return [
        (dict(zip(block[:-1:2], block[1:-1:2], strict=True)), block[-1])
        for block in blocks
        if block[-1] != "-"  # the first-frame check's output, which writes nothing
    ]


def filter_chain(args: list[str], label: str, source: str = "0:v") -> list[str]:
    """The filters (``name=args``) between input ``source`` and output ``label``, in order."""
    graph = args[args.index("-filter_complex") + 1]
    producers = {}
    for statement in graph.split(";"):
        m = re.fullmatch(r"\[([^\]]+)\]([^\[]+)((?:\[[^\]]+\])+)", statement)
        assert m, statement
        for out in re.findall(r"\[([^\]]+)\]", m.group(3)):
            producers[out] = (m.group(1), m.group(2))
    chain = []
    while label in producers:
        label, step = producers[label]
        chain.append(step)
    assert label == source
    return chain[::-1]


def filter_options(chain: list[str], name: str) -> dict[str, str]:
    """The ``key=value`` options of the one filter called ``name`` in ``chain``."""
    (found,) = [step for step in chain if step.split("=", 1)[0] == name]
    return dict(part.split("=", 1) for part in found.split("=", 1)[1].split(":"))


def floats(csv: str) -> list[float]:
    return [float(x) for x in csv.split(",")]


def chunk_command(
    source: str = PRESIGNED,
    demuxer: str = "mov",
    origin: float = 0.0,
    chunk: Chunk = CHUNK,
    **options: Any,
) -> list[str]:
    return build_chunk_command(
        source, demuxer, origin, chunk, RUNGS, WORKDIR, binary="/opt/bin/ffmpeg", **options
    )


def test_the_binary_is_the_one_given() -> None:
    # GIVEN a binary path
    # WHEN a chunk command is built
    args = chunk_command()

    # THEN it is the first argument and the source is one argument after -i
    assert args[0] == "/opt/bin/ffmpeg"
    assert args[args.index("-i") + 1] == PRESIGNED


@pytest.mark.parametrize("demuxer", ALLOWED_DEMUXERS)
def test_the_input_is_read_with_the_forced_demuxer_and_the_allow_list(demuxer: str) -> None:
    # GIVEN a local path and a demuxer the probe identified
    # WHEN a chunk command is built
    options = input_options(chunk_command("/data/in put.bin", demuxer))

    # THEN the demuxer is forced, only allowed demuxers may be nested, and only files opened
    assert options["-f"] == demuxer
    assert set(options["-format_whitelist"].split(",")) == set(ALLOWED_DEMUXERS)
    assert options["-protocol_whitelist"] == "file"


def test_an_https_source_may_only_use_https() -> None:
    # GIVEN a presigned https URL
    # WHEN a chunk command is built
    options = input_options(chunk_command(PRESIGNED))

    # THEN only https over TLS over TCP may be opened: no file, http, concat, data...
    assert options["-protocol_whitelist"] == "https,tls,tcp"


@pytest.mark.parametrize("demuxer", ["hls", "concat", "image2", "", "mov,mp4,m4a", "lavfi"])
def test_a_demuxer_outside_the_allow_list_is_refused(demuxer: str) -> None:
    # GIVEN a demuxer vidflow does not allow
    # WHEN / THEN no command is built, for video or audio
    with pytest.raises(ValueError):
        chunk_command("/data/x", demuxer)
    with pytest.raises(ValueError):
        build_audio_command("/data/x", demuxer, 0.0, 10.0, WORKDIR, kbps=128, segment_seconds=4.0)


def test_timestamps_are_copied_and_the_seek_is_the_chunk_start() -> None:
    # GIVEN a chunk starting at 36.036 s in a container that starts at 0 and has an index
    # WHEN its command is built
    args = chunk_command(origin=0.0)

    # THEN timestamps are kept from the source and the input seeks to the chunk start,
    # handing on every frame from the keyframe it lands on (the trim cuts exactly)
    assert args.count("-copyts") == 1
    options = input_options(args)
    assert float(options["-ss"]) == pytest.approx(CHUNK.start, abs=1e-6)
    assert options["-noaccurate_seek"] == ""


def test_the_seek_counts_from_the_container_start() -> None:
    # GIVEN a container whose timestamps start at 1.4 s
    # WHEN the chunk at 36.036 s is built
    args = chunk_command(origin=1.4)

    # THEN -ss is the chunk start measured from the container start
    assert float(input_options(args)["-ss"]) == pytest.approx(CHUNK.start - 1.4, abs=1e-6)


def test_a_chunk_of_a_source_without_an_index_seeks_its_margin_earlier() -> None:
    # GIVEN a chunk of an MPEG-TS (cut by time, 3 s margin) and a retry with a larger one
    chunk = replace(CHUNK, margin=3.0)
    # WHEN its commands are built
    first = input_options(chunk_command(demuxer="mpegts", origin=1.4, chunk=chunk))
    again = input_options(chunk_command(demuxer="mpegts", origin=1.4, chunk=chunk, margin=12.0))

    # THEN each seeks that far before the chunk
    assert float(first["-ss"]) == pytest.approx(CHUNK.start - 1.4 - 3.0, abs=1e-6)
    assert float(again["-ss"]) == pytest.approx(CHUNK.start - 1.4 - 12.0, abs=1e-6)


def test_a_margin_back_past_the_start_reads_from_the_top() -> None:
    # GIVEN a margin reaching back before the container's start
    # WHEN the command is built
    options = input_options(chunk_command(origin=1.4, margin=CHUNK.start))

    # THEN it does not seek at all
    assert "-ss" not in options and "-noaccurate_seek" not in options


def test_one_output_per_rung_with_its_size_bitrate_and_directory() -> None:
    # GIVEN three rungs
    # WHEN a chunk command is built
    args = chunk_command()
    found = outputs(args)

    # THEN there is one output per rung, scaled to its size, at its bitrate and level,
    # writing numbered segments into the rung's own directory
    assert len(found) == len(RUNGS)
    assert f"split={len(RUNGS)}" in args[args.index("-filter_complex") + 1]
    for rung, (options, path) in zip(RUNGS, found, strict=True):
        assert path == str(WORKDIR / rung.name / "seg_%05d.ts")
        chain = filter_chain(args, options["-map"].strip("[]"))
        # limited range, whatever the source's
        assert f"scale={rung.width}:{rung.height}:out_range=tv" in chain
        assert "format=yuv420p" in chain
        assert options["-c:v"] == "libx264"
        assert options["-b:v"] == f"{rung.kbps}k"
        assert int(options["-maxrate"].rstrip("k")) >= rung.kbps
        assert options["-x264-params"] == f"vbv-init={VBV_INIT}:{HIGH_PROFILE_TOOLS}"
        assert options["-level:v"] == rung.level
        assert options["-segment_list"] == str(WORKDIR / rung.name / "segments.csv")


def test_every_rung_encodes_exactly_the_frames_presented_in_the_chunk() -> None:
    # GIVEN a chunk from 36.036 s to 48.048 s
    # WHEN its command is built
    args = chunk_command()

    # THEN each rung keeps the decoded frames presented in [start, end) and no others,
    # whatever the decoder hands on from before the start
    for options, _ in outputs(args):
        trim = filter_options(filter_chain(args, options["-map"].strip("[]")), "trim")
        assert (float(trim["start"]), float(trim["end"])) == (CHUNK.start, CHUNK.end)
        assert "-frames:v" not in options


def test_the_last_chunk_keeps_every_frame_after_its_start() -> None:
    # GIVEN the source's last chunk, whose end is the container's estimate
    # WHEN its command is built
    args = chunk_command(final=True)

    # THEN nothing after its start is cut off
    for options, _ in outputs(args):
        trim = filter_options(filter_chain(args, options["-map"].strip("[]")), "trim")
        assert float(trim["start"]) == CHUNK.start and "end" not in trim


def test_a_picture_of_another_shape_is_fitted_into_each_rung_and_padded() -> None:
    # GIVEN a live segment at 4:3 in a stream whose rungs are 16:9
    args = chunk_command(fit=True)
    # THEN every rung scales it down inside its own size, keeping its shape, and pads it
    # to that size, centred
    for (options, _), rung in zip(outputs(args), RUNGS, strict=True):
        chain = filter_chain(args, options["-map"].strip("[]"))
        (scale,) = [step for step in chain if step.startswith("scale=")]
        (pad,) = [step for step in chain if step.startswith("pad=")]
        assert scale.startswith(f"scale={rung.width}:{rung.height}:")
        assert "force_original_aspect_ratio=decrease" in scale
        assert pad == f"pad={rung.width}:{rung.height}:(ow-iw)/2:(oh-ih)/2"
    # AND a picture of the rungs' shape is only scaled
    plain = chunk_command()
    for options, _ in outputs(plain):
        chain = filter_chain(plain, options["-map"].strip("[]"))
        assert not any(step.startswith("pad=") or "force_original" in step for step in chain)


def test_a_faster_frame_rate_is_converted_after_the_trim() -> None:
    args = chunk_command(frame_rate=29.97)
    for options, _ in outputs(args):
        chain = [step.split("=", 1)[0] for step in filter_chain(args, options["-map"].strip("[]"))]
        assert chain.index("trim") < chain.index("fps") < chain.index("scale")
        assert (
            filter_options(filter_chain(args, options["-map"].strip("[]")), "fps")["fps"]
            == "29.970000"
        )
    assert all(
        "fps" not in step
        for o, _ in outputs(chunk_command())
        for step in filter_chain(chunk_command(), o["-map"].strip("[]"))
    )


def test_silence_stands_in_for_a_live_segments_missing_audio() -> None:
    # GIVEN live segment 42, 4 s from 169.4 s, without audio in a stream with audio
    args = build_silence_command(
        169.4, 4.0, WORKDIR, kbps=128, segment_seconds=3604.0, binary="ffmpeg",
        first_segment=42, drop_priming=True,
    )  # fmt: skip
    # THEN it encodes 4 s of stereo silence at the segment's place, as its audio would be
    assert args[args.index("-i") - 2 : args.index("-i") + 2] == [
        "-t", "4.000000", "-i", "anullsrc=r=48000:cl=stereo",
    ]  # fmt: skip
    ((options, _),) = outputs(args)
    assert options["-output_ts_offset"] == f"{169.4 + TS_OFFSET:.6f}"
    assert options["-segment_start_number"] == "42" and options["-bsf:a"] == r"noise=drop=eq(n\,0)"


def test_the_first_decoded_frame_is_written_down_for_the_check() -> None:
    # GIVEN a chunk
    # WHEN its command is built
    args = chunk_command()

    # THEN the first frame decoded, before any trim, is printed to the first-frame file
    (label,) = [args[i + 1] for i, a in enumerate(args) if a == "-map" and args[i + 4] == "-"]
    chain = filter_chain(args, label.strip("[]"))
    assert filter_options(chain, "trim") == {"end_frame": "1"}
    assert any(f"file={WORKDIR / FIRST_FRAME}" in step for step in chain)


def test_keyframes_are_forced_at_every_segment_start() -> None:
    # GIVEN a chunk with segments at 36.036, 40.036 and 44.036 s
    # WHEN its command is built
    found = outputs(chunk_command())

    # THEN every rung forces a keyframe at the later two, from just before each (a time
    # written to six decimals may be past its frame); the first frame is one anyway. No
    # scene-cut or GOP keyframe lands in between
    for options, _ in found:
        forced = floats(options["-force_key_frames"])
        assert forced == pytest.approx(CHUNK.segment_starts[1:], abs=2e-6)
        assert all(f < t for f, t in zip(forced, CHUNK.segment_starts[1:], strict=True))
        assert options["-sc_threshold"] == "0"
        assert int(options["-g"]) > CHUNK.duration * 240


def test_segments_are_cut_relative_to_the_chunk_and_numbered_from_its_first() -> None:
    # GIVEN a chunk starting at 36.036 s whose first segment is number 9
    # WHEN its command is built
    found = outputs(chunk_command())

    # THEN the segment muxer cuts 4 s and 8 s into the chunk and numbers from 9
    for options, _ in found:
        assert options["-f"] == "segment"
        assert options["-segment_format"] == "mpegts"
        cuts = floats(options["-segment_times"])
        assert cuts == pytest.approx([4.0, 8.0], abs=0.002)
        assert all(c < t for c, t in zip(cuts, [4.0, 8.0], strict=True))
        assert int(options["-segment_start_number"]) == CHUNK.first_segment
        assert float(options["-output_ts_offset"]) == TS_OFFSET


def test_a_one_segment_chunk_is_never_split() -> None:
    # GIVEN a 2.5 s chunk with a single segment
    chunk = Chunk(0, 0.0, 2.5, 0, [0.0])

    # WHEN its command is built
    args = build_chunk_command("/data/x.ts", "mpegts", 0.0, chunk, RUNGS[:1], WORKDIR)
    ((options, _),) = outputs(args)

    # THEN no split point is given and the segment length exceeds the chunk
    assert "-segment_times" not in options
    assert float(options["-segment_time"]) > chunk.duration
    assert int(options["-segment_start_number"]) == 0


def audio_command(source: str = "/data/a b.mkv", demuxer: str = "matroska") -> list[str]:
    # The video's span: it starts at 1.5 s and lasts 30.25 s.
    return build_audio_command(
        source,
        demuxer,
        1.5,
        30.25,
        WORKDIR,
        kbps=128,
        segment_seconds=4.0,
        binary="/opt/bin/ffmpeg",
    )


def test_the_audio_input_is_forced_local_only_and_read_from_the_top() -> None:
    # GIVEN a Matroska file on disk
    # WHEN the audio command is built
    args = audio_command()
    inputs = input_options(args)

    # THEN the demuxer is forced, only files may be opened, and there is no input seek
    # (the audio is cut by timestamp instead, so nothing muxed early is skipped)
    assert args[0] == "/opt/bin/ffmpeg"
    assert args[args.index("-i") + 1] == "/data/a b.mkv"
    assert inputs["-f"] == "matroska"
    assert set(inputs["-format_whitelist"].split(",")) == set(ALLOWED_DEMUXERS)
    assert inputs["-protocol_whitelist"] == "file"
    assert "-ss" not in inputs
    assert args.count("-copyts") == 1


def test_the_audio_is_cut_and_padded_to_the_video_span() -> None:
    # GIVEN the video's span, 1.5 s to 31.75 s
    # WHEN the audio command is built
    args = audio_command()
    ((options, _),) = outputs(args)
    chain = filter_chain(args, options["-map"].strip("[]"), source="0:a:0")

    # THEN the audio is trimmed to that span and padded with silence to its whole length
    trim = filter_options(chain, "atrim")
    assert float(trim["start"]) == pytest.approx(1.5)
    assert float(trim["end"]) - float(trim["start"]) == pytest.approx(30.25)
    assert float(filter_options(chain, "apad")["whole_dur"]) == pytest.approx(30.25)
    # and its timestamps are shifted to line up with the video's (source time + offset)
    assert float(options["-output_ts_offset"]) == pytest.approx(1.5 + TS_OFFSET)


def test_the_audio_output_is_stereo_aac_in_segments() -> None:
    # GIVEN the audio command for 128 kbps and 4 s segments
    args = audio_command()
    ((options, path),) = outputs(args)

    # THEN it encodes 2-channel AAC at that rate into numbered MPEG-TS segments
    assert options["-c:a"] == "aac"
    assert options["-ac"] == "2"
    assert options["-b:a"] == "128k"
    assert options["-f"] == "segment"
    assert options["-segment_format"] == "mpegts"
    assert float(options["-segment_time"]) == pytest.approx(4.0)
    assert path == str(WORKDIR / "audio" / "seg_%05d.ts")
    assert options["-segment_list"] == str(WORKDIR / "audio" / "segments.csv")


def test_a_live_segments_audio_is_numbered_by_sequence_and_drops_the_encoder_delay() -> None:
    # GIVEN the audio of live segment 42, encoded on its own
    args = build_audio_command(
        "/data/42.ts",
        "mpegts",
        169.4,
        4.0,
        WORKDIR,
        kbps=128,
        segment_seconds=3604.0,
        binary="ffmpeg",
        first_segment=42,
        drop_priming=True,
    )
    ((options, _),) = outputs(args)
    # THEN its one segment is named for the sequence, and the encoder's first packet (its
    # priming delay, which would overlap the previous segment) is dropped
    assert options["-segment_start_number"] == "42"
    assert options["-bsf:a"] == r"noise=drop=eq(n\,0)"
    # AND a VOD audio track keeps every packet
    ((vod, _),) = outputs(audio_command())
    assert "-bsf:a" not in vod and vod["-segment_start_number"] == "0"


def test_cmaf_fragments_start_at_their_first_frames_presentation_time() -> None:
    # GIVEN the video and audio commands for CMAF
    video = build_chunk_command(
        PRESIGNED, "mov", 0.0, CHUNK, RUNGS, WORKDIR, binary="ffmpeg", packaging="cmaf"
    )
    audio = build_audio_command(
        PRESIGNED, "mov", 0.0, 30.0, WORKDIR, kbps=128, segment_seconds=4.0, packaging="cmaf"
    )
    for options, path in outputs(video) + outputs(audio):
        muxer = dict(o.split("=", 1) for o in options["-segment_format_options"].split(":"))
        flags = set(muxer["movflags"].split("+"))
        # THEN each segment is a fragmented MP4 whose tfdt is the packet's own time ...
        assert options["-segment_format"] == "mp4" and path.endswith("seg_%05d.mp4")
        assert {"frag_keyframe", "empty_moov", "frag_discont"} <= flags
        assert muxer["avoid_negative_ts"] == "disabled"
        # AND tfdt is the first frame's presentation time, the B-frame delay an edit list
        # the muxer writes once it has seen that frame: HLS players start at tfdt
        assert {"delay_moov"} <= flags and muxer["use_editlist"] == "1"
        assert "negative_cts_offsets" not in flags


def test_the_audio_input_of_an_https_source_is_https_only() -> None:
    # GIVEN a presigned URL
    # WHEN the audio command is built
    args = audio_command(PRESIGNED, "mov")

    # THEN the same protocol allow-list applies
    assert input_options(args)["-protocol_whitelist"] == "https,tls,tcp"


@pytest.mark.parametrize("cpus", [1, 2, 6, 16])
def test_threads_follow_the_pixels_each_part_works_on(cpus: int) -> None:
    # GIVEN a 1080p source and a job with some number of CPUs
    # WHEN its decoder's and encoders' threads are sized
    decoder, *encoders = thread_counts(cpus, 1920 * 1080, RUNGS)

    # THEN each part has one at least, a bigger rung never fewer than a smaller one, the
    # decoder no more than the top rung's encoder, and together they are one x264's
    # default (1.5 per CPU), each part's share rounded up: not that for every part
    parts = [decoder, *encoders]
    assert min(parts) >= 1
    assert encoders == sorted(encoders, reverse=True)
    assert decoder <= encoders[0]
    assert 1.5 * cpus <= sum(parts) < 1.5 * cpus + len(parts)


def test_two_cpus_give_the_top_rung_two_threads_and_six_share_them_by_size() -> None:
    # GIVEN the bench's ladder shape on a 1080p source
    # WHEN sized for 2 CPUs (a laptop running two chunks at once) and for 6 (a 10 GB Lambda)
    # THEN two give the top rung two and the rest one; six give the bigger rungs and the
    # decoder more
    assert thread_counts(2, 1920 * 1080, RUNGS) == [1, 2, 1, 1]
    assert thread_counts(6, 1920 * 1080, RUNGS) == [3, 5, 2, 1]


def test_a_chunk_given_its_cpus_sizes_the_decoder_and_each_encoder() -> None:
    # GIVEN a job with 6 CPUs and a 4K source
    # WHEN its chunk command is built
    args = chunk_command(cpus=6, source_pixels=3840 * 2160)

    # THEN the decoder's threads come before -i and each rung has its own count, as sized
    decoder, *encoders = thread_counts(6, 3840 * 2160, RUNGS)
    assert input_options(args)["-threads"] == str(decoder)
    assert [int(options["-threads"]) for options, _ in outputs(args)] == encoders
    # and a 4K source's decode, four times a 1080p one's pixels, gets more threads
    assert decoder > thread_counts(6, 1920 * 1080, RUNGS)[0]


def test_without_cpus_ffmpeg_chooses_and_reproducible_runs_one_thread_per_rung() -> None:
    # GIVEN no CPU count, and then a reproducible encode with one
    plain, reproducible = chunk_command(), chunk_command(cpus=6, reproducible=True)

    # THEN the first leaves threads to ffmpeg; the second runs each x264 on one thread
    assert "-threads" not in plain
    assert [options["-threads"] for options, _ in outputs(reproducible)] == ["1"] * len(RUNGS)
    assert "-threads" not in input_options(reproducible)


def _listing(directory: Path, starts: list[float]) -> Path:
    directory.mkdir()
    rows = [f"seg_{n:05d}.ts,{start:.6f},{start + 2:.6f}" for n, start in enumerate(starts)]
    (directory / "segments.csv").write_text("\n".join(rows) + "\n")
    return directory


def test_listed_segments_last_until_the_next_starts(tmp_path: Path) -> None:
    # the segment muxer writes the first start as 0: it is the span's start
    listed = listed_segments(_listing(tmp_path / "360p", [0.0, 14.0, 16.0]), 10.0, 18.0)
    assert [s.duration for s in listed] == [4.0, 2.0, 2.0]


def test_segments_that_run_backwards_are_refused(tmp_path: Path) -> None:
    # GIVEN a listing whose timestamps ffmpeg had to move (a source starting before the
    # output offset can hold), so that a later segment starts before an earlier one
    folder = _listing(tmp_path / "360p", [0.0, 14.437689, 14.0])
    # THEN no playlist is made of it: a segment would last -0.437689 s
    with pytest.raises(TranscodeError, match="do not follow each other"):
        listed_segments(folder, 10.0, 18.0)
