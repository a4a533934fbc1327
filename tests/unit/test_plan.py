"""The chunk plan: chunks by time, on listed keyframes near the targets, that tile the
source; and their HLS segments."""

from __future__ import annotations

import json
import math
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.media.chunks import (
    UNINDEXED_MARGIN,
    Chunk,
    FrameIndex,
    plan_chunks,
    refused_hole,
    segment_starts,
)

CHUNK = 12.0
SEGMENT = 4.0
EPS = 1e-6


def index_of(keyframes: list[float], end: float) -> FrameIndex:
    """A source from its first keyframe to ``end`` whose index lists these keyframes."""
    return FrameIndex(start=keyframes[0], end=end, keyframes=list(keyframes))


def every(step: float, end: float, start: float = 0.0) -> list[float]:
    count = int((end - start) / step - 1e-9) + 1
    return [round(start + i * step, 6) for i in range(count)]


INDEXES = [
    pytest.param(index_of(every(2.0, 60.0), 60.0), id="2s-gops-60s"),
    pytest.param(index_of(every(1.0, 37.3), 37.3), id="1s-gops-ragged-end"),
    pytest.param(index_of(every(2.002, 95.0), 95.0), id="ntsc-2.002s-gops"),
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
    pytest.param(index_of(every(10.0, 41.0), 41.0), id="10s-gops"),
    pytest.param(FrameIndex(start=1.4, end=3601.4), id="no-index-an-hour"),
    pytest.param(FrameIndex(start=0.0, end=13.0), id="no-index-13s"),
]
# Chunks the Map runs at once: none said, two CPUs' local stack, and an odd count.
SLOTS = [0, 2, 3]


@pytest.mark.parametrize("slots", SLOTS)
@pytest.mark.parametrize("index", INDEXES)
def test_chunks_tile_the_source_from_its_first_frame(index: FrameIndex, slots: int) -> None:
    # GIVEN a source's span and its listed keyframes (or none)
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT, slots)

    # THEN chunks are numbered in order and together run from the first frame to the
    # end with no gap and no overlap
    assert chunks
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start == index.start
    assert chunks[-1].end == index.end
    for before, after in pairwise(chunks):
        assert before.end == after.start
    assert all(c.end > c.start for c in chunks)


@pytest.mark.parametrize("index", INDEXES)
def test_each_cut_is_the_target_or_a_listed_keyframe_within_half_a_segment(
    index: FrameIndex,
) -> None:
    # GIVEN a source
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN each cut lies a chunk after the one before, or on a listed keyframe at most
    # half a segment from there; a source without an index decodes from a margin before
    for before, after in pairwise(chunks):
        target = before.start + CHUNK
        assert after.start == pytest.approx(target, abs=EPS) or (
            after.start in index.keyframes and abs(after.start - target) <= SEGMENT / 2 + EPS
        )
    assert all(c.margin == (UNINDEXED_MARGIN if index.by_time else 0.0) for c in chunks)


@pytest.mark.parametrize("slots", SLOTS)
@pytest.mark.parametrize("index", INDEXES)
def test_segments_start_at_the_chunk_and_every_segment_seconds(
    index: FrameIndex, slots: int
) -> None:
    # GIVEN a frame index
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT, slots)

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


@pytest.mark.parametrize("slots", SLOTS)
@pytest.mark.parametrize("index", INDEXES)
def test_segment_numbers_are_contiguous_across_chunks(index: FrameIndex, slots: int) -> None:
    # GIVEN a frame index
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT, slots)

    # THEN each chunk's first segment number follows the previous chunk's last
    expected = 0
    for chunk in chunks:
        assert chunk.first_segment == expected
        expected += len(chunk.segment_starts)


@pytest.mark.parametrize("slots", SLOTS)
@pytest.mark.parametrize("index", INDEXES)
def test_a_cut_chunk_is_at_least_a_segment_long(index: FrameIndex, slots: int) -> None:
    # GIVEN a frame index
    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT, slots)

    # THEN every chunk but the last is at least one segment long
    assert all(c.duration >= SEGMENT - EPS for c in chunks[:-1])


def _finish_times(durations: list[float], slots: int) -> list[float]:
    """When each slot is done, where the Map starts every item, in order, on the first
    free slot and each takes as long as its video."""
    free = [0.0] * slots
    for duration in durations:
        free[free.index(min(free))] += duration
    return free


@pytest.mark.parametrize(
    ("end", "slots"), [(60.0, 2), (61.4, 2), (62.0, 2), (95.0, 3), (250.0, 4), (3661.0, 300)]
)
def test_chunks_fill_the_last_wave_of_the_maps_slots(end: float, slots: int) -> None:
    # GIVEN a source with 2 s GOPs whose 12 s chunks would leave the last wave of a Map
    # running `slots` at once part empty
    index = index_of(every(2.0, end), end)
    uniform = [c.duration for c in plan_chunks(index, CHUNK, SEGMENT)]
    assert len(uniform) > slots and len(uniform) % slots

    # WHEN it is planned for that many slots
    chunks = plan_chunks(index, CHUNK, SEGMENT, slots)

    # THEN every wave is full, of chunks no longer than before, longest first and whole
    # segments but the last; the Map is done sooner, as soon as whole segments allow
    durations = [c.duration for c in chunks]
    assert len(durations) % slots == 0
    assert max(durations) <= max(uniform) + EPS
    assert durations[:-1] == sorted(durations[:-1], reverse=True)
    assert all(d / SEGMENT == pytest.approx(round(d / SEGMENT)) for d in durations[:-1])
    finish = max(_finish_times(durations, slots))
    assert finish < max(_finish_times(uniform, slots))
    segments = sum(len(c.segment_starts) for c in chunks)
    assert finish <= math.ceil(segments / slots) * SEGMENT + EPS


