"""How far a running work item's encode is: a small record in the job's scratch, which
``Monitor.progress`` (``vidflow process``) reads through S3 as it reads the results.

A handful of PUTs per item: the first some seconds into the encode (a short item's
result comes first), then at most one every few seconds, none once the encode is over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from workflow.runtime import Clock
from workflow.storage import Bucket

FIRST_REPORT_SECONDS = 2.0
REPORT_EVERY_SECONDS = 3.0


def report_due(now: float, began: float, last: float | None) -> bool:
    """Whether a report made at ``now`` is written: not in the encode's first seconds, and
    not within a few seconds of the last one written (at ``last``)."""
    if now - began < FIRST_REPORT_SECONDS:
        return False
    return last is None or now - last >= REPORT_EVERY_SECONDS


def progress_record(item: str, fraction: float) -> dict[str, Any]:
    """What an item's progress record holds."""
    return {"item": item, "fraction": round(min(1.0, max(0.0, fraction)), 4)}


def recorded_fraction(record: Any) -> float | None:
    """The fraction done a progress record says, 0 to 1; None if it is not one."""
    fraction = record.get("fraction") if isinstance(record, dict) else None
    if isinstance(fraction, int | float) and not isinstance(fraction, bool):
        return min(1.0, max(0.0, float(fraction)))
    return None


class ItemProgress:
    """Called with an item's fraction encoded as its ffmpeg reports; writes it to
    ``key`` when a report is due.

    A write that fails raises to the caller, ``run_ffmpeg``'s reader, which logs it and
    goes on: a failed report never fails the item.
    """

    def __init__(self, output: Bucket, key: str, item: str, clock: Clock) -> None:
        self.output, self.key, self.item, self.clock = output, key, item, clock
        self.began = clock()
        self.last: float | None = None
        self._lock = threading.Lock()

    def __call__(self, fraction: float) -> None:
        with self._lock:
            now = self.clock()
            if not report_due(now, self.began, self.last):
                return
            self.last = now  # a failed write waits its turn too: no burst at a failing S3
        # Written outside the lock: a slow PUT holds up no other encode's report.
        self.output.put_json(self.key, progress_record(self.item, fraction))

    def span(self, start: float, end: float) -> Callable[[float], None]:
        """Called with the fraction done of one phase of the item, ``start`` to ``end`` of
        its work (an encode, then the scoring of its quality report)."""

        def report(fraction: float) -> None:
            self(start + (end - start) * fraction)

        return report
