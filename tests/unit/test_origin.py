"""The local playback origin serves only what is published, read-only, to any player;
a local function URL hands its function every request, and answers CORS preflights."""

from __future__ import annotations

import base64
import http.client
import socket
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.local.function_url import FunctionUrl
from workflow.local.lambda_runtime import PAYLOAD_LIMIT
from workflow.local.origin import Origin, addressed_here, from_a_web_page
from workflow.storage import Bucket


@pytest.fixture
def origin() -> Iterator[Origin]:
    with mock_aws():
        s3 = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="u", aws_secret_access_key="u"
        )
        s3.create_bucket(Bucket="out")
        s3.put_object(
            Bucket="out",
            Key="live/game/360p/live.m3u8",
            Body=b"#EXTM3U\n",
            ContentType="application/vnd.apple.mpegurl",
        )
        s3.put_object(Bucket="out", Key="live/game/360p/seg_00000.ts", Body=b"\x47" * 188)
        s3.put_object(Bucket="out", Key="jobs/x/plan.json", Body=b"{}")
        served = Origin(s3, "out").start()
        yield served
        served.stop()


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), b""


def test_a_playlist_is_served_fresh_and_a_segment_long_lived(origin: Origin) -> None:
    status, headers, body = fetch(origin.url + "live/game/360p/live.m3u8")
    assert (status, body) == (200, b"#EXTM3U\n")
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert headers["Cache-Control"] == "max-age=1"
    assert headers["Access-Control-Allow-Origin"] == "*"
    # whatever its type, a browser neither guesses another nor runs it as a page
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"].startswith("sandbox")
    status, headers, body = fetch(origin.url + "live/game/360p/seg_00000.ts")
    assert status == 200 and len(body) == 188 and headers["Cache-Control"] == "max-age=86400"
    status, headers, body = fetch(origin.url + "live/game/360p/seg_00000.ts", "HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == "188"


@pytest.mark.parametrize(
    "path",
    ["jobs/x/plan.json", "live/game/missing.ts", "live/../jobs/x/plan.json", "", "failures/"],
)
def test_nothing_unpublished_or_missing_is_served(origin: Origin, path: str) -> None:
    assert fetch(origin.url + path)[0] == 404


@pytest.mark.parametrize("folder", ["outputs/job-1/", "clips/game/opener/"])
def test_an_asset_is_served_only_once_its_master_playlist_is_written(
    origin: Origin, folder: str
) -> None:
    # GIVEN an asset being published: its segments and rung playlists, no master yet
    s3 = origin.s3
    for name in ("360p/seg_00000.ts", "360p/index.m3u8", "manifest.json"):
        s3.put_object(Bucket="out", Key=f"{folder}{name}", Body=b"x")
    # THEN none of it is served, as if the asset were not there
    for name in ("360p/seg_00000.ts", "360p/index.m3u8", "manifest.json", "master.m3u8"):
        assert fetch(origin.url + folder + name)[0] == 404
    # WHEN its master playlist is written (last), THEN all of it is
    s3.put_object(Bucket="out", Key=f"{folder}master.m3u8", Body=b"#EXTM3U\n")
    for name in ("360p/seg_00000.ts", "360p/index.m3u8", "manifest.json", "master.m3u8"):
        assert fetch(origin.url + folder + name)[0] == 200
    assert fetch(origin.url + folder.rstrip("/"))[0] == 404  # no asset's file


def test_a_player_that_drops_a_segment_midway_is_no_traceback(
    origin: Origin, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a segment larger than what the sockets buffer
    origin.s3.put_object(Bucket="out", Key="live/game/360p/big.ts", Body=b"\x47" * 20_000_000)
    port = int(urllib.parse.urlsplit(origin.url).port or 0)
    # (the server closes a request's socket last, after any error it reports)
    handled = threading.Event()
    close = origin.server.shutdown_request

    def closed(request: Any) -> None:
        close(request)
        handled.set()

    origin.server.shutdown_request = closed  # type: ignore[method-assign]
    # WHEN a player asks for it and drops the connection once the answer starts
    with socket.create_connection(("127.0.0.1", port)) as player:
        player.sendall(
            f"GET /live/game/360p/big.ts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        )
        assert player.recv(12) == b"HTTP/1.0 200"
        player.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
    assert handled.wait(timeout=60), "the server still answers the reset request"
    # THEN nothing is printed, and the next request is answered
    assert "Traceback" not in capfd.readouterr().err
    assert fetch(origin.url + "live/game/360p/live.m3u8")[0] == 200


@pytest.mark.parametrize(
    ("asked", "status", "part", "served"),
    [("bytes=0-9", 206, "bytes 0-9/188", 10), ("bytes=180-", 206, "bytes 180-187/188", 8),
     ("bytes=-4", 206, "bytes 184-187/188", 4), ("bytes=180-999", 206, "bytes 180-187/188", 8),
     ("bytes=188-", 416, "bytes */188", 0), ("bytes=0-1,5-6", 200, None, 188),
     ("lines=0-1", 200, None, 188), ("bytes=9-2", 200, None, 188)],
)  # fmt: skip
def test_one_byte_range_is_answered_as_s3_answers_it(
    origin: Origin, asked: str, status: int, part: str | None, served: int
) -> None:
    request = urllib.request.Request(origin.url + "live/game/360p/seg_00000.ts")
    request.add_header("Range", asked)
    try:
        with urllib.request.urlopen(request) as response:
            answered, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        answered, headers, body = error.code, error.headers, error.read()
    assert (answered, headers["Content-Range"], len(body)) == (status, part, served)
    assert int(headers["Content-Length"]) == served


def test_it_is_read_only(origin: Origin) -> None:
    assert fetch(origin.url + "live/game/360p/live.m3u8", "DELETE")[0] == 501


@pytest.mark.parametrize(
    ("host", "status"),
    [("evil.example.com", 403), ("evil.example.com:{port}", 403), ("127.0.0.1:1", 403),
     ("", 403), ("127.0.0.1:{port}", 200), ("localhost:{port}", 200), ("[::1]:{port}", 200)],
)  # fmt: skip
def test_only_requests_for_its_own_address_are_answered(
    origin: Origin, host: str, status: int
) -> None:
    # a page whose name was made to resolve to 127.0.0.1 (DNS rebinding) keeps it in Host
    port = urllib.parse.urlsplit(origin.url).port
    for method in ("GET", "HEAD"):
        request = urllib.request.Request(
            origin.url + "live/game/360p/live.m3u8",
            method=method,
            headers={"Host": host.format(port=port)},
        )
        try:
            with urllib.request.urlopen(request) as response:
                got, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            got, body = error.code, error.read()
        assert got == status, (host, method)
        assert (body == b"#EXTM3U\n") == (status == 200 and method == "GET")


@pytest.mark.parametrize(
    ("host", "here"),
    [("127.0.0.1:4566", True), ("LOCALHOST:4566", True), ("[::1]:4566", True),
     ("bucket.localhost:4566", True), ("127.0.0.1:4567", False), ("127.0.0.1", False),
     ("evil.example:4566", False), ("localhost.evil.example:4566", False), ("", False),
     (None, False)],
)  # fmt: skip
def test_a_request_is_addressed_here_by_a_loopback_name_and_the_port(
    host: str | None, here: bool
) -> None:
    assert addressed_here(host, 4566) is here


@pytest.mark.parametrize(
    ("headers", "web_page"),
    [({}, False), ({"Origin": "http://127.0.0.1:4566"}, False),
     ({"Origin": "http://localhost:4566", "Sec-Fetch-Site": "same-origin"}, False),
     ({"Origin": "http://[::1]:4566"}, False), ({"Sec-Fetch-Site": "same-origin"}, False),
     ({"Sec-Fetch-Site": "none"}, False), ({"Origin": "https://evil.example"}, True),
     ({"Origin": "null"}, True), ({"Origin": "http://127.0.0.2:4566"}, True),
     ({"Origin": "http://localhost.evil.example"}, True), ({"Sec-Fetch-Site": "cross-site"}, True),
     ({"Origin": "http://["}, True), ({"Origin": "http://[::1"}, True),
     # a page served on another port of this machine (a dev server, a downloaded page)
     ({"Origin": "http://127.0.0.1:8080"}, True), ({"Origin": "http://localhost"}, True),
     ({"Origin": "http://[::1]:8080"}, True), ({"Origin": "https://127.0.0.1:4566"}, True),
     ({"Sec-Fetch-Site": "same-site"}, True),
     ({"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}, True)],
)  # fmt: skip
def test_a_request_from_any_other_page_is_told_apart_from_a_programs_or_its_own(
    headers: dict[str, str], web_page: bool
) -> None:
    # programs (botocore, ffmpeg, curl) send neither header; browsers name the page's origin
    assert from_a_web_page(headers, 4566) is web_page


def test_a_function_url_hands_any_request_to_its_function_and_answers_preflights() -> None:
    seen: list[dict[str, Any]] = []

    def invoke(arn: str, event: Any) -> tuple[Any, None]:
        seen.append(event)
        return {"statusCode": 200, "body": "ok"}, None

    cors = {"AllowOrigins": ["*"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["x-a"]}
    url = FunctionUrl(invoke, "arn:fn", cors).start()
    try:
        # A POST reaches the function with its body: text for JSON, else base64
        for kind, body, encoded in (
            ("application/json", '{"kids": []}', False),
            ("", base64.b64encode(b"\x00\x01").decode(), True),
        ):
            request = urllib.request.Request(
                url.url + "keys/a?token=t",
                data=b'{"kids": []}' if not encoded else b"\x00\x01",
                method="POST",
                headers={"Content-Type": kind, "Origin": "https://player.example"},
            )
            with urllib.request.urlopen(request) as response:
                assert response.read() == b"ok"
                assert response.headers["Access-Control-Allow-Origin"] == "*"
            event = seen[-1]
            assert event["requestContext"]["http"]["method"] == "POST"
            assert (event["body"], event["isBase64Encoded"]) == (body, encoded)
            assert event["queryStringParameters"] == {"token": "t"}
        # A preflight is the URL's own answer, from its Cors: allowed, or not
        calls = len(seen)
        for method, headers, allowed in (
            ("POST", "X-A", True),
            ("PUT", "", False),
            ("POST", "x-a, x-b", False),
        ):
            status, answered, _ = fetch_with(
                url.url + "keys/a",
                "OPTIONS",
                {
                    "Origin": "https://player.example",
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": headers,
                },
            )
            assert status == (200 if allowed else 403), method
            assert ("Access-Control-Allow-Methods" in answered) == allowed
        assert len(seen) == calls
    finally:
        url.stop()


@pytest.mark.parametrize(
    ("length", "status"), [(str(PAYLOAD_LIMIT + 1), 413), ("-1", 400), ("abc", 400)]
)
def test_a_function_url_refuses_a_body_over_lambdas_limit_unread(length: str, status: int) -> None:
    seen: list[Any] = []

    def invoke(arn: str, event: Any) -> tuple[Any, None]:
        seen.append(event)
        return {"statusCode": 200, "body": "ok"}, None

    url = FunctionUrl(invoke, "arn:fn", {"AllowOrigins": ["*"]}).start()
    try:
        # GIVEN a POST that says its body is over 6 MB, or gives no length at all
        parts = urllib.parse.urlsplit(url.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.putrequest("POST", "/keys/a")
        connection.putheader("Content-Length", length)
        connection.endheaders()
        # THEN it is answered at once, as AWS answers it, without a byte of it read or
        # the function invoked
        answered = connection.getresponse()
        assert answered.status == status and seen == []
        connection.close()
    finally:
        url.stop()


def fetch_with(url: str, method: str, headers: dict[str, str]) -> tuple[int, Any, bytes]:
    try:
        request = urllib.request.Request(url, method=method, headers=headers)
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("master.m3u8", "application/vnd.apple.mpegurl"), ("manifest.mpd", "application/dash+xml"),
     ("720p/init.mp4", "video/mp4"), ("720p/seg_00000.m4s", "video/iso.segment"),
     ("audio/init.mp4", "audio/mp4"),
     ("720p/seg_00000.ts", "video/mp2t"), ("subtitles/en.vtt", "text/vtt"),
     ("images/thumbnails.vtt", "text/vtt"), ("images/poster.jpg", "image/jpeg"),
     ("images/sprites/000.jpg", "image/jpeg"), ("manifest.json", "application/json")],
)  # fmt: skip
@pytest.mark.parametrize("how", ["put", "upload"])
def test_every_kind_of_published_file_is_served_with_its_type(
    origin: Origin, tmp_path: Any, name: str, content_type: str, how: str
) -> None:
    # GIVEN an asset's file written as the publishing steps write it (bodies they make,
    # files ffmpeg made), and the asset published
    output = Bucket(origin.s3, "out")
    key = f"outputs/job-1/{name}"
    if how == "put":
        output.put_bytes(key, b"x")
    else:
        path = tmp_path / name.rsplit("/", 1)[-1]
        path.write_bytes(b"x")
        output.upload_all({key: path})
    output.put_bytes("outputs/job-1/master.m3u8", b"#EXTM3U\n")
    # THEN S3 holds it, and a player is served it, with its own type: a DASH player, a
    # <track>, CloudFront's compression and a browser opening a poster all go by it
    assert origin.s3.head_object(Bucket="out", Key=key)["ContentType"] == content_type
    status, headers, _ = fetch(origin.url + key)
    assert (status, headers["Content-Type"]) == (200, content_type)


@pytest.mark.parametrize(
    ("name", "lifetime"),
    [("manifest.json", 1), ("images/poster.jpg", 1), ("images/thumbnails.vtt", 1),
     ("images/sprites/000.jpg", 1), ("images/thumbnails/00001.jpg", 1), ("master.m3u8", 1),
     ("360p/index.m3u8", 1), ("360p/seg_00042-2.ts", 86400)],
)  # fmt: skip
def test_a_clip_asked_for_again_is_not_served_as_it_was(
    origin: Origin, tmp_path: Any, name: str, lifetime: int
) -> None:
    # GIVEN a clip's file as its publishing writes it: its images, manifest and playlists
    # have fixed names, which the clip asked for again under its name writes over; only
    # its segments are each version's own
    output = Bucket(origin.s3, "out")
    key = f"clips/game/opener/{name}"
    path = tmp_path / name.rsplit("/", 1)[-1]
    path.write_bytes(b"x")
    output.upload_all({key: path})
    output.put_bytes("clips/game/opener/master.m3u8", b"#EXTM3U\n")
    # THEN what may be written over is kept a second, by the CDN (which follows the
    # object's Cache-Control) and by the player, not the day a segment is: else the
    # clip asked for again shows the first one's poster and scrub thumbnails for a day
    head = origin.s3.head_object(Bucket="out", Key=key)
    assert head.get("CacheControl") == f"max-age={lifetime}"
    status, headers, _ = fetch(origin.url + key)
    assert (status, headers["Cache-Control"]) == (200, f"max-age={lifetime}")


def test_a_web_players_preflight_is_answered(origin: Origin) -> None:
    # GIVEN a web player on another origin that sends its playback token as a header
    # (``Authorization: Bearer``, which the origin takes), or a byte range: the browser
    # first asks the origin, without the token, whether it may
    request = urllib.request.Request(origin.url + "live/game/360p/live.m3u8", method="OPTIONS")
    request.add_header("Origin", "http://localhost:3000")
    request.add_header("Access-Control-Request-Method", "GET")
    request.add_header("Access-Control-Request-Headers", "authorization,range")
    status, headers, body = _answer(request)
    # THEN it may: else the browser never sends the request, and the player fails on its
    # first playlist
    assert status == 204 and body == b""
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert {"GET", "HEAD"} <= {
        m.strip() for m in headers["Access-Control-Allow-Methods"].split(",")
    }
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "range"} <= allowed
    # AND it stays read-only
    assert fetch(origin.url + "live/game/360p/live.m3u8", "POST")[0] == 501


def _answer(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize("guarded", [False, True])
def test_a_refusal_is_readable_by_a_web_player(guarded: bool) -> None:
    # GIVEN the origin, checking tokens or not
    with mock_aws():
        s3 = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="u", aws_secret_access_key="u"
        )
        s3.create_bucket(Bucket="out")
        served = Origin(s3, "out", guard=(lambda key, token: False) if guarded else None)
        served.start()
        try:
            # WHEN a web player on another origin asks for a file it is refused (a token
            # that expired) or that is not there yet
            request = urllib.request.Request(served.url + "live/game/360p/live.m3u8")
            request.add_header("Origin", "http://localhost:3000")
            status, headers, _ = _answer(request)
        finally:
            served.stop()
    # THEN the browser lets the player read the refusal (else it sees a network error,
    # and cannot tell that it should fetch a new token, or wait)
    assert status == (403 if guarded else 404)
    assert headers.get("Access-Control-Allow-Origin") == "*"
