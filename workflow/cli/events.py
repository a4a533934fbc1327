"""``vidflow events``: the outcomes the stack announced, from its event log.

Every event on the stack's bus is kept in its event log (``EventLogName``), locally as on
AWS; this prints them oldest first, one line each (or as JSON lines with ``--json``), and
with ``--follow`` keeps printing new ones until interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from workflow.cli.common import (
    EXIT_FAILED,
    monitored_stack,
    no_stack,
    span_seconds,
)
from workflow.events import DETAIL_TYPES

if TYPE_CHECKING:
    from workflow.cli.common import Commands

# How often --follow looks for new events.
POLL_SECONDS = 1.0
# How far behind the newest event printed --follow looks again: an event is logged at
# its time, put to the bus, and delivered to the log later, out of order with the others
# (an event put a second before another can reach the log after it). Those printed
# already are known by their ids.
LATE_SECONDS = 60


def add_events(commands: Commands) -> None:
    from workflow.cli.watch import monitor_options

    events = commands.add_parser(
        "events",
        help="print the events jobs and live streams announced (published, failed, gaps...)",
        description="Events come from the stack's event log, where a rule on its EventBridge "
        "bus keeps every one; an app subscribes with its own rule or the WebhookUrl parameter.",
    )
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    events.add_argument("--json", action="store_true", help="one JSON event per line")
    events.add_argument(
        "--since",
        type=span_seconds,
        default="24h",
        help="how far back to start: 90s, 30m, 2h, 7d (24h)",
    )
    events.add_argument("--type", dest="types", action="append", default=[],
                        choices=DETAIL_TYPES, metavar="TYPE",
                        help="only this detail-type (e.g. 'Job Failed'); may repeat: "
                        + ", ".join(DETAIL_TYPES))  # fmt: skip
    monitor_options(events)
    events.set_defaults(run=print_events)


def print_events(args: argparse.Namespace) -> int:
    """``vidflow events``: print the log's events, and with --follow those that come."""
    since = time.time() - args.since
    target = _event_log(args)
    if target is None:
        return no_stack(args.endpoint_url)
    logs, group = target
    try:
        for event in _read(logs, group, since, args.follow):
            if args.types and event.get("detail-type") not in args.types:
                continue
            print(json.dumps(event) if args.json else describe(event), flush=True)
    except logs.exceptions.ResourceNotFoundException:
        print(f"error: the stack has no event log {group}: deploy this version first",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    return 0


def describe(event: dict[str, Any]) -> str:
    """One line: when, what, whose, and the one thing to know about it."""
    detail = event.get("detail", {})
    subject = detail.get("job_id") or detail.get("stream") or "?"
    if "error" in detail:
        extra = f"{detail['error']}: {detail.get('cause', '')}"
    elif detail.get("last_sequence", detail.get("sequence")) != detail.get("sequence"):
        first, last = detail["sequence"], detail["last_sequence"]
        extra = f"segments {first}-{last} ({last - first + 1} gaps) {detail.get('reason', '')}"
    elif "sequence" in detail:
        extra = f"segment {detail['sequence']} {detail.get('reason', '')}"
    else:
        urls = detail.get("urls") or {}
        extra = urls.get("master") or detail.get("master") or ""
    return f"{event.get('time', '')}  {event.get('detail-type', ''):<20} {subject}  {extra}"


def _event_log(args: argparse.Namespace) -> tuple[Any, str] | None:
    """A CloudWatch Logs client and the event log's name, or None if no stack runs."""
    found = monitored_stack(args)
    if found is None:
        return None
    stack, client = found
    return client("logs"), stack.outputs()["EventLogName"]


def _read(logs: Any, group: str, since: float, follow: bool) -> Iterator[dict[str, Any]]:
    """The log's events from ``since`` in time order, each once; then, following, new ones."""
    seen: set[str] = set()
    start = int(since * 1000)
    while True:
        found = []
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, startTime=start
        )
        for page in pages:
            found.extend(page["events"])
        for line in sorted(found, key=lambda e: (e["timestamp"], e.get("ingestionTime", 0))):
            event = json.loads(line["message"])
            if event.get("id") in seen:
                continue
            seen.add(event.get("id", ""))
            start = max(start, int(line["timestamp"]) - LATE_SECONDS * 1000)
            yield event
        if not follow:
            return
        time.sleep(POLL_SECONDS)
