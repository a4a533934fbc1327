"""A read-only HTTP origin for the published output, as a CDN would serve it.

On AWS the output bucket is private and a CDN (CloudFront with origin access control)
serves players. Locally this serves the same objects over plain HTTP on 127.0.0.1, so
any player (ffplay, VLC, hls.js in a browser) can open a live playlist while it grows:
only published prefixes (``outputs/``, ``live/``, ``clips/``; a VOD job's or a clip's files
once its master playlist is written), only GET and HEAD (with one byte range, as S3), media
with a day's cache lifetime and whatever may be written over (playlists, a clip's images) a
second, as the objects say to CloudFront, and CORS open for web players.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.exceptions import ClientError

from workflow.keys import tokens
from workflow.storage import cache_control

PUBLISHED_PREFIXES = ("outputs/", "live/", "clips/")
# How deep an asset's folder is, under the prefixes whose assets are published at once, by
# their master playlist, written last (``outputs/<job>/``, ``clips/<stream>/<clip>/``); a
# live stream's files are served as they grow.
_ASSET_DEPTH = {"outputs": 2, "clips": 3}
# How often a local server's loop looks for a shutdown request. socketserver's default,
# 0.5 s, made stopping the engine's three servers one after another take 1.5 s at the end
# of every `vidflow process`; the extra wake-ups cost microseconds.
SHUTDOWN_POLL_SECONDS = 0.05


# One byte range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``), as S3 and a CDN answer with 206;
# any other Range (several ranges, another unit) is ignored, as S3 ignores it: a 200.
_ONE_RANGE = re.compile(r"bytes=(?:[0-9]+-[0-9]*|-[0-9]+)")


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _loopback_name(name: str) -> bool:
    # Every name under .localhost is the loopback too (RFC 6761): S3 clients that address
    # a bucket by its host name ask for <bucket>.localhost.
    return name in _LOOPBACK_NAMES or name.endswith(".localhost")


def addressed_here(host: str | None, port: int) -> bool:
    """Whether a request's ``Host`` names this machine's loopback at ``port``.

    A web page the user visits can make its own name resolve to 127.0.0.1 (DNS
    rebinding) and read a local server as if it were its own; its requests still carry
    that name in ``Host``, so a local server answers only its loopback names.
    """
    name, _, given = (host or "").strip().lower().rpartition(":")
    return given == str(port) and _loopback_name(name)


def from_a_web_page(headers: Any, port: int) -> bool:
    """Whether a browser sent this request for a page other than this server's own (at
    ``port``).

    Browsers name the page's origin in ``Origin`` (every cross-origin request, every
    POST) and say in ``Sec-Fetch-Site`` how it stands to the server; programs (botocore,
    ffmpeg, curl) send neither. A page on another port of this machine is another origin
    too (``same-site``): a downloaded HTML file shown by ``python -m http.server``, any
    dev server, could otherwise read what a page of another site cannot.
    """
    if (headers.get("Sec-Fetch-Site") or "").strip().lower() in ("cross-site", "same-site"):
        return True
    origin = headers.get("Origin")
    if origin is None:
        return False
    try:
        parts = urlsplit(origin.strip().lower())
        host, given = parts.hostname or "", parts.port
    except ValueError:  # not a URL ("http://["): no page of this server sent it
        return True
    named = host if ":" not in host else f"[{host}]"
    return parts.scheme != "http" or given != port or not _loopback_name(named)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer (a player dropping a segment it no longer
        # wants, on a seek or a rung switch) is no error to print a traceback for.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LocalHTTPServer:
    """A threaded HTTP server on 127.0.0.1 that hands each GET and HEAD (``every_method``:
    every request) to ``answer``.

    It answers only requests addressed to itself (``addressed_here``); anything else is
    refused (403).
    """

    def __init__(
        self,
        answer: Callable[[BaseHTTPRequestHandler, bool], None],
        port: int = 0,
        *,
        every_method: bool = False,
    ) -> None:
        bound: list[int] = []

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
                if addressed_here(self.headers.get("Host"), bound[0]):
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

        self.server = _Server(("127.0.0.1", port), Handler)
        bound.append(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{bound[0]}/"
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
        # Asset folders seen with their master playlist: published, for good.
        self._published: set[str] = set()
        super().__init__(self.answer, port, every_method=True)

    def answer(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        if request.command == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            answer_preflight(request)
            return
        if request.command not in ("GET", "HEAD"):
            request.send_error(HTTPStatus.NOT_IMPLEMENTED)  # read-only
            return
        parts = urlsplit(request.path)
        key = unquote(parts.path).lstrip("/")
        if self.guard is not None and not self.guard(key, playback_token(request)):
            refuse(request, HTTPStatus.FORBIDDEN, cors=True)
            return
        if not self._is_published(key):
            refuse(request, HTTPStatus.NOT_FOUND, cors=True)
            return
        send_published(request, self.s3, self.bucket, key, body=body, cors=True)

    def _is_published(self, key: str) -> bool:
        """Whether ``key``'s asset is published: a VOD job's or a clip's files are served
        only once its master playlist is written (last), never a half-published asset's."""
        parts = key.split("/")
        depth = _ASSET_DEPTH.get(parts[0])
        if depth is None:
            return True
        if len(parts) <= depth:
            return False  # no asset's file
        folder = "/".join(parts[:depth]) + "/"
        if folder not in self._published:
            try:
                self.s3.head_object(Bucket=self.bucket, Key=f"{folder}master.m3u8")
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status != HTTPStatus.NOT_FOUND:
                    raise
                return False
            self._published.add(folder)
        return True


