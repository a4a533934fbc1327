"""A webhook on 127.0.0.1 that keeps what it is sent: the receiving end of the stack's
EventBridge API destination in tests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY_HEADER = "x-vidflow-test-key"
API_KEY = "test-webhook-key-7f3a"


@dataclass
class Delivery:
    headers: dict[str, str]
    event: dict[str, Any]


@dataclass
class Webhook:
    """Every event it got, in order of first arrival; ``url`` is where the stack is told to
    send them. Delivery is at least once: an event sent again (the stack's POST timed out
    on a loaded machine, and it tried again) is kept apart in ``again``, as a consumer
    drops it by the event's ``id``; an event put twice has two ids, and counts twice."""

    server: ThreadingHTTPServer
    deliveries: list[Delivery] = field(default_factory=list)
    again: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/vidflow"

    def events(self, **match: Any) -> list[dict[str, Any]]:
        """The events received whose detail has every ``match`` value."""
        with self.lock:
            found = [d.event for d in self.deliveries]
        return [e for e in found if all(e["detail"].get(k) == v for k, v in match.items())]

    def wait_for(self, count: int, timeout: float = 30, **match: Any) -> list[dict[str, Any]]:
        """The matching events once there are at least ``count`` (delivery is asynchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(**match)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        return self.events(**match)

    def delivered(self, **match: Any) -> list[dict[str, Any]]:
        """The matching events, once every delivery the stack has queued has ended: for
        events put before the call, all there will ever be (not just the first to come)."""
        from workflow.local.eventbridge import deliveries_settled

        assert deliveries_settled(timeout=60), "a webhook delivery still runs after 60 s"
        return self.events(**match)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start() -> Webhook:
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            delivery = Delivery({k.lower(): v for k, v in self.headers.items()}, json.loads(body))
            with hook.lock:
                seen = any(d.event.get("id") == delivery.event.get("id") for d in hook.deliveries)
                (hook.again if seen else hook.deliveries).append(delivery)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = Webhook(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=hook.server.serve_forever, daemon=True).start()
    return hook
