"""The console's metrics panel sums the functions' EMF records as the dashboard would."""

from __future__ import annotations

from typing import Any

from workflow.cli.dashboard import HOUR_MS, percentile, summarise

NOW = 1_796_000_000_000


def record(at: int, **values: Any) -> dict[str, Any]:
    return {"_aws": {"Timestamp": at, "CloudWatchMetrics": []}, **values}


def test_jobs_failures_minutes_and_latency_add_up_over_the_window() -> None:
    records = [
        record(NOW - 10, JobsStarted=[2.0], job_ids=["a", "b"]),
        record(NOW - 5, JobsSucceeded=[1.0], SourceMinutes=[1.5], OutputMinutes=[6.0]),
        record(NOW - 4, JobsFailed=[1.0]),
        record(NOW - 4, JobsFailed=[1.0], ErrorName="NotAVideoError"),
        record(NOW - 3, LiveSegmentLatency=[1.0, 2.0, 3.0], LiveGaps=[1.0]),
        # older than the window: left out
        record(NOW - 25 * HOUR_MS, JobsStarted=[7.0], JobsFailed=[7.0]),
    ]
    summary = summarise(records, NOW)
    assert summary["jobs"] == {"started": 2, "succeeded": 1, "failed": 1, "failure_rate": 0.5}
    assert summary["failures_by_error"] == {"NotAVideoError": 1}
    assert summary["minutes"] == {"source": 1.5, "output": 6.0}
    assert summary["live"] == {"segments": 3, "latency_p50": 2.0, "latency_p95": 3.0, "gaps": 1}
    assert len(summary["hours"]) == 24 and summary["hours"][-1]["started"] == 2


def test_nothing_yet_is_no_rate_and_no_percentile() -> None:
    summary = summarise([], NOW)
    assert summary["jobs"]["failure_rate"] is None
    assert summary["live"]["latency_p95"] is None
    assert percentile([5.0], 95) == 5.0
