"""LiveSweep: on a schedule, advance every open stream past its gaps and its end."""

from __future__ import annotations

import logging
from typing import Any

from workflow import metrics
from workflow.errors import EventError
from workflow.live.publish import advance_stream
from workflow.live.store import StreamTable
from workflow.runtime import Clients, event_time
from workflow.settings import Settings
from workflow.storage import transient_aws_errors

log = logging.getLogger(__name__)


@transient_aws_errors()
def sweep(settings: Settings, clients: Clients, scheduled: str | None = None) -> dict[str, Any]:
    """Advance every open stream: gaps past their timeout, ends past their marker.

    ``scheduled`` is the schedule event's ``time`` (ISO 8601): the streams are advanced
    as of then, so a late delivery never declares a gap early; without it, as of now. A
    time to come (an event made by hand: a schedule's never is) is taken as now, as a
    gap declared before its timeout stays in the playlists for good.
    """
    now = None
    if scheduled:
        at = event_time(scheduled) if isinstance(scheduled, str) else None
        if at is None:
            raise EventError(f"the event's 'time' is {scheduled!r:.60}, not an ISO 8601 time")
        now = min(at.timestamp(), clients.clock())
    table = StreamTable(clients.dynamodb, settings.live_table)
    streams = table.open_streams()
    metrics.count(metrics.LIVE_OPEN_STREAMS, len(streams))
    advanced: dict[str, Any] = {}
    failed: list[Exception] = []
    for stream in streams:
        # One stream's trouble must not hold up the rest: each is advanced, then the
        # sweep fails with the first error if any did.
        try:
            advanced[stream] = advance_stream(stream, settings, clients, now)
        except Exception as exc:
            log.exception("stream %s could not be advanced", stream)
            failed.append(exc)
    if failed:
        raise failed[0]
    return {"streams": advanced}
