"""LiveSweep: on a schedule, advance every open stream past its gaps and its end."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from workflow import metrics
from workflow.live.publish import advance_stream
from workflow.live.store import StreamTable
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import transient_aws_errors

log = logging.getLogger(__name__)


@transient_aws_errors()
def sweep(settings: Settings, clients: Clients, scheduled: str | None = None) -> dict[str, Any]:
    """Advance every open stream: gaps past their timeout, ends past their marker.

    ``scheduled`` is the schedule event's ``time`` (ISO 8601): the streams are advanced
    as of then, so a late delivery never declares a gap early; without it, as of now.
    """
    now = datetime.fromisoformat(scheduled).timestamp() if scheduled else None
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