@pytest.mark.parametrize(("end", "slots"), [(48.0, 2), (60.0, 5), (60.0, 8), (16.0, 2), (60.0, 1)])
def test_chunks_that_fill_their_waves_or_one_wave_are_left_as_they_are(
    end: float, slots: int
) -> None:
    # GIVEN a source whose chunks fill every wave, fit in one, or a Map of one slot
    index = index_of(every(2.0, end), end)

    # WHEN it is planned for those slots
    # THEN the chunks are those planned without slots
    assert plan_chunks(index, CHUNK, SEGMENT, slots) == plan_chunks(index, CHUNK, SEGMENT)


def test_regular_gops_give_chunks_of_exactly_chunk_seconds() -> None:
    # GIVEN a 60 s source with a keyframe every 2 s
    index = index_of(every(2.0, 60.0), 60.0)

    # WHEN it is planned with 12 s chunks of 4 s segments
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN it is five 12 s chunks of three segments, numbered 0..14
    assert [(c.start, c.end) for c in chunks] == [(t, t + 12.0) for t in (0, 12, 24, 36, 48)]
    assert [c.segment_starts for c in chunks][1] == [12.0, 16.0, 20.0]
    assert [c.first_segment for c in chunks] == [0, 3, 6, 9, 12]


def test_cuts_fall_on_the_keyframe_nearest_the_target() -> None:
    # GIVEN NTSC 2.002 s GOPs: 12 s is nearest the sixth keyframe, at 12.012 s
    index = index_of(every(2.002, 95.0), 95.0)

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


def test_sparse_keyframes_do_not_make_long_chunks() -> None:
    # GIVEN keyframes only every 20 s in a 47 s source
    index = index_of([0.0, 20.0, 40.0], 47.0)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN cuts fall on time where no keyframe is near: a chunk may decode from the
    # keyframe before it, but no chunk is longer than the target plus a segment
    assert [(c.start, c.end) for c in chunks] == [(0, 12), (12, 24), (24, 36), (36, 47)]


def test_a_single_keyframe_still_gives_chunks_of_chunk_seconds() -> None:
    # GIVEN a 100 s source whose index lists one keyframe
    index = FrameIndex(start=0.0, end=100.0, keyframes=[0.0])

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN it is cut every 12 s all the same, with 25 segments in all
    assert [c.start for c in chunks] == [12.0 * k for k in range(8)]
    assert sum(len(c.segment_starts) for c in chunks) == 25


def test_a_source_without_an_index_is_cut_by_time_with_a_margin() -> None:
    # GIVEN a 30 s MPEG-TS from 1.4 s: no index lists its keyframes
    index = FrameIndex(start=1.4, end=31.4)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN it is cut every 12 s; the last chunk takes the 6 s left, and each chunk
    # decodes from a margin before its start to meet a keyframe
    assert [(c.start, c.end) for c in chunks] == [(1.4, 13.4), (13.4, 25.4), (25.4, 31.4)]
    assert [c.margin for c in chunks] == [UNINDEXED_MARGIN] * 3


def test_a_half_second_source_is_one_chunk_of_one_segment() -> None:
    # GIVEN a 0.5 s source
    index = index_of([0.0], 0.5)

    # WHEN it is planned
    chunks = plan_chunks(index, CHUNK, SEGMENT)

    # THEN there is one chunk with one segment
    assert [(c.start, c.end, c.segment_starts) for c in chunks] == [(0.0, 0.5, [0.0])]


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
    # and each Map item (what Step Functions passes to one child) stays under 1 KB
    items = [json.dumps({"kind": "video", "chunk": c.to_dict()}) for c in chunks]
    assert max(len(item.encode()) for item in items) < 1024


def test_a_chunk_survives_a_round_trip_through_json() -> None:
    # GIVEN a plan
    chunks = plan_chunks(index_of(every(2.002, 95.0), 95.0), CHUNK, SEGMENT)

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


@given(
    segments=st.integers(1, 6),
    segment=st.sampled_from([1.0, 2.0, 4.0, 6.0]),
    slots=st.integers(0, 8),
    before=st.floats(0.0, 200.0),
    after=st.floats(0.0, 200.0),
    keyed=st.booleans(),
)
def test_a_pause_the_probe_refuses_holds_a_whole_chunk(
    segments: int, segment: float, slots: int, before: float, after: float, keyed: bool
) -> None:
    # GIVEN a pause between two frames as long as the probe refuses, anywhere in a source
    chunk = segments * segment
    pause = refused_hole(chunk, segment)
    start, end = before, before + pause
    index = FrameIndex(0.0, end + after + segment, sorted({0.0, start, end}) if keyed else [])
    # WHEN it is planned however the waves cut it
    chunks = plan_chunks(index, chunk, segment, slots)
    # THEN one chunk lies wholly inside the pause: its job would find nothing to encode
    assert any(start < c.start and c.end <= end for c in chunks)
