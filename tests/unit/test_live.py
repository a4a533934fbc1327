"""Live playlist rules: in order, gap-free, duplicates harmless, gaps only after a timeout."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from workflow.live.rules import (
    IN_FLIGHT_SECONDS,
    MAX_SKIPPED,
    Arrival,
    Ending,
    LivePlaylist,
    advance,
    fits,
    render,
)

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


def test_a_number_too_far_ahead_is_never_waited_for() -> None:
    # GIVEN segments 0 and 1, then one numbered past what an outage could skip (a number
    # comes within reach once the stream is MAX_SKIPPED short of it)
    far = 2 * MAX_SKIPPED
    waiting = arrived(0, 1, far, at=100.0)
    # WHEN long past the gap timeout, THEN no gap is made for it: the stream waits on 2
    playlist = advance(LivePlaylist(), waiting, now=1000.0, window=0, **STEP)
    assert [e.sequence for e in playlist.entries] == [0, 1]
    # AND a marker ending the stream there does not end it either
    ending = Ending(last_sequence=far, at=100.0)
    assert advance(playlist, waiting, now=1000.0, window=0, ending=ending, **STEP) == playlist
    # AND the segment that continues the stream is shown when it comes
    playlist = advance(playlist, waiting | arrived(2), now=1001.0, window=0, **STEP)
    assert [e.sequence for e in playlist.entries] == [0, 1, 2]


def test_an_outage_up_to_the_limit_becomes_gaps() -> None:
    # GIVEN segment 0, then one that skips MAX_SKIPPED numbers (an hour of 1 s segments)
    waiting = arrived(0, 1 + MAX_SKIPPED, at=100.0)
    # WHEN past the gap timeout, THEN every number between is a gap and the stream goes on
    playlist = advance(LivePlaylist(), waiting, now=111.0, window=0, **STEP)
    assert len(playlist.entries) == MAX_SKIPPED + 2 and playlist.gaps == MAX_SKIPPED
    assert playlist.entries[-1].sequence == 1 + MAX_SKIPPED


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


def test_a_sliding_window_never_lasts_under_three_target_durations() -> None:
    # GIVEN a stream that declared 4 s segments (target 4) but sends 1.5 s ones, and a
    # window of 3
    playlist = LivePlaylist()
    for n in range(20):
        shorter = {s: Arrival(1.5, 0.0) for s in range(n + 1)}
        playlist = advance(playlist, shorter, now=float(n), window=3, **STEP)
        # THEN the playlist never lasts under 3 x 4 s (RFC 8216 6.2.2): it keeps the fewest
        # entries that last that long, and no more than it must
        durations = [e.duration for e in playlist.entries]
        assert sum(durations) >= 12.0 or len(durations) == n + 1
        assert sum(durations[1:]) < 12.0
    assert len(playlist.entries) == 8 and playlist.media_sequence == 12
    # AND segments as long as declared keep the window's count
    full = advance(LivePlaylist(), arrived(*range(10)), now=1.0, window=3, **STEP)
    assert len(full.entries) == 3


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


def test_a_segment_on_its_way_at_the_end_marker_waits_as_long_as_its_job_may_run() -> None:
    # GIVEN an end marker read back from the record (JSON lists) with 2 on its way at it
    ending = Ending(**{"last_sequence": 3, "at": 100.0, "on_its_way": [[2, 2]]})
    # WHEN neither 2 nor 3 (never uploaded) has come, long past gap_after
    now = 100.0 + IN_FLIGHT_SECONDS - 1
    waiting = advance(LivePlaylist(), arrived(0, 1), now=now, window=0, ending=ending, **STEP)
    # THEN 2 is still waited for (the marker would have made it a gap at 110 s)...
    assert [e.sequence for e in waiting.entries] == [0, 1] and not waiting.ended
    # ...until its job can no longer be running
    late = advance(waiting, arrived(0, 1), now=now + 1, window=0, ending=ending, **STEP)
    assert late.ended and [(e.sequence, e.gap) for e in late.entries][2:] == [(2, True), (3, True)]


def test_a_failed_segment_with_the_next_one_there_is_a_gap_at_once() -> None:
    arrivals = {**arrived(0, 2), 1: Arrival(3.5, 0.0, failed=True)}
    playlist = advance(LivePlaylist(), arrivals, now=0.0, window=0, **STEP)
    assert [(e.sequence, e.gap, e.duration) for e in playlist.entries] == [
        (0, False, 4.0),
        (1, True, 3.5),
        (2, False, 4.0),
    ]


def test_a_failed_segment_with_nothing_after_it_is_a_gap_after_gap_after() -> None:
    # GIVEN segment 1 failed (its length unknown, as a failure records it) and nothing
    # after it came: the venue's uplink went with it
    arrivals = {**timed({0: (0.0, 4.0)}), 1: Arrival(None, 100.0, failed=True)}
    # WHEN the playlists advance before its own gap_after has passed / THEN it waits:
    # the next segment's start would say how long it is
    held = advance(LivePlaylist(), arrivals, now=109.0, window=0, **STEP)
    assert [e.sequence for e in held.entries] == [0]
    # AND once it has passed, it is a gap as long as the last segment shown
    shown = advance(held, arrivals, now=110.0, window=0, **STEP)
    assert [(e.sequence, e.gap, e.duration) for e in shown.entries] == [
        (0, False, 4.0),
        (1, True, 4.0),
    ]


def test_gaps_keep_the_last_segments_length_after_a_small_window_slides_past_it() -> None:
    # GIVEN an encoder cutting 2 s segments in a stream declared at 4 s, a window of one
    # entry (which keeps 12 s, three target durations), stored and loaded between
    # advances as the publish does; 0 came, then 1 to 8 failed, 5 s apart, with nothing
    # after them (the uplink went)
    arrivals = {
        **timed({0: (0.0, 2.0)}),
        **{n: Arrival(None, 5.0 * n, failed=True) for n in range(1, 9)},
    }
    playlist, lengths = LivePlaylist(), {}
    for now in range(12, 48, 5):
        playlist = LivePlaylist.from_dict(
            advance(playlist, arrivals, now=float(now), window=1, **STEP).to_dict()
        )
        lengths |= {e.sequence: e.duration for e in playlist.entries}
    assert playlist.media_sequence > 0
    # WHEN segment 9 comes, where the source's clock says (0 + 2 s + eight 2 s gaps)
    arrivals |= timed({9: (18.0, 20.0)}, at=47.0)
    playlist = advance(playlist, arrivals, now=48.0, window=1, **STEP)
    lengths |= {e.sequence: e.duration for e in playlist.entries}
    # THEN every gap was shown 2 s long (not the declared 4 s, once 0 slid out of the
    # window) and 9 continues the clock: no discontinuity
    assert lengths == dict.fromkeys(range(10), 2.0)
    assert [(e.sequence, e.discontinuity) for e in playlist.entries][-1] == (9, False)
    assert not any(e.discontinuity for e in playlist.entries)


def test_failures_one_after_another_are_shown_gap_after_behind_them() -> None:
    # GIVEN an encoder whose every segment after 0 fails, one a second (a setting the
    # stream refuses), the playlists advanced each second
    playlist, arrivals = LivePlaylist(), dict(timed({0: (0.0, 1.0)}, at=0.0))
    for second in range(1, 61):
        arrivals[second] = Arrival(None, float(second), failed=True)
        playlist = advance(playlist, arrivals, now=float(second), window=0, **STEP)
        # THEN the gaps (and their events) follow gap_after behind, never held for good
        shown = [e.sequence for e in playlist.entries if e.gap]
        assert shown == list(range(1, second - 9)), (second, shown)


def test_a_live_playlists_header_holds_from_its_first_segment_through_a_gap() -> None:
    # GIVEN a 2-segment window where segment 2 fails (a gap) and later slides out
    arrivals = {**arrived(0, 1, 3, 4, 5), 2: Arrival(4.0, 0.0, failed=True)}
    headers = set()
    for n in range(6):
        seen = {s: a for s, a in arrivals.items() if s <= n}
        playlist = advance(LivePlaylist(), seen, now=0.0, window=2, **STEP)
        text = render(playlist, target_duration=4, window=2)
        headers.add(next(line for line in text.splitlines() if "EXT-X-VERSION" in line))
    # THEN its version is the one a gap needs before, with and after the gap: RFC 8216
    # 6.2.1 lets a live playlist change only by appending, removing and counting on
    assert headers == {"#EXT-X-VERSION:8"}


def test_the_stream_starts_at_its_lowest_segment_only_after_waiting_for_earlier_ones() -> None:
    # GIVEN an encoder that numbers from 5: nothing is shown until 5 has waited
    assert advance(LivePlaylist(), arrived(5, 6, at=0.0), now=1.0, window=0, **STEP).entries == ()
    started = advance(LivePlaylist(), arrived(5, 6, at=0.0), now=10.0, window=0, **STEP)
    assert started.first_sequence == 5 and [e.sequence for e in started.entries] == [5, 6]
    # AND a declared first sequence is used at once
    declared = advance(LivePlaylist(first_sequence=5), arrived(5), now=0.0, window=0, **STEP)
    assert [e.sequence for e in declared.entries] == [5]


def test_a_late_first_segment_that_was_uploaded_is_a_gap_never_a_hole_before_the_playlist() -> None:
    # GIVEN segments 0, 1, 2 uploaded and the end marker at t=0; 1 and 2 published at 13 s,
    # after the gap timeout, while 0 is still being encoded (the README tour under load)
    ending = Ending(last_sequence=2, at=0.0)
    playlist = advance(
        LivePlaylist(), arrived(1, 2, at=13.0), now=13.0, window=0, ending=ending,
        lowest_upload=0, **STEP,
    )  # fmt: skip
    # THEN the stream starts at 0, as a gap, and closes with every uploaded segment
    assert playlist.first_sequence == 0 and playlist.ended
    assert [(e.sequence, e.gap) for e in playlist.entries] == [(0, True), (1, False), (2, False)]
    # AND while the timeout runs, it waits for 0 rather than starting without it
    ending = Ending(last_sequence=2, at=10.0)
    waiting = advance(
        LivePlaylist(), arrived(1, 2, at=13.0), now=13.0, window=0, ending=ending,
        lowest_upload=0, **STEP,
    )  # fmt: skip
    assert waiting.first_sequence is None and waiting.entries == ()
    shown = advance(
        waiting, {**arrived(1, 2, at=13.0), **arrived(0, at=14.0)}, now=14.0, window=0,
        ending=ending, lowest_upload=0, **STEP,
    )  # fmt: skip
    assert [(e.sequence, e.gap) for e in shown.entries] == [(0, False), (1, False), (2, False)]


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


@settings(max_examples=300, deadline=None)
@given(
    st.permutations(range(8)),
    st.lists(st.floats(0.0, 30.0), min_size=8, max_size=8),
    st.lists(st.floats(0.0, 30.0), min_size=8, max_size=8),
    st.booleans(),
)
def test_whenever_segments_finish_every_uploaded_one_is_shown_or_a_gap_in_order(
    order: list[int], finish: list[float], looks: list[float], ended: bool
) -> None:
    # GIVEN segments 0-7 all uploaded at t=0 (and maybe the end marker), finishing in any
    # order at any time, the playlist advanced at any moments
    finished = {sequence: finish[i] for i, sequence in enumerate(order)}
    ending = Ending(last_sequence=7, at=0.0) if ended else None
    playlist, shown = LivePlaylist(), []
    for now in [*sorted(looks), 100.0]:
        arrivals = {s: Arrival(4.0, at) for s, at in finished.items() if at <= now}
        playlist = advance(
            playlist, arrivals, now=now, window=0, ending=ending, lowest_upload=0, **STEP
        )
        # THEN the playlist always starts at 0 and grows one sequence at a time
        before, shown = len(shown), [e.sequence for e in playlist.entries]
        assert shown == list(range(len(shown)))
        # AND a segment becomes a gap only if it had not arrived when its turn came
        assert all(finished[e.sequence] > now for e in playlist.entries[before:] if e.gap)
    # AND in the end every segment is there, shown or a gap
    assert [e.sequence for e in playlist.entries] == list(range(8))


def timed(spans: dict[int, tuple[float, float]], form: str = "h264 640x360", at: float = 0.0):
    """Arrivals with their first and last instants on the source's clock."""
    return {
        s: Arrival(end - start, at, start=start, end=end, form=form)
        for s, (start, end) in spans.items()
    }


