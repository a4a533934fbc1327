"""The chunk plan: keyframe-aligned chunks that tile the source, and their HLS segments."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from workflow.media.chunks import Chunk, FrameIndex, plan_chunks, segment_starts

CHUNK = 12.0
SEGMENT = 4.0
EPS = 1e-6


def index_of(keyframes: list[float], end: float, fps: float = 30.0) -> FrameIndex:
    """A frame index whose GOPs hold one frame every 1/fps seconds."""
    bounds = [*keyframes, end]
    gops = [max(1, round((b - a) * fps)) for a, b in pairwise(bounds)]
    return FrameIndex(keyframes=list(keyframes), gop_frames=gops, end=end)


def every(step: float, end: float, start: float = 0.0) -> list[float]:
    count = int((end - start) / step - 1e-9) + 1
    return [round(start + i * step, 6) for i in range(count)]


INDEXES = [
    pytest.param(index_of(every(2.0, 60.0), 60.0), id="2s-gops-60s"),
    pytest.param(index_of(every(1.0, 37.3), 37.3), id="1s-gops-ragged-end"),
    pytest.param(index_of(every(2.002, 95.0), 95.0, fps=29.97), id="ntsc-2.002s-gops"),
    pytest.param(index_of(every(2.0, 61.4, start=1.4), 61.4), id="starts-late"),
    pytest.param(
        index_of([0.0, 1.7, 5.2, 9.9, 10.4, 13.0, 22.2, 30.0, 31.1], 33.3), id="scene-cuts"
    ),
    pytest.param(index_of([0.0, 20.0, 40.0], 47.0), id="sparse-20s-gops"),
    pytest.param(index_of([0.0, 1.0, 30.0], 40.0), id="keyframe-right-after-start"),
    pytest.param(index_of([0.0], 100.0), id="single-keyframe-100s"),
    pytest.param(index_of([0.0], 0.5), id="half-second"),
    pytest.param(index_of(every(2.0, 15.9), 15.9), id="under-chunk-plus-segment"),
    pytest.param(index_of(every(0.5, 30.0), 30.0), id="half-second-gops"),
    pytest.param(index_of(every(10.0, 41.0), 41.0, fps=25.0), id="10s-gops"),
]


@pytest.mark.parametrize("index", INDEXES)
def test_chunks_start_at_keyframes_and_tile_the_source(index: FrameIndex) -> None:
    # GIVEN a frame index
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN chunks are numbered in order, each starts on a keyframe, and together they
    # run from the first keyframe to the end with no gap and no overlap
    assert chunks
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.start in index.keyframes for c in chunks)
    assert chunks[0].start == index.keyframes[0]
    assert chunks[-1].end == index.end
    for before, after in pairwise(chunks):
        assert before.end == after.start
    assert all(c.end > c.start for c in chunks)


@pytest.mark.parametrize("index", INDEXES)
def test_chunk_frames_are_the_frames_of_its_gops(index: FrameIndex) -> None:
    # GIVEN a frame index
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN every chunk counts the frames of the GOPs that start inside it, and the
    # chunks together count every frame once
    for chunk in chunks:
        inside = [
            n
            for key, n in zip(index.keyframes, index.gop_frames, strict=True)
            if chunk.start <= key < chunk.end
        ]
        assert chunk.frames == sum(inside)
    assert sum(c.frames for c in chunks) == index.frame_count


@pytest.mark.parametrize("index", INDEXES)
def test_segments_start_at_the_chunk_and_every_segment_seconds(index: FrameIndex) -> None:
    # GIVEN a frame index
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN each chunk's segments start at the chunk, are spaced exactly SEGMENT apart,
    # all start inside the chunk, and the last one is neither a sliver (under a quarter
    # segment) nor long enough to hold another full segment plus that quarter
    for chunk in chunks:
        starts = chunk.segment_starts
        assert starts[0] == chunk.start
        for k, t in enumerate(starts):
            assert t == pytest.approx(chunk.start + k * SEGMENT, abs=EPS)
            assert t < chunk.end
        tail = chunk.end - starts[-1]
        if len(starts) > 1:
            assert tail >= SEGMENT / 4 - EPS, chunk
        assert tail < SEGMENT * 1.25 + EPS, chunk


@pytest.mark.parametrize("index", INDEXES)
def test_segment_numbers_are_contiguous_across_chunks(index: FrameIndex) -> None:
    # GIVEN a frame index
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN each chunk's first segment number follows the previous chunk's last
    expected = 0
    for chunk in chunks:
        assert chunk.first_segment == expected
        expected += len(chunk.segment_starts)


@pytest.mark.parametrize("index", INDEXES)
def test_a_cut_chunk_is_at_least_a_segment_long(index: FrameIndex) -> None:
    # GIVEN a frame index
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN every chunk but the last is at least one segment long
    assert all(c.duration >= SEGMENT - EPS for c in chunks[:-1])


def test_regular_gops_give_chunks_of_exactly_chunk_seconds() -> None:
    # GIVEN a 60 s source with a keyframe every 2 s
    index = index_of(every(2.0, 60.0), 60.0)

    # WHEN it is planned with 12 s chunks of 4 s segments
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN it is five 12 s chunks of three segments, numbered 0..14
    assert [(c.start, c.end) for c in chunks] == [(t, t + 12.0) for t in (0, 12, 24, 36, 48)]
    assert [c.segment_starts for c in chunks][1] == [12.0, 16.0, 20.0]
    assert [c.first_segment for c in chunks] == [0, 3, 6, 9, 12]
    assert all(c.frames == 360 for c in chunks)


def test_cuts_fall_on_the_keyframe_nearest_the_target() -> None:
    # GIVEN NTSC 2.002 s GOPs: 12 s is nearest the sixth keyframe, at 12.012 s
    index = index_of(every(2.002, 95.0), 95.0, fps=29.97)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN the first cut is at 12.012 s
    assert chunks[0].end == pytest.approx(12.012, abs=EPS)


def test_a_source_shorter_than_a_chunk_and_a_segment_is_one_chunk() -> None:
    # GIVEN a 15.9 s source (under 12 s + 4 s) with 2 s GOPs
    index = index_of(every(2.0, 15.9), 15.9)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN there is one chunk with segments at 0, 4, 8, 12 (the 3.9 s tail is kept whole)
    assert len(chunks) == 1
    assert chunks[0].segment_starts == [0.0, 4.0, 8.0, 12.0]


def test_sparse_keyframes_cut_only_where_keyframes_are() -> None:
    # GIVEN keyframes only every 20 s in a 47 s source
    index = index_of([0.0, 20.0, 40.0], 47.0)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN chunks are longer than the target because a cut can only fall on a keyframe
    assert [(c.start, c.end) for c in chunks] == [(0.0, 20.0), (20.0, 40.0), (40.0, 47.0)]


def test_a_single_keyframe_is_one_chunk_whatever_its_length() -> None:
    # GIVEN a 100 s source with one keyframe
    index = index_of([0.0], 100.0)

    # WHEN it is planned
    (chunk,) = plan_chunks(index, CHUNK, SEGMENT)

    # THEN that one chunk holds all 25 segments and every frame
    assert (chunk.start, chunk.end) == (0.0, 100.0)
    assert len(chunk.segment_starts) == 25
    assert chunk.frames == index.frame_count


def test_a_half_second_source_is_one_chunk_of_one_segment() -> None:
    # GIVEN a 0.5 s source
    index = index_of([0.0], 0.5)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN there is one chunk with one segment
    assert [(c.start, c.end, c.segment_starts, c.frames) for c in chunks] == [(0.0, 0.5, [0.0], 15)]


def test_no_chunk_is_a_sliver_when_a_keyframe_sits_just_before_the_end() -> None:
    # GIVEN a 16.5 s source with one scene-cut keyframe at 15.9 s
    index = index_of([0.0, 15.9], 16.5)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN no chunk is shorter than a segment, since the source is not
    assert all(c.duration >= SEGMENT - EPS for c in chunks), chunks


def test_a_three_hour_source_gives_a_small_plan() -> None:
    # GIVEN a 3 h source with 2 s GOPs at 30 fps
    index = index_of(every(2.0, 3 * 3600.0), 3 * 3600.0)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN it is 10 800 / 12 = 900 chunks of 3 segments, the last numbered 2699
    assert len(chunks) == 900
    assert chunks[-1].first_segment + len(chunks[-1].segment_starts) == 2700
    assert sum(c.frames for c in chunks) == index.frame_count == 324_000
    # and each Map item (what Step Functions passes to one child) stays under 1 KB
    items = [json.dumps({"kind": "video", "chunk": c.to_dict()}) for c in chunks]
    assert max(len(item.encode()) for item in items) < 1024


def test_a_chunk_survives_a_round_trip_through_json() -> None:
    # GIVEN a plan
    chunks = plan_chunks(index_of(every(2.002, 95.0), 95.0, fps=29.97), CHUNK, SEGMENT)

    # WHEN its chunks go through JSON (as they do through S3 and the Map state)
    again = [Chunk.from_dict(json.loads(json.dumps(c.to_dict()))) for c in chunks]

    # THEN they come back equal
    assert again == chunks


@pytest.mark.parametrize(
    ("start", "stop", "expected"),
    [
        (0.0, 12.0, [0.0, 4.0, 8.0]),
        (0.0, 13.0, [0.0, 4.0, 8.0, 12.0]),  # a 1 s tail is exactly a quarter: kept
        (0.0, 12.9, [0.0, 4.0, 8.0]),  # a 0.9 s tail is folded into the segment before
        (10.0, 11.0, [10.0]),
        (5.5, 14.0, [5.5, 9.5]),
    ],
)
def test_segment_starts_fold_a_short_tail(start: float, stop: float, expected: list[float]) -> None:
    # GIVEN a span and 4 s segments
    # WHEN its segment starts are computed
    # THEN they step by 4 s from the start, with no tail under a quarter segment
    assert segment_starts(start, stop, SEGMENT) == pytest.approx(expected)
