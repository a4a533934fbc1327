"""``vidflow events``' one line per event."""

from __future__ import annotations

from workflow.cli.events import describe
from workflow.events import live_stream_gap


def _line(first: int, last: int) -> str:
    outcome = live_stream_gap("game", first, last, "missing", "2026-12-05T06:00:00+00:00")
    event = {"time": "T", "detail-type": outcome.detail_type, "detail": outcome.full_detail()}
    return describe(event)


def test_a_gap_event_says_which_segments_it_covers() -> None:
    assert _line(7, 7).endswith("game  segment 7 missing")
    assert _line(1, 3000).endswith("game  segments 1-3000 (3000 gaps) missing")
