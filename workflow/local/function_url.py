"""Lambda function URLs on 127.0.0.1: each function the template gives a
``FunctionUrlConfig`` answers HTTP at its own local address, as its URL would on AWS.

A request becomes the function URL event (payload format 2.0) and runs the function
from its build artefacts like any other invocation; its answer (``statusCode``,
``headers``, ``body``, ``isBase64Encoded``) becomes the HTTP response. A function that
fails answers 502, as a function URL does. CORS follows the function's ``Cors``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from workflow.local.origin import LocalHTTPServer

Invoke = Callable[[str, Any], tuple[Any, dict[str, Any] | None]]


class FunctionUrl(LocalHTTPServer):
    """The URL of the function ``arn``: every GET and HEAD on it invokes the function."""

    def __init__(self, invoke: Invoke, arn: str, allow_origins: list[str], port: int = 0) -> None:
        self.invoke = invoke
        self.arn = arn
        self.allow_origins = allow_origins
        super().__init__(self.answer, port)

    def answer(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        result, error = self.invoke(self.arn, request_event(request))
        if error is not None or not isinstance(result, dict):
            status, headers, data = 502, {"Content-Type": "text/plain"}, b"Internal Server Error"
        else:
            status, headers, data = _response(result)
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        origin = request.headers.get("Origin")
        if origin and ("*" in self.allow_origins or origin in self.allow_origins):
            request.send_header(
                "Access-Control-Allow-Origin", "*" if "*" in self.allow_origins else origin
            )
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if body:
            request.wfile.write(data)


def request_event(request: BaseHTTPRequestHandler) -> dict[str, Any]:
    """The function URL event (payload format 2.0) of ``request``."""
    parts = urlsplit(request.path)
    headers = {name.lower(): value for name, value in request.headers.items()}
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "domainName": headers.get("host", ""),
            "http": {
                "method": request.command,
                "path": parts.path,
                "protocol": request.request_version,
                "sourceIp": request.client_address[0],
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    return event


def _response(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A function's answer as status, headers and bytes; an answer without a
    ``statusCode`` is a JSON body, as a function URL takes it."""
    if "statusCode" not in result:
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    return int(result["statusCode"]), headers, data