def cc_numbers(text: str) -> dict[int, int]:
    """Each segment's discontinuity sequence number, as a player reads the playlist."""
    number, numbers = 0, {}
    for line in text.splitlines():
        if line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            number = int(line.split(":")[1])
        elif line == "#EXT-X-DISCONTINUITY":
            number += 1
        elif line.startswith("seg_"):
            numbers[int(line[4:9])] = number
    return numbers


def test_a_restarted_encoder_starts_a_discontinuity_where_its_timestamps_go_back() -> None:
    # GIVEN three segments on one clock, then two from a restarted encoder (from zero)
    arrivals = timed(
        {0: (10.0, 14.0), 1: (14.0, 18.0), 2: (18.0, 22.0), 3: (1.4, 5.4), 4: (5.4, 9.4)}
    )
    playlist = advance(LivePlaylist(), arrivals, now=1.0, window=0, **STEP)
    # THEN only the first segment of the restart carries the tag
    assert [e.discontinuity for e in playlist.entries] == [False, False, False, True, False]
    text = render(playlist, target_duration=4, window=0)
    assert "seg_00002.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:4.000000,\nseg_00003.ts" in text
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1


def test_a_change_of_form_is_a_discontinuity_even_on_a_continuous_clock() -> None:
    arrivals = {**timed({0: (0.0, 4.0)}), **timed({1: (4.0, 8.0)}, form="h264 1280x720")}
    playlist = advance(LivePlaylist(), arrivals, now=1.0, window=0, **STEP)
    assert [e.discontinuity for e in playlist.entries] == [False, True]


