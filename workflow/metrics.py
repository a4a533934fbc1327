"""The metrics vidflow's functions emit, in CloudWatch's embedded metric format (EMF).

One Powertools ``Metrics`` for the process (its metric set is shared by every instance):
the steps add to it, and each handler's ``@metrics.log_metrics`` writes it to the log as
one EMF record per invocation, which CloudWatch turns into metrics in the
``POWERTOOLS_METRICS_NAMESPACE`` namespace. Dimensions stay few and fixed: ``service``
(Powertools'), ``Stack`` (``STACK_NAME``) and, for the failures by error, ``ErrorName``.
Ids (job, stream) go in the record's properties, where CloudWatch Logs Insights finds
them, never in a dimension.

``NAMES`` is the list the template's dashboard and alarms are checked against.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

# VOD
JOBS_STARTED = "JobsStarted"
JOBS_SUCCEEDED = "JobsSucceeded"
JOBS_FAILED = "JobsFailed"
SOURCE_MINUTES = "SourceMinutes"
OUTPUT_MINUTES = "OutputMinutes"
ENCODE_SPEED = "EncodeSpeed"
UPLOAD_TO_PUBLISHED = "UploadToPublishedSeconds"
ITEMS_RETRIED = "WorkItemsRetried"
# Live
LIVE_SEGMENT_LATENCY = "LiveSegmentLatency"
LIVE_GAPS = "LiveGaps"
LIVE_LATE_SEGMENTS = "LiveLateSegments"
LIVE_DUPLICATE_SEGMENTS = "LiveDuplicateSegments"
LIVE_OPEN_STREAMS = "LiveOpenStreams"
LIVE_FRAMES_DROPPED = "LiveFramesDropped"

NAMES = (
    JOBS_STARTED, JOBS_SUCCEEDED, JOBS_FAILED, SOURCE_MINUTES, OUTPUT_MINUTES, ENCODE_SPEED,
    UPLOAD_TO_PUBLISHED, ITEMS_RETRIED, LIVE_SEGMENT_LATENCY, LIVE_GAPS, LIVE_LATE_SEGMENTS,
    LIVE_DUPLICATE_SEGMENTS, LIVE_OPEN_STREAMS, LIVE_FRAMES_DROPPED,
)  # fmt: skip
ERROR_DIMENSION = "ErrorName"

metrics = Metrics()
if os.environ.get("STACK_NAME"):
    metrics.set_default_dimensions(Stack=os.environ["STACK_NAME"])
# An invocation with nothing to count (a duplicate event) writes no record, quietly.
warnings.filterwarnings("ignore", "No application metrics to publish")


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=round(value, 3))


def amount(name: str, value: float) -> None:
    """A quantity without a unit (minutes of video, times real time)."""
    metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=round(value, 4))


def about(**properties: Any) -> None:
    """Ids this invocation's record carries as properties (``job_id``, ``stream``)."""
    for key, value in properties.items():
        metrics.add_metadata(key=key, value=value)


def job_failed(error: str) -> None:
    """One failed job: counted in the total, and on its own record by its error's name."""
    count(JOBS_FAILED)
    with single_metric(
        name=JOBS_FAILED,
        unit=MetricUnit.Count,
        value=1,
        default_dimensions=metrics.default_dimensions,
    ) as by_error:
        by_error.add_dimension(name=ERROR_DIMENSION, value=error[:250])
