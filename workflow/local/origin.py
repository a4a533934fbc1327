"""A read-only HTTP origin for the published output, as a CDN would serve it.

On AWS the output bucket is private and a CDN (CloudFront with origin access control)
serves players. Locally this serves the same objects over plain HTTP on 127.0.0.1, so
any player (ffplay, VLC, hls.js in a browser) can open a live playlist while it grows:
only published prefixes (``outputs/``, ``live/``, ``clips/``), only GET and HEAD, playlists with a
one-second cache lifetime and segments with a long one, and CORS open for web players.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from workflow.keys import tokens

PUBLISHED_PREFIXES = ("outputs/", "live/", "clips/")
# How often a local server's loop looks for a shutdown request. socketserver's default,
# 0.5 s, made stopping the engine's three servers one after another take 1.5 s at the end
# of every `vidflow process`; the extra wake-ups cost microseconds.
SHUTDOWN_POLL_SECONDS = 0.05


class LocalHTTPServer:
    """A threaded HTTP server on 127.0.0.1 that hands each GET and HEAD (``every_method``:
    every request) to ``answer``.

    It answers only requests addressed to itself: a ``Host`` of ``127.0.0.1``,
    ``localhost`` or ``[::1]`` with its own port. Anything else is refused (403), so a web
    page the user visits cannot read it through DNS rebinding (its name made to resolve to
    127.0.0.1 keeps its own name in ``Host``).
    """

    def __init__(
        self,
        answer: Callable[[BaseHTTPRequestHandler, bool], None],
        port: int = 0,
        *,
        every_method: bool = False,
    ) -> None:
        hosts: set[str] = set()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self._addressed_here():
                    answer(self, True)

            def do_HEAD(self) -> None:
                if self._addressed_here():
                    answer(self, False)

            if every_method:
                do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

            def _addressed_here(self) -> bool:
                if (self.headers.get("Host") or "").strip().lower() in hosts:
                    return True
                refusal = b"this server answers only requests for its own local address\n"
                self.send_response(HTTPStatus.FORBIDDEN)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(refusal)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(refusal)
                return False

            def log_message(self, format: str, *args: Any) -> None:
                """Requests are not for the user's terminal."""

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        bound = self.server.server_address[1]
        hosts.update(f"{name}:{bound}" for name in ("127.0.0.1", "localhost", "[::1]"))
        self.url = f"http://127.0.0.1:{bound}/"
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# Whether a request for a key may be answered, given the playback token it carries.
Guard = Callable[[str, str | None], bool]


class Origin(LocalHTTPServer):
    """Serve ``bucket`` through ``s3`` at ``http://127.0.0.1:<port>/<key>`` until stopped;
    where ``guard`` refuses a key without a valid token (``?token=`` or ``Authorization:
    Bearer``), answer 403, as a CDN that checks playback tokens would."""

    def __init__(self, s3: Any, bucket: str, port: int = 0, guard: Guard | None = None) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.guard = guard
        super().__init__(self.answer, port)

    def answer(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        parts = urlsplit(request.path)
        key = unquote(parts.path).lstrip("/")
        if self.guard is not None and not self.guard(key, playback_token(request)):
            request.send_error(HTTPStatus.FORBIDDEN)
            return
        send_published(request, self.s3, self.bucket, key, body=body)


def playback_token(request: BaseHTTPRequestHandler) -> str | None:
    """The token a request carries: ``?token=``, else ``Authorization: Bearer``."""
    query = parse_qsl(urlsplit(request.path).query)
    given = next((value for name, value in query if name == "token" and value), None)
    return tokens.carried(given, request.headers.get("Authorization"))


def send_published(
    request: BaseHTTPRequestHandler, s3: Any, bucket: str, key: str, *, body: bool
) -> None:
    """Answer ``request`` with the published object ``key``, or 404 for anything else."""
    if not key.startswith(PUBLISHED_PREFIXES) or ".." in key.split("/"):
        request.send_error(HTTPStatus.NOT_FOUND)
        return
    try:
        found = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        request.send_error(HTTPStatus.NOT_FOUND)
        return
    data = found["Body"].read()
    request.send_response(HTTPStatus.OK)
    request.send_header("Content-Type", found.get("ContentType", "application/octet-stream"))
    request.send_header("Content-Length", str(len(data)))
    lifetime = 1 if key.endswith(".m3u8") else 86400
    request.send_header("Cache-Control", f"max-age={lifetime}")
    request.send_header("Access-Control-Allow-Origin", "*")
    request.end_headers()
    if body:
        request.wfile.write(data)
