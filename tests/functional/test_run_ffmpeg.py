"""How an ffmpeg failure is named (the source lost: retry; the input bad: refuse), and how
far a running one says it is."""

from __future__ import annotations

import http.server
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ffmpeg
import pytest

from workflow.errors import TranscodeError, TranscodeInterruptedError
from workflow.local.binaries import ffmpeg_binary
from workflow.media.encode import open_input
from workflow.media.runner import run_ffmpeg

SIGNED = "https://bucket.s3.amazonaws.com/x.mp4?X-Amz-Signature=abc"


def pretend_ffmpeg(stderr: str) -> list[str]:
    """A process that prints what a failing ffmpeg prints and exits 1."""
    return [sys.executable, "-c", f"import sys; sys.stderr.write({stderr!r}); sys.exit(1)"]


def test_losing_the_source_is_retried() -> None:
    with pytest.raises(TranscodeInterruptedError, match="lost its source"):
        run_ffmpeg(pretend_ffmpeg(f"{SIGNED}: Connection reset by peer\n"), 30)


def test_bad_input_is_refused_and_the_signed_url_is_not_repeated() -> None:
    with pytest.raises(TranscodeError, match="Invalid data") as refused:
        run_ffmpeg(pretend_ffmpeg(f"{SIGNED}: Invalid data found when processing input\n"), 30)
    assert "Signature" not in str(refused.value)


def test_an_encoder_that_will_not_open_says_so_not_that_nothing_was_decoded(
    clip: Any, tmp_path: Path
) -> None:
    # GIVEN a picture wider than x264 opens an encoder for: ffmpeg's last line is then
    # "Nothing was written into output file", as when a seek left no frame to encode
    wide = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error",
            "-i", str(clip("h264_aac_2gop")), "-vf", "scale=16400:64", "-c:v", "libx264",
            "-an", "-f", "hls", str(tmp_path / "out.m3u8")]  # fmt: skip
    # WHEN it runs, THEN the error is the encoder's own
    with pytest.raises(TranscodeError) as failed:
        run_ffmpeg(wide, 30)
    message = str(failed.value)
    assert "the encoder would not open: invalid width x height (16400x64)" in message
    assert "Nothing was written" not in message


@pytest.mark.parametrize(
    ("signal_name", "error"),
    [("SIGSEGV", TranscodeError), ("SIGABRT", TranscodeError),
     ("SIGKILL", TranscodeInterruptedError), ("SIGTERM", TranscodeInterruptedError)],
)  # fmt: skip
def test_a_crash_is_an_error_of_the_input_and_a_kill_from_outside_is_retried(
    signal_name: str, error: type[Exception]
) -> None:
    # A crash repeats on every retry (libvmaf on frames of 16 px, for one); a kill from
    # outside (the memory limit, the function's end) may not
    dies = f"import os, signal; os.kill(os.getpid(), signal.{signal_name})"
    with pytest.raises(error, match=signal_name) as raised:
        run_ffmpeg([sys.executable, "-c", dies], 30)
    assert type(raised.value) is error


def test_a_run_past_its_limit_is_interrupted() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(TranscodeInterruptedError, match="past its 1 s limit"):
        run_ffmpeg(sleeper, 1)


def test_progress_rises_to_the_length_encoded(clip: Any, tmp_path: Path) -> None:
    # GIVEN a 30 s clip
    source = clip("h264_aac_2gop")
    reports: list[float] = []
    # WHEN ffmpeg transcodes it with a progress callback
    run_ffmpeg(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(source),
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(tmp_path / "out.mp4")],
        60,
        reports.append,
    )  # fmt: skip
    # THEN the seconds encoded only rise, and end at the clip's length
    assert reports and reports == sorted(reports)
    assert reports[-1] == pytest.approx(30.0, abs=0.1)


