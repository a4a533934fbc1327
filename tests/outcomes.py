"""Reading back the events a stack announced: from its webhook and its event log, each
checked against the event's JSON Schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[1] / "workflow" / "formats" / "events"


@cache
def schema_of(detail_type: str) -> dict[str, Any]:
    path = SCHEMAS / f"{detail_type.lower().replace(' ', '-')}.v1.json"
    return dict(json.loads(path.read_text()))


def check(event: dict[str, Any]) -> dict[str, Any]:
    """``event``, once it validates against its type's schema (and formats are checked)."""
    jsonschema.validate(
        event, schema_of(event["detail-type"]), format_checker=jsonschema.FormatChecker()
    )
    return event


def logged(engine: Any, **match: Any) -> list[dict[str, Any]]:
    """The events in the stack's event log whose detail has every ``match`` value."""
    logs = engine.client("logs")
    found = []
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=engine.endpoints.event_log
    )
    for page in pages:
        for line in page["events"]:
            event = json.loads(line["message"])
            if all(event["detail"].get(k) == v for k, v in match.items()):
                found.append(event)
    return found


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail-type"] for e in events]
