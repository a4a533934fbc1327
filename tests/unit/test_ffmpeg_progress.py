"""What ffmpeg's ``-progress`` reports say about how much it has encoded."""

from __future__ import annotations

import pytest

from workflow.media.runner import encoded_seconds, progress_blocks

# Two reports as ffmpeg writes them, the first before any output time is known.
OUTPUT = """frame=0
fps=0.00
out_time_us=N/A
out_time_ms=N/A
out_time=N/A
progress=continue
frame=72
out_time_us=1366667
out_time_ms=1366667
out_time=00:00:01.366667
speed=2.71x
progress=end
"""


def test_each_report_ends_at_its_progress_line() -> None:
    # GIVEN ffmpeg's -progress output, WHEN it is cut into reports
    reports = list(progress_blocks(OUTPUT.splitlines(keepends=True)))
    # THEN there is one per progress= line, with its own values
    assert [r["progress"] for r in reports] == ["continue", "end"]
    assert reports[1]["frame"] == "72" and reports[1]["speed"] == "2.71x"
    # AND an unfinished report at the end is not one
    assert list(progress_blocks(["frame=3\n", "out_time_us=5\n"])) == []


@pytest.mark.parametrize(
    ("report", "seconds"),
    [
        ({"out_time_us": "1366667", "out_time_ms": "1366667"}, 1.366667),
        # older ffmpeg writes out_time_ms only, and it counts microseconds too
        ({"out_time_ms": "2500000", "out_time": "00:00:02.500000"}, 2.5),
        ({"out_time": "01:02:03.250000"}, 3723.25),
        ({"out_time_us": "N/A", "out_time_ms": "N/A", "out_time": "00:00:04.000000"}, 4.0),
        ({"out_time_us": "N/A", "out_time_ms": "N/A", "out_time": "N/A"}, None),
        ({"frame": "12"}, None),
        # a time ffmpeg does not have yet, printed overflowed, or before the start
        ({"out_time_us": "9223372036846675808", "out_time": "2562047788:00:46.675808"}, None),
        ({"out_time_us": "-40000", "out_time": "-00:00:00.040000"}, None),
    ],
)
def test_a_report_says_how_many_seconds_are_encoded_or_nothing(
    report: dict[str, str], seconds: float | None
) -> None:
    assert encoded_seconds(report) == (pytest.approx(seconds) if seconds is not None else None)
