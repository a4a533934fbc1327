"""The template's event bus, rules and targets in the local stack, and webhook delivery.

moto keeps the bus and matches each rule's pattern; it delivers to CloudWatch Logs targets
(the event log ``vidflow events`` reads) itself. For an API destination (the template's
webhook) moto 5.2.5 sends nothing unless ``MOTO_EVENTS_INVOKE_HTTP`` is set, and then a
request without the event or the connection's API key. So ``install`` wraps moto's
``Rule.send_to_targets``: after moto's own delivery, every API-destination target whose rule
matched gets the event POSTed as EventBridge posts it (the event as JSON, the connection's
API-key header), retried with back-off on a connection error or a 5xx/429 answer, on a
thread of its own, as EventBridge delivers asynchronously. ``EventsBackend.put_events``
is wrapped to count each PutEvents as pending until its deliveries are queued, and each
delivery until it ends, so ``deliveries_settled`` can tell a reader that nothing more is
coming.

Like ``ranged_get``, the patch checks moto's version and the source of what it wraps first.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workflow.local.moto_pins import check_pinned, once
from workflow.local.template import Stack

# sha256 (first 16 hex digits) of the source of the moto function the patch wraps.
EXPECTED_SOURCES = {
    "Rule.send_to_targets": "472e002e2dab8a59",
    "EventsBackend.put_events": "c56f6ac1f932c70d",
}
# Tries per webhook delivery, and the first pause between them (doubling).
ATTEMPTS = 5
FIRST_PAUSE = 0.5

logger = logging.getLogger(__name__)
_deliveries = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")
# Webhook deliveries queued and not yet ended (delivered, refused or given up), so a
# reader can tell "nothing more is coming" from "nothing came yet".
_pending = 0
_settled = threading.Condition()


def create(stack: Stack, events: Any, logs: Any) -> None:
    """Create the template's buses, log groups, connections, API destinations and rules
    (with their targets) in the local stack, as a deploy would."""
    for lid in stack.of_type("AWS::Events::EventBus"):
        events.create_event_bus(Name=stack.ref(lid))
    for lid in stack.of_type("AWS::Logs::LogGroup"):
        logs.create_log_group(logGroupName=stack.ref(lid))
    created: dict[str, str] = {}
    for lid in stack.of_type("AWS::Events::Connection"):
        props = stack.resolve(stack.resources[lid]["Properties"])
        created[lid] = events.create_connection(
            Name=f"{stack.name}-{lid}",
            AuthorizationType=props["AuthorizationType"],
            AuthParameters=props["AuthParameters"],
        )["ConnectionArn"]

    def arn(value: Any) -> str:
        # The ARNs of what was just created carry ids moto chose.
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            target, attribute = value["Fn::GetAtt"]
            if attribute == "Arn" and target in created:
                return created[target]
        return str(stack.resolve(value))

    for lid in stack.of_type("AWS::Events::ApiDestination"):
        raw = stack.resources[lid]["Properties"]
        created[lid] = events.create_api_destination(
            Name=f"{stack.name}-{lid}",
            ConnectionArn=arn(raw["ConnectionArn"]),
            InvocationEndpoint=str(stack.resolve(raw["InvocationEndpoint"])),
            HttpMethod=raw["HttpMethod"],
        )["ApiDestinationArn"]
    for lid in stack.of_type("AWS::Events::Rule"):
        raw = stack.resources[lid]["Properties"]
        bus = str(stack.resolve(raw.get("EventBusName", "default")))
        name = str(stack.resolve(raw["Name"])) if "Name" in raw else f"{stack.name}-{lid}"
        events.put_rule(
            Name=name, EventBusName=bus, EventPattern=json.dumps(stack.resolve(raw["EventPattern"]))
        )
        targets = [{"Id": t["Id"], "Arn": arn(t["Arn"])} for t in raw.get("Targets", [])]
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    from moto.events.models import EventsBackend, Rule

    check_pinned(
        "the webhook delivery (workflow/local/eventbridge.py)",
        {
            "Rule.send_to_targets": Rule.send_to_targets,
            "EventsBackend.put_events": EventsBackend.put_events,
        },
        EXPECTED_SOURCES,
    )


@once
def install() -> None:
    """Make moto's rules deliver to API destinations (once per process)."""
    from moto.events.models import EventsBackend, Rule

    check()
    original = Rule.send_to_targets

    @functools.wraps(original)
    def send_to_targets(self: Any, event: Any, transform_input: bool = True) -> None:
        original(self, event, transform_input)
        if not self.event_pattern.matches_event(event):
            return
        for target in self.targets:
            if ":api-destination/" in target["Arn"]:
                request = _request(self.account_id, self.region_name, target["Arn"], event)
                _queue(request)

    put = EventsBackend.put_events

    @functools.wraps(put)
    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Pending from the start: one rule's targets (a log group a reader watches)
        # see an event before another rule's webhook delivery is queued.
        _begin()
        try:
            return put(self, events)
        finally:
            _done()

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
    EventsBackend.put_events = put_events  # type: ignore[method-assign]


def _request(
    account: str, region: str, destination_arn: str, event: dict[str, Any]
) -> tuple[str, str, dict[str, str], bytes]:
    """What EventBridge sends an API destination: the event, with the connection's key."""
    from moto.events.models import events_backends

    backend = events_backends[account][region]
    destination = backend.destinations[destination_arn.split("/")[1]]
    connection = next(
        c for c in backend.connections.values() if c.arn == destination.connection_arn
    )
    headers = {"Content-Type": "application/json; charset=utf-8"}
    key = (connection.auth_parameters or {}).get("ApiKeyAuthParameters")
    if key:
        headers[key["ApiKeyName"]] = key["ApiKeyValue"]
    body = dict(event)
    if isinstance(body.get("time"), int | float):
        body["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(body["time"]))
    body.pop("ingestion-time", None)
    endpoint = destination.invocation_endpoint
    return endpoint, destination.http_method, headers, json.dumps(body).encode()


def deliveries_settled(timeout: float) -> bool:
    """Wait until every webhook delivery queued so far has ended (delivered, refused or
    given up); False if one still runs after ``timeout`` seconds. An event put before
    the call is then either at its webhook or never will be."""
    with _settled:
        return _settled.wait_for(lambda: _pending == 0, timeout)


def _begin() -> None:
    global _pending
    with _settled:
        _pending += 1


def _queue(request: tuple[str, str, dict[str, str], bytes]) -> None:
    _begin()
    try:
        _deliveries.submit(_delivering, *request)
    except RuntimeError:
        # (the interpreter is exiting: nothing is delivered any more)
        _done()
        raise


def _done() -> None:
    global _pending
    with _settled:
        _pending -= 1
        _settled.notify_all()


def _delivering(url: str, method: str, headers: dict[str, str], body: bytes) -> None:
    try:
        _deliver(url, method, headers, body)
    except Exception as exc:  # (raised in a pool's thread, it would be dropped unsaid)
        logger.error("webhook %s: an event could not be sent: %s: %s", url, type(exc).__name__, exc)
    finally:
        _done()


def _deliver(url: str, method: str, headers: dict[str, str], body: bytes) -> None:
    pause = FIRST_PAUSE
    for attempt in range(1, ATTEMPTS + 1):
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method=method)
            with urllib.request.urlopen(request, timeout=5):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                logger.warning("webhook %s refused an event: HTTP %s", url, exc.code)
                return
        except OSError:
            pass
        if attempt < ATTEMPTS:
            time.sleep(pause)
            pause *= 2
    logger.warning("webhook %s did not take an event after %d tries", url, ATTEMPTS)