def test_a_clock_that_steps_back_into_the_last_segment_shown_starts_a_discontinuity() -> None:
    # GIVEN segment 1 starts 0.3 s before 0 ended (its frames overlap 0's last 0.3 s),
    # while 2 starts a frame's rounding before 1 ended
    arrivals = timed({0: (10.0, 14.0), 1: (13.7, 17.7), 2: (17.699, 21.7)})
    playlist = advance(LivePlaylist(), arrivals, now=1.0, window=0, **STEP)
    # THEN 1 starts a run: a player that took it as continuing would lay its frames over
    # 0's last 0.3 s, never showing them, and run 0.3 s behind the playlist from there
    assert [e.discontinuity for e in playlist.entries] == [False, True, False]


def test_gaps_count_as_time_the_clock_went_on() -> None:
    # GIVEN segment 1 never comes, and 2 continues the clock 4 s after 0 ended
    continuing = timed({0: (0.0, 4.0), 2: (8.0, 12.0)})
    playlist = advance(LivePlaylist(), continuing, now=100.0, window=0, **STEP)
    assert [(e.gap, e.discontinuity) for e in playlist.entries] == [
        (False, False), (True, False), (False, False)
    ]  # fmt: skip
    # BUT after a 30 s outage with the same gap, the jump is marked
    jumped = timed({0: (0.0, 4.0), 2: (38.0, 42.0)})
    playlist = advance(LivePlaylist(), jumped, now=100.0, window=0, **STEP)
    assert [(e.gap, e.discontinuity) for e in playlist.entries] == [
        (False, False), (True, False), (False, True)
    ]  # fmt: skip


