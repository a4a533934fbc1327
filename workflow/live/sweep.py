"""LiveSweep: on a schedule, advance every open stream past its gaps and its end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflow import metrics
from workflow.live.publish import advance_stream
from workflow.live.store import StreamTable
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.storage import transient_aws_errors


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
    return {
        "streams": {stream: advance_stream(stream, settings, clients, now) for stream in streams}
    }
