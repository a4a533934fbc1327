"""``vidflow console``: a web page for a stack's executions, served on 127.0.0.1.

One page (``workflow/cli/console/``: hand-written HTML, CSS and JavaScript, plus hls.js from
the npm registry, installed by ``make setup``) and a small JSON API over
``workflow.cli.monitor``. The published output is proxied read-only under ``/media/`` so
the page's player works the same against the local stack and against AWS.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.exceptions

from workflow.cli.monitor import STATUSES, Monitor
from workflow.local.origin import LocalHTTPServer, from_a_web_page, send_published

STATIC = Path(__file__).resolve().parent / "console"
HLS_JS = STATIC / "node_modules" / "hls.js" / "dist" / "hls.min.js"
_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}


class ConsoleServer(LocalHTTPServer):
    """Serve the console for ``monitor`` at ``http://127.0.0.1:<port>/`` until stopped."""

    def __init__(self, monitor: Monitor, port: int = 0) -> None:
        self.monitor = monitor
        super().__init__(self.answer, port)

    def answer(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        if from_a_web_page(request.headers, self.server.server_address[1]):
            # The console's pages call only the console: another page has no business here.
            request.send_error(HTTPStatus.FORBIDDEN)
            return
        if not body:
            request.send_error(HTTPStatus.NOT_IMPLEMENTED)
            return
        parts = urlsplit(request.path)
        path = unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path in _FILES:
            name, kind = _FILES[path]
            _send(request, (STATIC / name).read_bytes(), kind)
        elif path == "/static/hls.min.js":
            if not HLS_JS.exists():
                request.send_error(HTTPStatus.NOT_FOUND, "hls.js is not installed: run make setup")
                return
            _send(request, HLS_JS.read_bytes(), "text/javascript; charset=utf-8")
        elif path.startswith("/media/"):
            key = path[len("/media/") :]
            try:
                send_published(
                    request, self.monitor.s3, self.monitor.output_bucket, key, body=True, cors=False
                )
            except botocore.exceptions.BotoCoreError:
                request.send_error(HTTPStatus.BAD_GATEWAY, "the stack does not answer")
        elif path.startswith("/api/"):
            self._api(request, path[len("/api/") :], query)
        else:
            request.send_error(HTTPStatus.NOT_FOUND)

    def _api(self, request: BaseHTTPRequestHandler, name: str, query: dict[str, str]) -> None:
        try:
            if name == "executions":
                status = query.get("status") or None
                if status is not None and status not in STATUSES:
                    _send_json(request, {"error": f"no status {status}"}, HTTPStatus.BAD_REQUEST)
                    return
                value: Any = {
                    "stack": self.monitor.stack,
                    "executions": self.monitor.executions(status),
                    "streams": self.monitor.streams(),
                }
            elif name == "metrics":
                value = self.monitor.metrics()
            elif name == "execution" and "arn" in query:
                value = self.monitor.execution(query["arn"])
            elif name == "stream" and "name" in query:
                value = self.monitor.stream(query["name"])
                if value is None:
                    _send_json(request, {"error": "no such stream"}, HTTPStatus.NOT_FOUND)
                    return
            else:
                request.send_error(HTTPStatus.NOT_FOUND)
                return
        except self.monitor.sfn.exceptions.ExecutionDoesNotExist:
            _send_json(request, {"error": "no such execution"}, HTTPStatus.NOT_FOUND)
            return
        except botocore.exceptions.ClientError as exc:
            # A malformed ARN, missing permissions (--aws), throttling: say so, in the page.
            error = exc.response.get("Error", {})
            message = f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
            _send_json(request, {"error": message}, HTTPStatus.BAD_GATEWAY)
            return
        except botocore.exceptions.BotoCoreError as exc:
            # The stack stopped (vidflow up ended), or the network to AWS is down: say so.
            _send_json(
                request, {"error": f"the stack does not answer: {exc}"}, HTTPStatus.BAD_GATEWAY
            )
            return
        _send_json(request, value)


def _send(request: BaseHTTPRequestHandler, data: bytes, kind: str) -> None:
    request.send_response(HTTPStatus.OK)
    request.send_header("Content-Type", kind)
    request.send_header("Content-Length", str(len(data)))
    request.send_header("Cache-Control", "no-store")
    request.end_headers()
    request.wfile.write(data)


def _send_json(
    request: BaseHTTPRequestHandler, value: Any, status: HTTPStatus = HTTPStatus.OK
) -> None:
    data = json.dumps(value, default=str).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.send_header("Cache-Control", "no-store")
    request.end_headers()
    request.wfile.write(data)