def test_a_gap_lasts_what_the_source_lost_not_the_target() -> None:
    # GIVEN an encoder cutting 1 s segments under the default 4 s target: 3 never comes,
    # 4 and 5 carry on the clock
    one_second = timed({n: (float(n), n + 1.0) for n in (0, 1, 2, 4, 5)})
    # WHEN the gap is shown
    playlist = advance(LivePlaylist(), one_second, now=100.0, window=0, **STEP)
    # THEN it lasts the second the source lost, and the clock needs no tag after it
    assert [(e.sequence, e.gap, e.duration, e.discontinuity) for e in playlist.entries] == [
        (0, False, 1.0, False), (1, False, 1.0, False), (2, False, 1.0, False),
        (3, True, 1.0, False), (4, False, 1.0, False), (5, False, 1.0, False),
    ]  # fmt: skip
    # AND a failed segment, and a run of them, share the time between their neighbours
    failed = {**timed({0: (0.0, 1.0), 4: (2.5, 3.5)}), 1: Arrival(None, 0.0, failed=True)}
    playlist = advance(LivePlaylist(), failed, now=100.0, window=0, **STEP)
    assert [e.duration for e in playlist.entries] == [1.0, 0.5, 0.5, 0.5, 1.0]
    assert not any(e.discontinuity for e in playlist.entries)


