"""Lambda function URLs on 127.0.0.1: each function the template gives a
``FunctionUrlConfig`` answers HTTP at its own local address, as its URL would on AWS.

A request becomes the function URL event (payload format 2.0) and runs the function
from its build artefacts like any other invocation; its answer (``statusCode``,
``headers``, ``body``, ``isBase64Encoded``) becomes the HTTP response. A function that
fails answers 502, as a function URL does. CORS follows the function's ``Cors``.
A request's body reaches the function as text for a text content type, else base64.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from workflow.local.lambda_runtime import PAYLOAD_LIMIT
from workflow.local.origin import LocalHTTPServer

Invoke = Callable[[str, Any], tuple[Any, dict[str, Any] | None]]
# Request bodies a function URL hands over as text; any other is base64-encoded.
_TEXT_TYPES = {"application/json", "application/xml", "application/x-www-form-urlencoded"}


class FunctionUrl(LocalHTTPServer):
    """The URL of the function ``arn``: every request invokes the function, save a CORS
    preflight, which the URL answers itself from its ``Cors`` (as on AWS)."""

    def __init__(self, invoke: Invoke, arn: str, cors: dict[str, Any], port: int = 0) -> None:
        self.invoke = invoke
        self.arn = arn
        self.cors = cors
        super().__init__(self.answer, port, every_method=True)

    def answer(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        if request.command == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            self._preflight(request)
            return
        length = _body_length(request)
        if length is None or length > PAYLOAD_LIMIT:
            # Refused unread, as AWS refuses it: the body never reaches this process's
            # memory, and a length that is no length never waits for bytes.
            status = 400 if length is None else 413
            request.close_connection = True
            result, error = {"statusCode": status, "body": HTTPStatus(status).phrase}, None
        else:
            result, error = self.invoke(self.arn, request_event(request, length))
        if error is not None and error.get("errorType") == "RequestEntityTooLargeException":
            # (a body under the limit whose event is over it: base64 grows it by a third)
            status, headers, data = 413, {"Content-Type": "text/plain"}, b"Request Entity Too Large"
        elif error is not None or not isinstance(result, dict):
            status, headers, data = 502, {"Content-Type": "text/plain"}, b"Internal Server Error"
        else:
            status, headers, data = _response(result)
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        origin = self._allowed_origin(request)
        if origin:
            request.send_header("Access-Control-Allow-Origin", origin)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if body:
            request.wfile.write(data)

    def _allowed_origin(self, request: BaseHTTPRequestHandler) -> str | None:
        origins = self.cors.get("AllowOrigins", [])
        origin = request.headers.get("Origin")
        if not origin or not ("*" in origins or origin in origins):
            return None
        return "*" if "*" in origins else origin

    def _preflight(self, request: BaseHTTPRequestHandler) -> None:
        """Let the browser send the request it asks about only if ``Cors`` allows its
        origin, its method and every header it names."""
        methods = [m.upper() for m in self.cors.get("AllowMethods", [])]
        allowed_headers = {h.lower() for h in self.cors.get("AllowHeaders", [])}
        asked = request.headers.get("Access-Control-Request-Headers", "")
        wanted = {h.strip().lower() for h in asked.split(",") if h.strip()}
        origin = self._allowed_origin(request)
        method = request.headers["Access-Control-Request-Method"].upper()
        allowed = (
            origin is not None
            and ("*" in methods or method in methods)
            and ("*" in allowed_headers or wanted <= allowed_headers)
        )
        request.send_response(200 if allowed else 403)
        if allowed and origin:
            request.send_header("Access-Control-Allow-Origin", origin)
            request.send_header("Access-Control-Allow-Methods", ", ".join(methods))
            if allowed_headers:
                listed = ", ".join(sorted(allowed_headers))
                request.send_header("Access-Control-Allow-Headers", listed)
            request.send_header("Access-Control-Max-Age", str(self.cors.get("MaxAge", 0)))
        request.send_header("Content-Length", "0")
        request.end_headers()


def _body_length(request: BaseHTTPRequestHandler) -> int | None:
    """The request body's ``Content-Length`` (0 without one); None where it is no length."""
    given = request.headers.get("Content-Length")
    if given is None:
        return 0
    return int(given) if given.strip().isdigit() else None


def request_event(request: BaseHTTPRequestHandler, length: int) -> dict[str, Any]:
    """The function URL event (payload format 2.0) of ``request``, whose body is
    ``length`` bytes."""
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
    if length:
        data = request.rfile.read(length)
        text = headers.get("content-type", "").split(";")[0].strip().lower()
        if text.startswith("text/") or text in _TEXT_TYPES:
            event["body"] = data.decode("utf-8", "replace")
        else:
            event |= {"body": base64.b64encode(data).decode(), "isBase64Encoded": True}
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