def test_a_failing_progress_callback_does_not_fail_the_encode(tmp_path: Path) -> None:
    # GIVEN a callback that fails every time
    calls: list[float] = []

    def broken(seconds: float) -> None:
        calls.append(seconds)
        raise OSError("the report could not be written")

    # WHEN ffmpeg runs with it, THEN the encode still completes
    out = tmp_path / "out.mp4"
    run_ffmpeg(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264",
         "-preset", "ultrafast", str(out)],
        60,
        broken,
    )  # fmt: skip
    assert calls and out.stat().st_size > 0


def serve_cutting(path: Path, bodies: list[float]) -> Iterator[str]:
    """An HTTP server of ``path`` with ranges whose n-th response sends only the share
    ``bodies[n]`` of its body and then drops the connection; later ones, the last share."""
    served: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            data = path.read_bytes()
            found = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "bytes=0-"))
            assert found is not None
            start = int(found[1])
            stop = int(found[2]) + 1 if found[2] else len(data)
            self.send_response(206)
            self.send_header("Content-Length", str(stop - start))
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
            self.end_headers()
            share = bodies[min(len(served), len(bodies) - 1)]
            served.append(start)
            body = data[start:stop]
            self.wfile.write(body[: int(len(body) * share)])
            if share < 1:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    """4 s of MPEG-TS (100 frames), which ffmpeg reads from the start to the end."""
    path = tmp_path / "source.ts"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=320x180:rate=25:duration=4", "-c:v", "libx264", "-g", "25",
         "-preset", "ultrafast", "-b:v", "2M", str(path)],
        check=True,
    )  # fmt: skip
    return path


def frames_read(url: str, out: Path) -> int:
    """Decode ``url`` as vidflow's functions open a source; the frames that came out."""
    command = ffmpeg.compile(
        open_input(url, "mpegts")
        .video.output(str(out), f="framecrc")
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error"),
        cmd=ffmpeg_binary(),
    )
    run_ffmpeg(command, 60)
    return sum(1 for line in out.read_text().splitlines() if not line.startswith("#"))


def test_a_read_cut_short_carries_on_from_where_it_stopped(stream: Path, tmp_path: Path) -> None:
    # GIVEN a source whose first read S3 ends after half its body
    # WHEN a function's ffmpeg reads it
    for url in serve_cutting(stream, [0.5, 1.0]):
        frames = frames_read(url, tmp_path / "frames.txt")
    # THEN it read on from where it was, and missed no frame
    assert frames == 100


def test_a_source_lost_for_good_fails_rather_than_ending_early(
    stream: Path, tmp_path: Path
) -> None:
    # GIVEN a source whose first read ends after half its body, and every later one at once
    # WHEN a function's ffmpeg reads it (ffmpeg decodes the half and exits 0)
    # THEN the run is an interrupted one, to be retried, not a shorter output
    for url in serve_cutting(stream, [0.5, 0.0]):
        with pytest.raises(TranscodeInterruptedError, match="lost its source mid-read"):
            frames_read(url, tmp_path / "frames.txt")


def test_ffmpeg_sends_at_most_ffmpeg_max_url_characters_of_a_url() -> None:
    # GIVEN a server that notes what ffmpeg asks for
    from workflow.storage import FFMPEG_MAX_URL

    asked: list[str] = []

    class Noting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Noting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for length in (FFMPEG_MAX_URL, FFMPEG_MAX_URL + 1):
            path = "/b/" + "k" * (length - len("/b/?X-Amz-Signature=s")) + "?X-Amz-Signature=s"
            url = f"http://127.0.0.1:{server.server_address[1]}{path}"
            # WHEN ffmpeg reads a URL whose path and query are that long
            subprocess.run([ffmpeg_binary(), "-v", "quiet", "-i", url], timeout=30, check=False)
            # THEN it sends all of one FFMPEG_MAX_URL long, and cuts a longer one unsaid
            # (the signature's end lost: S3 would answer 403), which presign refuses
            assert asked[-1] == path[:FFMPEG_MAX_URL], (length, len(asked[-1]))
    finally:
        server.shutdown()