@pytest.mark.parametrize("later", [0.0, 1e-6, 0.05])
def test_a_number_skipped_on_a_clock_that_ran_on_is_a_gap_as_long_as_a_segment(
    later: float,
) -> None:
    # GIVEN 2 s segments whose encoder skipped number 2, the clock running on: 3 starts
    # where 1 ended, or a rounding later
    skipped = timed({0: (10.0, 12.0), 1: (12.0, 14.0), 3: (14.0 + later, 16.0 + later)})
    # WHEN the gap is shown
    playlist = advance(LivePlaylist(), skipped, now=100.0, window=0, **STEP)
    # THEN it lasts a segment, as shown before it, and 3 starts a run (a gap of the
    # rounding's length read #EXTINF:0.000001, too short for any player to show)
    shown = [(e.sequence, e.gap, round(e.duration, 6), e.discontinuity) for e in playlist.entries]
    assert shown == [
        (0, False, 2.0, False), (1, False, 2.0, False),
        (2, True, 2.0, False), (3, False, 2.0, True),
    ]  # fmt: skip


def test_a_gap_after_a_jump_or_at_the_end_lasts_a_segment_as_last_shown() -> None:
    # GIVEN 1 s segments; 2 never comes and 3 comes from a restarted encoder (clock at 0)
    restarted = timed({0: (50.0, 51.0), 1: (51.0, 52.0), 3: (0.0, 1.0)})
    playlist = advance(LivePlaylist(), restarted, now=100.0, window=0, **STEP)
    # THEN the gap lasts as the segments shown did, and the jump is marked
    assert [(e.duration, e.discontinuity) for e in playlist.entries] == [
        (1.0, False), (1.0, False), (1.0, False), (1.0, True)
    ]  # fmt: skip
    # AND so do gaps the end marker leaves, with nothing after them to measure by
    ended = advance(
        LivePlaylist(), timed({0: (0.0, 1.0)}), now=100.0, window=0,
        ending=Ending(last_sequence=2, at=0.0), **STEP,
    )  # fmt: skip
    assert [(e.gap, e.duration) for e in ended.entries] == [(False, 1.0), (True, 1.0), (True, 1.0)]


def test_arrivals_without_times_never_break_the_run() -> None:
    # GIVEN a segment recorded before times were kept (an old deploy's job) between two
    arrivals = {**timed({0: (0.0, 4.0)}), 1: Arrival(4.0, 0.0), **timed({2: (99.0, 103.0)})}
    playlist = advance(LivePlaylist(), arrivals, now=1.0, window=0, **STEP)
    # THEN it continues the run, and the one after it has nothing to be compared with
    assert [e.discontinuity for e in playlist.entries] == [False, False, False]
    # AND from there on the rules hold again
    later = advance(playlist, {**arrivals, **timed({3: (0.0, 4.0)})}, now=1.0, window=0, **STEP)
    assert later.entries[-1].discontinuity


def test_the_discontinuity_sequence_counts_what_slid_out_of_the_window() -> None:
    # GIVEN a restart at every third segment, shown through a 2-segment window
    spans = {s: (float((s % 3) * 4), float((s % 3) * 4 + 4)) for s in range(12)}
    playlist, numbers = LivePlaylist(), {}
    for n in range(12):
        playlist = advance(
            playlist, timed({s: spans[s] for s in range(n + 1)}), now=0.0, window=2, **STEP
        )
        text = render(playlist, target_duration=4, window=2)
        # THEN every segment keeps the same discontinuity sequence number in every
        # playlist that shows it, as RFC 8216 6.2.2 asks of a server
        for sequence, number in cc_numbers(text).items():
            assert numbers.setdefault(sequence, number) == number, (sequence, text)
    assert [numbers[s] for s in range(12)] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert LivePlaylist.from_dict(playlist.to_dict()) == playlist