def answer_preflight(request: BaseHTTPRequestHandler) -> None:
    """Let a web player on any origin read with its token as a header (``Authorization:
    Bearer``) or a byte range: a browser asks first, without the token, and sends
    neither request unless told it may."""
    request.send_response(HTTPStatus.NO_CONTENT)
    request.send_header("Access-Control-Allow-Origin", "*")
    request.send_header("Access-Control-Allow-Methods", "GET, HEAD")
    request.send_header("Access-Control-Allow-Headers", "Authorization, Range")
    request.send_header("Access-Control-Max-Age", "600")
    request.send_header("Content-Length", "0")
    request.end_headers()


def playback_token(request: BaseHTTPRequestHandler) -> str | None:
    """The token a request carries: ``?token=``, else ``Authorization: Bearer``."""
    query = parse_qsl(urlsplit(request.path).query)
    given = next((value for name, value in query if name == "token" and value), None)
    return tokens.carried(given, request.headers.get("Authorization"))


def refuse(request: BaseHTTPRequestHandler, status: HTTPStatus, *, cors: bool) -> None:
    """Answer ``status``, readable by a web player on any origin where ``cors``: without
    it the browser hides the answer, and a player cannot tell a refused token (403) or a
    file not there yet (404) from a network that failed."""
    text = f"{status.value} {status.phrase}\n".encode()
    request.send_response(status)
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_header("Content-Length", str(len(text)))
    if cors:
        request.send_header("Access-Control-Allow-Origin", "*")
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(text)


def send_published(
    request: BaseHTTPRequestHandler, s3: Any, bucket: str, key: str, *, body: bool, cors: bool
) -> None:
    """Answer ``request`` with the published object ``key``, or 404 for anything else.

    ``cors``: any web page may read it, as web players on other sites read a CDN. Whatever
    the object's type, a browser neither guesses another (``nosniff``) nor runs it as a
    page of this origin (``sandbox``): an HTML file in a published prefix stays inert.
    One byte range is answered as S3 answers it: 206 with the bytes it has, 416 for a range
    that starts past the end.
    """
    if not key.startswith(PUBLISHED_PREFIXES) or ".." in key.split("/"):
        refuse(request, HTTPStatus.NOT_FOUND, cors=cors)
        return
    wanted = (request.headers.get("Range") or "").replace(" ", "")
    ranged = {"Range": wanted} if _ONE_RANGE.fullmatch(wanted) else {}
    try:
        found = s3.get_object(Bucket=bucket, Key=key, **ranged)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if ranged and status == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE:
            size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
            request.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            request.send_header("Content-Range", f"bytes */{size}")
            request.send_header("Content-Length", "0")
            if cors:
                request.send_header("Access-Control-Allow-Origin", "*")
            request.end_headers()
            return
        # NoSuchKey; or a bare 404 where moto cannot hold such a key (a NUL, a newline)
        if status != HTTPStatus.NOT_FOUND:
            raise
        refuse(request, HTTPStatus.NOT_FOUND, cors=cors)
        return
    data = found["Body"].read()
    part = found.get("ContentRange")
    request.send_response(HTTPStatus.PARTIAL_CONTENT if part else HTTPStatus.OK)
    request.send_header("Content-Type", found.get("ContentType", "application/octet-stream"))
    request.send_header("Content-Length", str(len(data)))
    request.send_header("Accept-Ranges", "bytes")
    if part:
        request.send_header("Content-Range", part)
    # As the object says, which CloudFront follows too (storage.cache_control)
    request.send_header("Cache-Control", found.get("CacheControl") or cache_control(key))
    request.send_header("X-Content-Type-Options", "nosniff")
    request.send_header("Content-Security-Policy", "sandbox; default-src 'none'")
    if cors:
        request.send_header("Access-Control-Allow-Origin", "*")
    request.end_headers()
    if body:
        request.wfile.write(data)
