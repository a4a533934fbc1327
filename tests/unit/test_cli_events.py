"""``vidflow events``' one line per event."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest

from workflow.cli.events import _read, describe
from workflow.events import live_stream_gap


def _line(first: int, last: int) -> str:
    outcome = live_stream_gap("game", first, last, "missing", "2026-12-05T06:00:00+00:00")
    event = {"time": "T", "detail-type": outcome.detail_type, "detail": outcome.full_detail()}
    return describe(event)


def test_a_gap_event_says_which_segments_it_covers() -> None:
    assert _line(7, 7).endswith("game  segment 7 missing")
    assert _line(1, 3000).endswith("game  segments 1-3000 (3000 gaps) missing")


class _LateLog:
    """An event log that CloudWatch fills out of order: the event put at 9 s (B) is
    delivered after the one put at 10 s (A), between two of ``--follow``'s looks."""

    def __init__(self) -> None:
        self.delivered: list[dict[str, Any]] = [_logged("A", 10_000)]
        self.looks = 0

    def get_paginator(self, name: str) -> _LateLog:
        return self

    def paginate(self, logGroupName: str, startTime: int) -> list[dict[str, Any]]:
        self.looks += 1
        assert self.looks <= 5, "B was never printed"
        if self.looks == 2:
            self.delivered.append(_logged("B", 9_000))
        return [{"events": [e for e in self.delivered if e["timestamp"] >= startTime]}]


def _logged(event_id: str, timestamp: int) -> dict[str, Any]:
    return {"timestamp": timestamp, "message": json.dumps({"id": event_id})}


def test_follow_prints_an_event_delivered_after_a_later_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN --follow has printed A (put at 10 s) when B (put at 9 s) reaches the log
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    follow = _read(_LateLog(), "events", since=0.0, follow=True)
    # THEN B is printed too, once, on a later look
    assert [e["id"] for e in itertools.islice(follow, 2)] == ["A", "B"]
