"""Which frames a chunk's quality report scores (``media.quality``): the segments it
samples, the stride, the bound on what it keeps, and how the kept source frames are
matched to the segments they were encoded into."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.errors import TranscodeError
from workflow.live.segment import ProbedSegment
from workflow.media import picture, quality
from workflow.media.ladder import build_ladder

LADDER = build_ladder(1920, 1080, 30, "1080:5000,360:800")


@pytest.mark.parametrize(
    ("count", "picked"),
    [(1, [0]), (2, [0]), (3, [1]), (4, [1]), (5, [1]), (6, [1, 4]), (7, [1, 4]), (9, [1, 4, 7])],
)
def test_a_chunk_samples_the_middle_of_every_three_segments(count: int, picked: list[int]) -> None:
    # Never a chunk's last of several (a source's end may leave it short), never none.
    assert quality.sampled_segments(count, 3) == picked
    assert quality.sampled_segments(count, 1) == list(range(count))


def test_a_job_s_chunks_sample_every_place_in_a_chunk_alike() -> None:
    # x264 starts each chunk cold, so its first segment scores lower than the rest: a
    # report that never sampled first segments would read high.
    chunks = [quality.sampled_segments(3, 3, turn, final=False) for turn in range(6)]
    assert chunks == [[1], [2], [0], [1], [2], [0]]
    places = [i for turn in range(30) for i in quality.sampled_segments(6, 3, turn, False)]
    assert sorted(places.count(i) for i in range(6)) == [10] * 6
    # The final chunk never scores its last segment of several, which may be short.
    assert quality.sampled_segments(3, 3, 1, final=True) == [1]
    assert quality.sampled_segments(2, 3, 2, final=True) == [0]
    assert quality.sampled_segments(2, 3, 2, final=False) == [0]
    assert quality.sampled_segments(2, 3, 1, final=False) == [1]
    assert quality.sampled_windows([12.0, 16.0, 20.0], 3, 2, final=False) == [(None, 16.0)]


def test_the_encode_s_share_of_a_chunk_shrinks_as_its_report_scores_more() -> None:
    assert quality.encode_share(0.0, 11) == 1.0
    hour = quality.encode_share(1 / 3, 37)
    minute = quality.encode_share(1 / 3, quality.SAMPLED_STRIDE)
    every_segment = quality.encode_share(1.0, 5)
    assert 1.0 > hour > minute > every_segment > 0.5
    # The bench measured +4-13 % of a chunk's CPU for a sampled report.
    assert 0.85 < minute < 0.96


def test_windows_leave_the_chunk_s_own_bounds_to_its_trim() -> None:
    starts = [12.0, 16.0, 20.0, 24.0]
    assert quality.sampled_windows(starts, 3) == [(16.0, 20.0)]
    assert quality.sampled_windows(starts, 1) == [
        (None, 16.0), (16.0, 20.0), (20.0, 24.0), (24.0, None)
    ]  # fmt: skip
    assert quality.sampled_windows([12.0], 3) == [(None, None)]


def test_long_jobs_sample_segments_and_short_ones_do_not() -> None:
    hour = quality.report_sampling(30 * 3600, [3] * 300, 1920 * 1080)
    assert hour == quality.Sampling(stride=37, segment_every=3)
    minute = quality.report_sampling(30 * 60, [3] * 5, 1920 * 1080)
    assert minute == quality.Sampling(stride=quality.SAMPLED_STRIDE, segment_every=3)
    # Sampled segments are never scored more densely than every SAMPLED_STRIDE-th frame
    # (the cost), whatever the job's own stride would be.
    slow = quality.report_sampling(15 * 60, [3] * 5, 1920 * 1080)
    assert quality.report_stride(15 * 60) < quality.SAMPLED_STRIDE
    assert slow == quality.Sampling(stride=quality.SAMPLED_STRIDE, segment_every=3)
    short = quality.report_sampling(30 * 10, [3], 640 * 360)
    assert short == quality.Sampling(stride=1, segment_every=1)
    # At 1080p every other frame of ten seconds would be more than a chunk may keep: the
    # next odd prime past what it may keep
    assert quality.report_sampling(30 * 10, [3], 1920 * 1080) == quality.Sampling(5, 1)


@pytest.mark.parametrize("pixels", [640 * 360, 1920 * 1080, 3840 * 2160])
@pytest.mark.parametrize("seconds", [5, 12, 16, 60, 600, 3600, 4 * 3600])
def test_a_report_scores_every_frame_type_alike(pixels: int, seconds: int) -> None:
    # GIVEN any job's sampling (x264's B-frame pattern repeats every 2 or 4 frames)
    chunks = max(1, seconds // 12)
    sampling = quality.report_sampling(30 * seconds, [3] * chunks, pixels)
    # THEN its stride is odd: the frames it scores (every stride-th) fall on each place
    # of the pattern alike
    assert sampling.stride == 1 or sampling.stride % 2 == 1
    scored = range(0, 4 * sampling.stride, sampling.stride)
    assert sorted(n % 4 for n in scored) == [0, 1, 2, 3]


def test_what_a_chunk_keeps_is_bounded() -> None:
    # One-hour chunks of 4K: the kept frames, three bytes a pixel, stay in the budget.
    pixels = 3840 * 2160
    sampling = quality.report_sampling(30 * 7200, [900, 900], pixels)
    per_chunk = 300 * 4 * 30  # 300 sampled segments of 4 s at 30 fps
    kept = 2 * per_chunk / sampling.stride + 1
    assert kept * 3 * pixels <= quality.REFERENCE_BUDGET
    assert sampling.stride > quality.LONGEST_STRIDE


def test_scored_count_follows_libvmaf_s_subsampling() -> None:
    # Frames 0, 2, 3, 5, 6, 8, 9 are sent (each 3rd and the one before); every other scored.
    assert quality.scored_count(10, 3) == 4
    assert quality.scored_count(10, 1) == 10
    assert quality.scored_count(0, 3) == 0


def _chunk_files(workdir: Path, keys: str, kept: range) -> None:
    (workdir / quality.SEGMENT_PACKETS).write_text("\n".join(keys) + "\n")
    printed = "frame:{n} pts:{pts}  pts_time:{t}\nframe=1\n"
    (workdir / quality.CHUNK_FRAMES).write_text(
        "".join(printed.format(n=n, pts=100 * n + 7, t=n / 10) for n in range(len(keys)))
    )
    (workdir / quality.REFERENCE_FRAMES).write_text(
        "".join(printed.format(n=i, pts=100 * n + 7, t=n / 10) for i, n in enumerate(kept))
    )


def test_kept_frames_are_matched_to_their_segment_by_frame_number(tmp_path: Path) -> None:
    # Three segments of 4, 5 and 3 frames; frames 4-8 (the second segment) were kept.
    _chunk_files(tmp_path, "KNNNKNNNNKNN", range(4, 9))
    segments = {r.name: [tmp_path / f"{r.name}-{i}.ts" for i in range(3)] for r in LADDER}
    command, scored = quality.sampled_scoring_command("ffmpeg", LADDER, segments, 3, tmp_path)
    assert scored == quality.scored_count(5, 3)
    for rung in LADDER:
        listing = (tmp_path / f"{rung.name}.sampled.txt").read_text()
        assert listing == f"file '{tmp_path}/{rung.name}-1.ts'\n"
    inputs = [command[i + 1] for i, a in enumerate(command) if a == "-i"]
    assert inputs[0] == str(tmp_path / quality.REFERENCE) and len(inputs) == 1 + len(LADDER)
    graphs = [command[i + 1] for i, a in enumerate(command) if a == "-filter_complex"]
    assert [g.startswith(f"[{i + 1}:v]") for i, g in enumerate(graphs)] == [True, True]
    assert all(r"not(mod(n\,3))" in g and "n_subsample=2" in g for g in graphs)


@pytest.mark.parametrize(
    "kept",
    [
        range(5, 10),  # shifted by a frame: the same count, every pair wrong
        range(4, 8),  # a frame short
        range(2, 9),  # across two segments
        range(4, 11),  # a segment and part of the next
    ],
)
def test_kept_frames_that_are_not_one_segment_s_are_refused(tmp_path: Path, kept: range) -> None:
    _chunk_files(tmp_path, "KNNNKNNNNKNN", kept)
    segments = {r.name: [tmp_path / f"{i}.ts" for i in range(3)] for r in LADDER}
    with pytest.raises(TranscodeError, match="kept, not segment"):
        quality.sampled_scoring_command("ffmpeg", LADDER, segments, 3, tmp_path)


def test_every_segment_kept_is_every_segment_scored(tmp_path: Path) -> None:
    # A short job keeps every frame: one run of frames, three segments.
    _chunk_files(tmp_path, "KNNNKNNNNKNN", range(12))
    segments = {r.name: [tmp_path / f"{i}.ts" for i in range(3)] for r in LADDER}
    _, scored = quality.sampled_scoring_command("ffmpeg", LADDER, segments, 1, tmp_path)
    assert scored == 12
    listing = (tmp_path / f"{LADDER[0].name}.sampled.txt").read_text().splitlines()
    assert listing == [f"file '{tmp_path}/{i}.ts'" for i in range(3)]


def test_a_repeated_timestamp_is_matched_in_turn(tmp_path: Path) -> None:
    # A broken source presents frames 5 and 6 at one time; segment 1 (4-8) was kept.
    _chunk_files(tmp_path, "KNNNKNNNNKNN", range(4, 9))
    printed = "frame:{n} pts:{pts}  pts_time:0\nframe=1\n"
    stamps = [0, 1, 2, 3, 4, 5, 5, 7, 8, 9, 10, 11]
    (tmp_path / quality.CHUNK_FRAMES).write_text(
        "".join(printed.format(n=n, pts=pts) for n, pts in enumerate(stamps))
    )
    (tmp_path / quality.REFERENCE_FRAMES).write_text(
        "".join(printed.format(n=i, pts=stamps[n]) for i, n in enumerate(range(4, 9)))
    )
    segments = {r.name: [tmp_path / f"{i}.ts" for i in range(3)] for r in LADDER}
    _, scored = quality.sampled_scoring_command("ffmpeg", LADDER, segments, 1, tmp_path)
    assert scored == 5
    assert (tmp_path / f"{LADDER[0].name}.sampled.txt").read_text() == f"file '{tmp_path}/1.ts'\n"
    # A kept time the chunk never had is refused by name.
    (tmp_path / quality.REFERENCE_FRAMES).write_text(printed.format(n=0, pts=6))
    with pytest.raises(TranscodeError, match="not the chunk's"):
        quality.sampled_scoring_command("ffmpeg", LADDER, segments, 1, tmp_path)


def test_packets_that_do_not_add_up_are_refused(tmp_path: Path) -> None:
    _chunk_files(tmp_path, "KNNNKNNNNKNN", range(4, 9))
    (tmp_path / quality.SEGMENT_PACKETS).write_text("K\nN\nK\n")
    segments = {r.name: [tmp_path / f"{i}.ts" for i in range(3)] for r in LADDER}
    with pytest.raises(TranscodeError, match="packets"):
        quality.sampled_scoring_command("ffmpeg", LADDER, segments, 3, tmp_path)


def test_the_reference_output_keeps_only_the_windows(tmp_path: Path) -> None:
    args = quality.reference_args({"start": "12.000000"}, [(16.0, 20.0)], 37, tmp_path)
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:v]trim=start=12.000000,")
    # an interlaced HDR source's reference is deinterlaced and tone-mapped as its rungs
    # are, before the cut
    filters = picture.source_filters(
        ProbedSegment("mpegts", 0.0, 0.0, 1.0, True, interlaced=True, hdr="hlg")
    )
    args = quality.reference_args({"start": "12.000000"}, [(16.0, 20.0)], 37, tmp_path, filters)
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:v]bwdif=mode=send_frame:parity=auto:deint=interlaced,zscale=")
    assert "tin=arib-std-b67" in graph and ",tonemap=" in graph
    assert graph.index(",tonemap=") < graph.index("trim=start=12.000000,")
    assert r"select='(gte(t\,15.999999)*lt(t\,19.999999))'" in graph
    assert r"not(mod(n\,37))" in graph and args[-1] == str(tmp_path / quality.REFERENCE)
    assert args[args.index("-fps_mode") + 1] == "passthrough"
    with pytest.raises(ValueError, match="unsafe"):
        quality.reference_args({}, [(None, None)], 1, Path("/tmp/a b"))


def test_keyframes_the_muxer_did_not_cut_at_leave_the_chunk_unscored(tmp_path: Path) -> None:
    # Two keyframes, but the muxer wrote one segment (a source starting after the chunk's
    # first segment time): the frames' segments are not known, so nothing is scored.
    _chunk_files(tmp_path, "KNNNKNNN", range(8))
    segments = {r.name: [tmp_path / "0.ts"] for r in LADDER}
    assert quality.sampled_scoring_command("ffmpeg", LADDER, segments, 1, tmp_path) == ([], 0)
