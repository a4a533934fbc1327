"""How the audio is cut into pieces (``plan_audio_pieces``)."""

from __future__ import annotations

import itertools

import pytest

from workflow.media.audio_pieces import FRAME, SAMPLE_RATE, plan_audio_pieces, total_samples


@pytest.mark.parametrize(
    ("piece_seconds", "pieces", "segments_each"),
    [
        (0.001, 7, 1),  # a piece under a segment is one segment: not 1,406 of 21 ms
        (10.0, 4, 2),  # 2.5 segments rounds to two
        (120.0, 1, 8),  # longer than the clip: one piece
        (0.0, 1, 8),  # none asked: one piece
    ],
)
def test_every_piece_is_whole_segments(
    piece_seconds: float, pieces: int, segments_each: int
) -> None:
    # GIVEN 30 s of audio in 4 s segments
    plan = plan_audio_pieces(30.0, piece_seconds, 4.0)
    # THEN each piece but the last (which takes a remainder under half a piece) holds
    # whole segments, on the AAC frame grid
    assert len(plan) == pieces
    for piece in plan[:-1]:
        assert len(piece.segment_starts) == segments_each
        assert piece.start_sample % FRAME == 0 and piece.end_sample % FRAME == 0
        length = (piece.end_sample - piece.start_sample) / SAMPLE_RATE
        assert abs(length - 4.0 * segments_each) < FRAME / SAMPLE_RATE
    # AND the pieces abut from the first sample to the last, every segment numbered once
    assert plan[0].start_sample == 0 and plan[-1].end_sample == total_samples(30.0)
    assert all(a.end_sample == b.start_sample for a, b in itertools.pairwise(plan))
    numbers = [p.first_segment + k for p in plan for k in range(len(p.segment_starts))]
    assert numbers == list(range(len(numbers))) and len(numbers) == 8