@settings(max_examples=150, deadline=None)
@given(st.permutations(range(9)), st.lists(st.integers(0, 8), max_size=6))
def test_discontinuities_are_the_same_whatever_order_segments_arrive_in(
    order: list[int], duplicates: list[int]
) -> None:
    # GIVEN a restart at 3 and a 30 s jump at 6
    starts = [0, 4, 8, 0, 4, 8, 42, 46, 50]
    spans = {s: (float(t), float(t + 4)) for s, t in enumerate(starts)}
    playlist, seen = LivePlaylist(), {}
    for step, sequence in enumerate(order + duplicates):
        seen |= timed({sequence: spans[sequence]}, at=float(step))
        playlist = LivePlaylist.from_dict(
            advance(
                playlist, seen, now=float(step), window=0, gap_after=1e9, nominal_duration=4.0
            ).to_dict()
        )
    assert [e.sequence for e in playlist.entries if e.discontinuity] == [3, 6]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.sampled_from([1.0, 1.5, 2.0, 2.5, 4.0]), min_size=8, max_size=8),
    st.sets(st.integers(1, 6), max_size=3),
    st.permutations(range(8)),
)
@example([1.0, 1.0, 1.0, 1.0, 4.0, 1.0, 1.0, 1.0], {1}, [0, 5, 1, 3, 4, 2, 6, 7])
def test_a_failed_segment_shows_the_same_gap_whenever_later_ones_finish(
    lengths: list[float], failed: set[int], order: list[int]
) -> None:
    # GIVEN an encoder on one clock cutting segments of varying length, some of which fail
    starts = [sum(lengths[:s]) for s in range(9)]
    every = {
        s: Arrival(None, 0.0, failed=True)
        if s in failed
        else timed({s: (starts[s], starts[s + 1])})[s]
        for s in range(8)
    }
    whole = advance(LivePlaylist(), every, now=0.0, window=0, gap_after=1e9, nominal_duration=4.0)
    # WHEN the jobs finish (or fail) in any order, later numbers before earlier ones
    playlist, seen = LivePlaylist(), {}
    for step, sequence in enumerate(order):
        seen[sequence] = every[sequence]
        playlist = LivePlaylist.from_dict(
            advance(
                playlist, seen, now=float(step), window=0, gap_after=1e9, nominal_duration=4.0
            ).to_dict()
        )
    # THEN the playlist is the one made of them all at once: no gap took the time of
    # segments still encoding, so no false discontinuity follows it
    assert [(e.duration, e.gap, e.discontinuity) for e in playlist.entries] == [
        (e.duration, e.gap, e.discontinuity) for e in whole.entries
    ]
    assert not any(e.discontinuity for e in playlist.entries)


def test_a_state_stored_before_discontinuities_loads_as_one_run() -> None:
    old = {"first_sequence": 0, "media_sequence": 0, "durations": [4.0, 4.0],
           "gap_sequences": [], "ended": False, "gaps": 0}  # fmt: skip
    playlist = LivePlaylist.from_dict(old)
    assert not any(e.discontinuity for e in playlist.entries) and playlist.anchor is None
    # and the next segment, with nothing to compare against, starts no new run
    later = advance(playlist, timed({2: (50.0, 54.0)}), now=0.0, window=0, **STEP)
    assert not later.entries[-1].discontinuity


def test_a_segment_fits_the_target_as_rfc_8216_rounds() -> None:
    assert fits(4.4, 4.0) and fits(4.49, 4.0) and not fits(4.5, 4.0) and not fits(6.0, 4.0)
    assert fits(2.4, 1.5) and not fits(2.5, 1.5)
    text = render(advance(LivePlaylist(), timed({0: (0.0, 4.4)}), now=0.0, window=0, **STEP),
                  target_duration=4, window=0)  # fmt: skip
    assert "#EXT-X-TARGETDURATION:4\n" in text
