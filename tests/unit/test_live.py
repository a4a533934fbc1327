"""Live playlist rules: in order, gap-free, duplicates harmless, gaps only after a timeout."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.live.rules import Arrival, Ending, LivePlaylist, advance, render

STEP = {"gap_after": 10.0, "nominal_duration": 4.0}


def arrived(*sequences: int, at: float = 0.0) -> dict[int, Arrival]:
    return {s: Arrival(4.0, at) for s in sequences}


def test_a_segment_waits_for_every_earlier_one() -> None:
    # GIVEN segments 1 and 2 finished before segment 0
    playlist = advance(LivePlaylist(), arrived(1, 2), now=1.0, window=0, **STEP)
    # THEN nothing is shown yet
    assert playlist.entries == ()
    # WHEN segment 0 finishes, all three appear in order
    playlist = advance(playlist, arrived(0, 1, 2), now=2.0, window=0, **STEP)
    assert [e.sequence for e in playlist.entries] == [0, 1, 2]


def test_duplicates_and_stale_arrivals_change_nothing() -> None:
    playlist = advance(LivePlaylist(), arrived(0, 1), now=1.0, window=0, **STEP)
    again = advance(playlist, arrived(0, 1, 0), now=2.0, window=0, **STEP)
    assert again == playlist


def test_a_missing_segment_becomes_a_gap_only_after_the_timeout() -> None:
    waiting = arrived(0, 2, 3, at=100.0)
    early = advance(LivePlaylist(), waiting, now=105.0, window=0, **STEP)
    assert [e.sequence for e in early.entries] == [0]
    late = advance(early, waiting, now=111.0, window=0, **STEP)
    assert [(e.sequence, e.gap) for e in late.entries] == [
        (0, False),
        (1, True),
        (2, False),
        (3, False),
    ]
    text = render(late, target_duration=4, window=0)
    assert "#EXT-X-GAP\n#EXTINF:4.000000,\nseg_00001.ts" in text


def test_a_sliding_window_keeps_the_newest_and_counts_on() -> None:
    playlist = LivePlaylist()
    sequences = []
    for n in range(10):
        playlist = advance(playlist, arrived(*range(n + 1)), now=float(n), window=3, **STEP)
        sequences.append(playlist.media_sequence)
        assert len(playlist.entries) == min(n + 1, 3)
    assert sequences == sorted(sequences) and sequences[-1] == 7
    text = render(playlist, target_duration=4, window=3)
    assert "#EXT-X-MEDIA-SEQUENCE:7" in text and "PLAYLIST-TYPE" not in text


def test_an_ended_stream_closes_after_its_last_segment_and_takes_nothing_more() -> None:
    ending = Ending(last_sequence=2, at=1.0)
    # GIVEN the end marker names segment 2, which has not arrived yet
    waiting = advance(LivePlaylist(), arrived(0, 1), now=1.0, window=0, ending=ending, **STEP)
    assert not waiting.ended and waiting.next_sequence == 2
    # WHEN it arrives, the playlist takes it and closes
    closed = advance(waiting, arrived(0, 1, 2), now=2.0, window=0, ending=ending, **STEP)
    assert closed.ended and [e.sequence for e in closed.entries] == [0, 1, 2]
    # THEN later arrivals change nothing
    assert advance(closed, arrived(0, 1, 2, 3), now=3.0, window=0, **STEP) == closed
    text = render(closed, target_duration=4.0, window=0)
    assert text.endswith("#EXT-X-ENDLIST\n") and "#EXT-X-PLAYLIST-TYPE:EVENT" in text
    assert "#EXT-X-TARGETDURATION:4\n" in text


def test_a_last_segment_that_never_comes_becomes_a_gap_after_the_end_marker_waits() -> None:
    ending = Ending(last_sequence=2, at=100.0)
    early = advance(LivePlaylist(), arrived(0, 1), now=105.0, window=0, ending=ending, **STEP)
    assert not early.ended
    late = advance(early, arrived(0, 1), now=111.0, window=0, ending=ending, **STEP)
    assert late.ended and [(e.sequence, e.gap) for e in late.entries][-1] == (2, True)
    assert late.gaps == 1


def test_a_failed_segment_is_a_gap_at_once() -> None:
    arrivals = {**arrived(0, 2), 1: Arrival(3.5, 0.0, failed=True)}
    playlist = advance(LivePlaylist(), arrivals, now=0.0, window=0, **STEP)
    assert [(e.sequence, e.gap, e.duration) for e in playlist.entries] == [
        (0, False, 4.0),
        (1, True, 3.5),
        (2, False, 4.0),
    ]


def test_the_stream_starts_at_its_lowest_segment_only_after_waiting_for_earlier_ones() -> None:
    # GIVEN an encoder that numbers from 5: nothing is shown until 5 has waited
    assert advance(LivePlaylist(), arrived(5, 6, at=0.0), now=1.0, window=0, **STEP).entries == ()
    started = advance(LivePlaylist(), arrived(5, 6, at=0.0), now=10.0, window=0, **STEP)
    assert started.first_sequence == 5 and [e.sequence for e in started.entries] == [5, 6]
    # AND a declared first sequence is used at once
    declared = advance(LivePlaylist(first_sequence=5), arrived(5), now=0.0, window=0, **STEP)
    assert [e.sequence for e in declared.entries] == [5]


def test_the_state_round_trips_through_its_compact_form() -> None:
    arrivals = {**arrived(0, 1, 3, at=0.0), 2: Arrival(3.0, 0.0, failed=True)}
    playlist = advance(LivePlaylist(), arrivals, now=1.0, window=3, **STEP)
    assert LivePlaylist.from_dict(playlist.to_dict()) == playlist


@settings(max_examples=200, deadline=None)
@given(st.permutations(range(20)), st.lists(st.integers(0, 19), max_size=10))
def test_any_arrival_order_with_duplicates_shows_every_segment_once_in_order(
    order: list[int], duplicates: list[int]
) -> None:
    playlist = LivePlaylist()
    seen: dict[int, Arrival] = {}
    deliveries = order + duplicates
    for step, sequence in enumerate(deliveries):
        seen |= arrived(sequence, at=float(step))
        playlist = advance(
            playlist, seen, now=float(step), window=0, gap_after=1e9, nominal_duration=4.0
        )
        shown = [e.sequence for e in playlist.entries]
        # after every step: contiguous from 0, nothing missing, nothing twice
        assert shown == list(range(len(shown)))
        assert all(a < b for a, b in pairwise(shown))
    assert [e.sequence for e in playlist.entries] == list(range(20))
