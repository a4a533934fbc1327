"""The console's metrics panel: what the stack's CloudWatch dashboard shows, computed from
the same embedded-metric-format records the functions log (``workflow.metrics``), read
from their log group. So it needs no CloudWatch metrics API, and reads the local stack
(whose engine puts the functions' lines in that log group too) and a deployed one alike.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from workflow import metrics

HOUR_MS = 3_600_000


def read_records(logs: Any, group: str, since_ms: int) -> Iterator[dict[str, Any]]:
    """The EMF records in ``group`` from ``since_ms`` on."""
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=since_ms)
    for page in pages:
        for event in page["events"]:
            record = emf_record(event["message"])
            if record is not None:
                yield record


def emf_record(line: str) -> dict[str, Any] | None:
    """The EMF record a log line is, or None for any other line."""
    if not line.startswith("{") or '"_aws"' not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "_aws" in record else None


def summarise(records: Iterable[dict[str, Any]], now_ms: int, hours: int = 24) -> dict[str, Any]:
    """Jobs per hour, the failure rate and failures by error, minutes processed and live
    latency percentiles over the last ``hours``."""
    first_hour = now_ms // HOUR_MS - hours + 1
    per_hour = {h: Counter[str]() for h in range(first_hour, first_hour + hours)}
    by_error: Counter[str] = Counter()
    totals: dict[str, float] = dict.fromkeys(
        (metrics.SOURCE_MINUTES, metrics.OUTPUT_MINUTES, metrics.LIVE_GAPS), 0.0
    )
    latencies: list[float] = []
    for record in records:
        hour = int(record["_aws"]["Timestamp"]) // HOUR_MS
        if hour not in per_hour:
            continue
        if metrics.ERROR_DIMENSION in record:
            by_error[record[metrics.ERROR_DIMENSION]] += int(_sum(record, metrics.JOBS_FAILED))
            continue
        for name in (metrics.JOBS_STARTED, metrics.JOBS_SUCCEEDED, metrics.JOBS_FAILED):
            per_hour[hour][name] += int(_sum(record, name))
        for name in (metrics.SOURCE_MINUTES, metrics.OUTPUT_MINUTES, metrics.LIVE_GAPS):
            totals[name] += _sum(record, name)
        latencies.extend(_values(record, metrics.LIVE_SEGMENT_LATENCY))
    succeeded = sum(c[metrics.JOBS_SUCCEEDED] for c in per_hour.values())
    failed = sum(c[metrics.JOBS_FAILED] for c in per_hour.values())
    return {
        "hours": [
            {
                "hour_start_ms": hour * HOUR_MS,
                "started": counts[metrics.JOBS_STARTED],
                "succeeded": counts[metrics.JOBS_SUCCEEDED],
                "failed": counts[metrics.JOBS_FAILED],
            }
            for hour, counts in sorted(per_hour.items())
        ],
        "jobs": {
            "started": sum(c[metrics.JOBS_STARTED] for c in per_hour.values()),
            "succeeded": succeeded,
            "failed": failed,
            "failure_rate": failed / (succeeded + failed) if succeeded + failed else None,
        },
        "failures_by_error": dict(by_error.most_common()),
        "minutes": {
            "source": round(totals[metrics.SOURCE_MINUTES], 3),
            "output": round(totals[metrics.OUTPUT_MINUTES], 3),
        },
        "live": {
            "segments": len(latencies),
            "latency_p50": percentile(latencies, 50),
            "latency_p95": percentile(latencies, 95),
            "gaps": int(totals[metrics.LIVE_GAPS]),
        },
    }


def percentile(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (nearest rank), as CloudWatch's pNN statistics are."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _values(record: dict[str, Any], name: str) -> list[float]:
    value = record.get(name)
    if value is None:
        return []
    return [float(v) for v in (value if isinstance(value, list) else [value])]


def _sum(record: dict[str, Any], name: str) -> float:
    return sum(_values(record, name))
