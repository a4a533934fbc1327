"""How a running work item says how far it is: the share of its span encoded, written to
S3 a handful of times, never in its first seconds."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.media.rungs import span_reports
from workflow.vod.progress import (
    FIRST_REPORT_SECONDS,
    REPORT_EVERY_SECONDS,
    ItemProgress,
    recorded_fraction,
    report_due,
)


def test_reports_wait_for_the_first_seconds_then_come_at_most_every_few() -> None:
    began = 100.0
    first = began + FIRST_REPORT_SECONDS
    assert not report_due(began, began, None)
    assert not report_due(first - 0.1, began, None)
    assert report_due(first, began, None)
    assert not report_due(first + REPORT_EVERY_SECONDS - 0.1, began, first)
    assert report_due(first + REPORT_EVERY_SECONDS, began, first)


class Output:
    """Records what would be written to the bucket."""

    def __init__(self) -> None:
        self.written: list[tuple[str, Any]] = []

    def put_json(self, key: str, value: Any) -> None:
        self.written.append((key, value))


def test_an_item_writes_its_fraction_when_a_report_is_due() -> None:
    # GIVEN an item's progress, on a clock that reads 0 s, then each report's time
    times = iter([0.0, 0.5, 2.0, 3.0, 4.5, 5.0, 9.0])
    output, key = Output(), "jobs/j/progress/video-00000.json"
    progress = ItemProgress(output, key, "video-00000", lambda: next(times))  # type: ignore[arg-type]
    # WHEN the encode reports six times
    for fraction in (0.05, 0.2, 0.3, 0.45, 0.5, 0.9):
        progress(fraction)
    # THEN only the reports at 2, 5 and 9 s are written, each with the fraction then
    assert output.written == [
        (key, {"item": "video-00000", "fraction": f}) for f in (0.2, 0.5, 0.9)
    ]


def test_an_item_of_two_phases_reports_each_in_its_share() -> None:
    # GIVEN a chunk whose encode is 80 % of its work and its report's scoring the rest
    times = iter([0.0, 2.0, 5.0, 8.0, 11.0])
    output, key = Output(), "jobs/j/progress/video-00001.json"
    progress = ItemProgress(output, key, "video-00001", lambda: next(times))  # type: ignore[arg-type]
    encode, scoring = progress.span(0.0, 0.8), progress.span(0.8, 1.0)
    # WHEN the encode reports half and all done, then the scoring half done
    encode(0.5)
    encode(1.0)
    scoring(0.5)
    # THEN the item is 40 %, 80 %, then 90 % through, not done when its encode is
    assert [value["fraction"] for _, value in output.written] == [0.4, 0.8, 0.9]


def test_a_span_is_as_far_as_the_mean_of_its_encodes() -> None:
    # GIVEN a 4 s span encoded by two ffmpeg at once
    seen: list[float] = []
    first, second = span_reports(2, 4.0, seen.append)
    assert first is not None and second is not None
    # WHEN they report, one running past the span and one reporting an earlier time late
    first(1.0)
    second(3.0)
    second(2.0)
    first(9.0)
    # THEN the fraction is the mean of each one's furthest share, never past the whole
    assert seen == pytest.approx([0.125, 0.5, 0.5, 0.875])
    assert span_reports(2, 4.0, None) == [None, None]


@pytest.mark.parametrize(
    ("record", "fraction"),
    [({"fraction": 0.25}, 0.25), ({"fraction": 1.5}, 1.0), ({"fraction": "x"}, None),
     ({"fraction": True}, None), ([], None), (None, None)],
)  # fmt: skip
def test_a_progress_record_is_read_as_a_fraction_or_not_at_all(
    record: Any, fraction: float | None
) -> None:
    assert recorded_fraction(record) == fraction
