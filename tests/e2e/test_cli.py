"""The ``vidflow`` command as a user runs it: separate processes, real sockets."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from tests.asset import read_manifest
from tests.stack import VIDFLOW, free_port, vidflow_up
from workflow.local.binaries import ffmpeg_binary
from workflow.vod.jobs import execution_arn, job_id


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIDFLOW, *args], capture_output=True, text=True, timeout=600)


def test_process_publishes_the_asset_and_prints_the_master(clip: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _run("process", str(clip("half_second")), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(out / "master.m3u8")
    assert (out / "master.m3u8").is_file() and (out / "manifest.json").is_file()
    assert "Traceback" not in done.stderr
    assert "succeeded" in done.stderr  # the progress display ends with the outcome


def _terminal() -> tuple[int, int]:
    """A pseudo-terminal 80 columns wide: the side a test reads, and the program's side."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return controller, terminal


TERMINAL_ENV = {**os.environ, "TERM": "xterm-256color"}


def _read_terminal(controller: int, until: bytes | None = None) -> bytes:
    """What a program writes to a terminal, until ``until`` appears or it closes its side."""
    written = b""
    with contextlib.suppress(OSError):  # Linux answers EIO once the other side is closed
        while (until is None or until not in written) and (chunk := os.read(controller, 65536)):
            written += chunk
    return written


def _plain(written: bytes) -> str:
    """Terminal output as text, without its escape codes."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", written.decode("utf-8", "replace"))


def test_process_on_a_terminal_draws_a_bar_and_ends_with_the_published_line(
    clip: Any, tmp_path: Path
) -> None:
    # GIVEN a terminal for vidflow's stderr
    controller, terminal = _terminal()
    out = tmp_path / "out"
    # WHEN a video is processed
    process = subprocess.Popen(
        [*VIDFLOW, "process", str(clip("h264_aac_2gop")), "--out", str(out)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, text=True,
        env=TERMINAL_ENV,
    )  # fmt: skip
    os.close(terminal)
    shown = _plain(_read_terminal(controller))
    os.close(controller)
    stdout = process.communicate(timeout=600)[0]
    # THEN the bar, redrawn in place, ends at the outcome and 100%, on a line of its own
    assert process.returncode == 0, shown
    *_, bar, published, end = shown.split("\r\n")
    assert re.fullmatch(r"\[ *[\d.]+s\] succeeded ━+ 100% *", bar.split("\r")[-1])
    # AND the published line comes after it, and the master's path on stdout
    assert re.fullmatch(rf"published \d+ files to {re.escape(str(out))} in [\d.]+ s", published)
    assert end == "" and stdout.strip() == str(out / "master.m3u8")


def test_process_rejects_bad_input_with_one_line_and_no_master(tmp_path: Path) -> None:
    source = tmp_path / "notes.mp4"
    source.write_text("not a video at all\n")
    out = tmp_path / "out"
    done = _run("process", str(source), "--out", str(out))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: NotAVideoError: the file is text, not a video"]
    assert "Traceback" not in done.stderr
    assert not (out / "master.m3u8").exists()


def test_the_track_bound_is_a_parameter_like_the_other_bounds(clip: Any, tmp_path: Path) -> None:
    # GIVEN a stack that accepts one track per upload, and a video with sound (two)
    out = tmp_path / "out"
    done = _run(
        "process", str(clip("half_second")), "--out", str(out),
        "--parameter", "MaxInputStreams=1",
    )  # fmt: skip
    # THEN the upload is refused by name, before any work, and nothing is published
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: InputTooLargeError: the file has 2 tracks; the limit is 1"]
    assert not (out / "master.m3u8").exists()


def test_captures_joined_minutes_apart_fail_in_probe_not_in_a_fan_out(tmp_path: Path) -> None:
    # GIVEN 4 s of MPEG-TS: two 2 s captures joined end to end, the second written
    # 600 s later, whose head and tail timestamps span 602 s (planned by time: 51 chunks
    # and an audio piece for every 120 s, most with nothing in them)
    parts = []
    for offset in (0, 600):
        part = tmp_path / f"{offset}.ts"
        subprocess.run(
            [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
             "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
             "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast",
             "-c:a", "aac", "-output_ts_offset", str(offset), str(part)],
            check=True,
        )  # fmt: skip
        parts.append(part.read_bytes())
    source = tmp_path / "joined.ts"
    source.write_bytes(b"".join(parts))
    # WHEN it is processed, THEN the job fails by the probe's name for it
    [error] = _refused_in_probe(source, tmp_path)
    assert error.startswith("error: UnsupportedInputError: the file spans 60")
    assert "timestamps jump" in error


def _refused_in_probe(source: Path, tmp_path: Path) -> list[str]:
    """The error lines of ``vidflow process`` of ``source``, once it failed with nothing
    published and no work item started (Probe refused it: no chunk's error precedes)."""
    out = tmp_path / "out"
    done = _run("process", str(source), "--out", str(out))
    assert done.returncode == 1 and not (out / "master.m3u8").exists()
    assert "video-0" not in done.stderr and "audio-0" not in done.stderr, done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def test_an_mp4_pausing_minutes_between_frames_fails_in_probe_not_in_a_fan_out(
    tmp_path: Path,
) -> None:
    # GIVEN 4 s of MP4 whose last 2 s are written 600 s after the first (51 chunks,
    # all but two with no frame in them)
    source = tmp_path / "hole.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=4",
         "-vf", "setpts='if(lt(N,50),PTS,PTS+600/TB)'", "-fps_mode", "passthrough",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", str(source)],
        check=True,
    )  # fmt: skip
    # WHEN it is processed, THEN the job fails by the probe's name for it
    assert _refused_in_probe(source, tmp_path) == [
        "error: UnsupportedInputError: the video has no frame for 600 s after 1.960 s "
        "(vidflow publishes pauses of up to 32 s between frames); upload each recording "
        "on its own"
    ]


def test_an_mp4_keyed_only_at_its_start_fails_in_probe_not_in_a_fan_out(tmp_path: Path) -> None:
    # GIVEN 150 s of 30 fps MP4 whose only keyframe is its first frame (every chunk of it
    # would decode from the file's start)
    source = tmp_path / "one-key.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30:duration=150",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "100000", "-keyint_min", "100000",
         "-sc_threshold", "0", str(source)],
        check=True,
    )  # fmt: skip
    # WHEN it is processed, THEN the job fails by the probe's name for it
    assert _refused_in_probe(source, tmp_path) == [
        "error: UnsupportedInputError: the video has no keyframe for 150 s after 0.000 s "
        "(vidflow takes keyframes up to 120 s apart here): re-encode it with a keyframe every "
        "few seconds (ffmpeg's -g, in frames: -g 60 at 30 fps)"
    ]


@pytest.mark.parametrize(
    ("parameter", "error"),
    [
        ("Packaging=dash", "error: parameter Packaging must be one of hls-ts, cmaf, got 'dash'"),
        ("Foo=1", "error: parameter Foo does not exist in the template"),
        ("segmentSeconds=2", "error: parameter segmentSeconds does not exist in the template"
         " (did you mean SegmentSeconds?)"),
        ("ThumbnailSeconds=-1", "error: parameter ThumbnailSeconds must be at least 0, got -1"),
        ("ThumbnailSeconds=0.5", "error: the functions would refuse this at cold start:"
         " ThumbnailSeconds must be 0 (no images) or 1 to 3600, got 0.5"),
        ("MapMaxConcurrency=many",
         "error: parameter MapMaxConcurrency must be a whole number from 1 to 10000,"
         " got 'many'"),
        ("MapMaxConcurrency=2.5",
         "error: parameter MapMaxConcurrency must be a whole number from 1 to 10000,"
         " got '2.5'"),
        ("Ladder=bogus", r"error: parameter Ladder must match ^\s*[0-9]+\s*:\s*[0-9]+\s*"
         r"(,\s*[0-9]+\s*:\s*[0-9]+\s*)*$, got 'bogus'"),
        ("Ladder=720:2800,720:1400", "error: the functions would refuse this at cold start:"
         " Ladder has more than one 720p rung"),
        ("ChunkSeconds=5", "error: the functions would refuse this at cold start: ChunkSeconds"
         " must be a positive multiple of SegmentSeconds, got 5.0 and 4.0"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["process", "up"])
def test_a_parameter_a_deploy_would_refuse_fails_before_anything_starts(
    clip: Any, tmp_path: Path, command: str, parameter: str, error: str
) -> None:
    # GIVEN a parameter CloudFormation, or the functions at cold start, would refuse
    out = tmp_path / "out"
    where = [str(clip("half_second")), "--out", str(out)] if command == "process" else []
    # WHEN a stack is asked for with it
    done = _run(command, *where, "--parameter", parameter)
    # THEN it is named in one line, usage-style, and no stack, job or output was started
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [error]
    assert done.stdout == ""
    assert not out.exists()


def test_process_names_a_missing_file(tmp_path: Path) -> None:
    done = _run("process", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: no such file: {tmp_path / 'nope.mp4'}"


def test_a_job_that_cannot_start_is_reported_not_waited_on(clip: Any, tmp_path: Path) -> None:
    # GIVEN a StartJob function that fails on every event
    out = tmp_path / "out"
    # WHEN a video is processed
    done = _run("process", str(clip("half_second")), "--out", str(out),
                "--fault", "start_job:permanent")  # fmt: skip
    # THEN process ends at once with the function's error, not after Lambda's retries
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: InjectedFaultError: StartJobFunction failed on the upload's event: "
        "injected permanent fault"
    ]
    assert "the job did not start" in done.stderr and not out.exists()


def test_version_and_every_positional_argument_say_what_they_are() -> None:
    from workflow import __version__

    assert _run("--version").stdout.strip() == f"vidflow {__version__}"
    for command in (["process"], ["invoke"], ["live", "simulate"], ["executions", "show"]):
        usage = _run(*command, "--help").stdout
        positional = usage.split("positional arguments:")[1].split("options:")[0]
        described = [line for line in positional.splitlines() if line.strip()]
        assert described and all(len(line.split()) > 1 for line in described), usage


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _left_by(tmp: Path) -> set[str]:
    """What a `vidflow` run with ``TMPDIR=tmp`` left: anything in that folder (scratch, the
    workers' own temporary folders) and any process whose ``TMPDIR`` is in it (workers, the
    ffmpeg they started), whatever else runs on the machine."""
    left = {str(path) for path in tmp.iterdir()}
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            for entry in (proc / "environ").read_bytes().split(b"\0"):
                if entry.startswith(b"TMPDIR=") and entry[7:].startswith(bytes(tmp)):
                    left.add(f"pid {proc.name}")
    return left


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A job long enough to be interrupted mid-transcode."""
    source = tmp_path_factory.mktemp("long") / "long.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=size=1280x720:rate=30:duration=40", "-c:v", "libx264", "-preset",
         "ultrafast", "-g", "60", str(source)],
        check=True,
    )  # fmt: skip
    return source


def _transcoding(
    video: Path, tmp_path: Path, scratch: Path
) -> tuple[subprocess.Popen[str], list[str]]:
    """``vidflow process video`` into ``tmp_path/out`` with its temporary files in
    ``scratch``, once its chunks encode; and what it said until then."""
    scratch.mkdir()
    process = subprocess.Popen(
        [*VIDFLOW, "process", str(video), "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        # As from a terminal: a test runner started in the background ignores SIGINT,
        # and its children would inherit that.
        preexec_fn=_interruptible,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "Transcode:" in line:
            break
    return process, seen


# (SIGHUP: the terminal closed, or the SSH session dropped)
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_an_interrupted_process_leaves_no_process_and_no_scratch(
    long_clip: Path, tmp_path: Path, signum: int, status: int
) -> None:
    # GIVEN a job long enough to be interrupted mid-transcode
    scratch = tmp_path / "tmp"
    process, seen = _transcoding(long_clip, tmp_path, scratch)
    # WHEN it is sent the signal while its chunks encode
    process.send_signal(signum)
    rest = process.communicate(timeout=120)[1]
    # THEN it says so in one line and exits 128 + the signal
    assert process.returncode == status, "".join(seen) + rest
    assert rest.splitlines()[-1] == "interrupted"
    # AND no worker, no ffmpeg, no scratch folder and no partial output is left
    assert _left_by(scratch) == set()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_process_interrupted_again_while_it_stops_still_leaves_nothing(
    long_clip: Path, tmp_path: Path, signum: int, status: int
) -> None:
    # GIVEN a job interrupted mid-transcode
    scratch = tmp_path / "tmp"
    process, _ = _transcoding(long_clip, tmp_path, scratch)
    process.send_signal(signum)
    # WHEN the user presses Ctrl-C (or the supervisor signals) again while it stops
    for _ in range(20):
        time.sleep(0.02)
        if process.poll() is not None:
            break
        process.send_signal(signum)
    rest = process.communicate(timeout=120)[1]
    # THEN it still says so in one line, exits 128 + the signal, and its stop was not cut
    # short: no worker, no ffmpeg, no scratch folder and no partial output is left
    assert process.returncode == status, rest
    assert rest.splitlines()[-1] == "interrupted"
    assert _left_by(scratch) == set()
    assert not (tmp_path / "out").exists()


def test_a_killed_process_leaves_no_worker_running_and_none_of_their_scratch(
    long_clip: Path, tmp_path: Path
) -> None:
    # GIVEN a job mid-transcode
    scratch = tmp_path / "tmp"
    process, _ = _transcoding(long_clip, tmp_path, scratch)
    # WHEN it is killed, with no chance to stop its stack (SIGKILL, the OOM killer)
    process.kill()
    process.wait(timeout=30)
    # THEN its workers and their ffmpeg end with it, taking their scratch folders along:
    # only the command's own scratch folder, which nothing could remove, is left
    own = {str(path) for path in scratch.glob("vidflow-*") if "Function-" not in path.name}
    deadline = time.monotonic() + 10
    while _left_by(scratch) != own and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _left_by(scratch)
    assert left == own, {p: sorted(os.listdir(p))[:10] if os.path.isdir(p) else p for p in left}


def test_an_interrupted_process_on_a_terminal_ends_its_bar_before_saying_so(
    long_clip: Path, tmp_path: Path
) -> None:
    # GIVEN `vidflow process` drawing its bar on a terminal, its chunks encoding
    controller, terminal = _terminal()
    process = subprocess.Popen(
        [*VIDFLOW, "process", str(long_clip), "--out", str(tmp_path / "out")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal,
        env=TERMINAL_ENV, preexec_fn=_interruptible,
    )  # fmt: skip
    os.close(terminal)
    written = _read_terminal(controller, until=b"Transcode:")
    # WHEN Ctrl-C is pressed
    process.send_signal(signal.SIGINT)
    written += _read_terminal(controller)
    os.close(controller)
    # THEN the bar's line is ended, and "interrupted" stands on a line of its own
    lines = _plain(written).split("\r\n")
    assert process.wait(timeout=120) == 130, lines
    assert lines[-2:] == ["interrupted", ""]
    assert re.fullmatch(r"\[ *[\d.]+s\] .*━.*", lines[-3].split("\r")[-1])


def test_process_names_a_folder_given_as_the_video(tmp_path: Path) -> None:
    done = _run("process", str(tmp_path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path} is a folder; process takes one video file"


def test_process_refuses_an_out_that_is_a_file_or_someone_elses_folder(
    clip: Any, tmp_path: Path
) -> None:
    # GIVEN an --out that is a file, and one that is a folder of other things
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8")
    for out, problem in (
        (notes, f"--out {notes} is a file; give a folder for the asset"),
        (
            photos,
            f"--out {photos} holds files that are not a vidflow asset; give an empty or new "
            "folder (a previous asset there is replaced)",
        ),
    ):
        # WHEN a video is processed into it
        done = _run("process", str(clip("half_second")), "--out", str(out))
        # THEN it is refused before any job, and nothing there changed
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == f"error: {problem}"
    assert notes.read_text() == "keep me\n"
    assert [p.name for p in photos.iterdir()] == ["cat.jpg"]


def test_process_refuses_what_it_cannot_do_before_any_job(clip: Any, tmp_path: Path) -> None:
    # GIVEN inputs and --out folders that no job could serve
    (tmp_path / "game.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    os.mkfifo(tmp_path / "pipe.mp4")
    asset = tmp_path / "asset"
    asset.mkdir()
    (asset / "manifest.json").write_text('{"schema": "vidflow.manifest/2"}')
    inside = asset / "game.mp4"
    shutil.copy(clip("half_second"), inside)
    video = str(clip("half_second"))
    cases = [
        ((str(tmp_path / "game.en.srt"), "--out", str(tmp_path / "o1")),
         f"{tmp_path / 'game.en.srt'} is a sidecar (subtitles), not a video: "
         "upload it beside its video to a stack (vidflow up)"),
        ((str(tmp_path / "pipe.mp4"), "--out", str(tmp_path / "o2")),
         f"{tmp_path / 'pipe.mp4'} is not a regular file (a pipe, a device); process takes a "
         "video file"),
        ((str(inside), "--out", str(asset)),
         f"--out {asset} holds the input, and is replaced whole; give another folder"),
        ((video, "--out", "."),
         "--out . is the current folder or holds it; give a folder for the asset"),
        ((video, "--out", "/proc/vidflow-out"),
         "--out /proc/vidflow-out: cannot write to /proc: No such file or directory"),
        ((video, "--out", str(tmp_path / "o3"), "--parameter", "Encryption=aes-128"),
         "--parameter Encryption=aes-128: a protected asset needs its stack's key service, "
         "which stops with this command; run `vidflow up --parameter Encryption=aes-128` and "
         "upload to it instead (docs/local.md)"),
    ]  # fmt: skip
    for args, problem in cases:
        # WHEN a video is processed so
        done = subprocess.run(
            [*VIDFLOW, "process", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        # THEN it is refused at once, by name, and nothing was made or removed
        assert (done.returncode, done.stderr.strip()) == (2, f"error: {problem}"), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["asset", "game.en.srt", "pipe.mp4"]
    assert sorted(p.name for p in asset.iterdir()) == ["game.mp4", "manifest.json"]


def test_process_names_a_link_loop_as_the_video_or_the_out(clip: Any, tmp_path: Path) -> None:
    # GIVEN a link that leads to itself
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for args, problem in (
        ((str(clip("half_second")), "--out", str(loop)),
         f"--out {loop} is a link that leads to itself; give a folder for the asset"),
        ((str(loop), "--out", str(tmp_path / "out")),
         f"{loop} is a link to nothing (or to itself); process takes a video file"),
    ):  # fmt: skip
        # WHEN it is given as --out, or as the video
        done = _run("process", *args)
        # THEN it is refused by name as a mistake of the command line, not an internal error
        assert (done.returncode, done.stderr.strip()) == (2, f"error: {problem}")
    assert [p.name for p in tmp_path.iterdir()] == ["loop"]


def test_process_replaces_a_previous_asset_whole(clip: Any, tmp_path: Path) -> None:
    # GIVEN --out holds an earlier, larger asset: a rung this clip will not get
    out = tmp_path / "game"
    (out / "1080p").mkdir(parents=True)
    (out / "1080p" / "seg_00000.ts").write_bytes(b"old")
    (out / "manifest.json").write_text(
        '{"schema": "vidflow.manifest/2", "job_id": "old",'
        ' "renditions": [{"playlist": "1080p/index.m3u8"}]}'
    )
    # WHEN a new video is processed into it
    done = subprocess.run(
        [*VIDFLOW, "process", str(clip("half_second")), "--out", str(out)],
        capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(0o027),
    )  # fmt: skip
    # THEN the folder holds the new asset only, and nothing was left beside it
    assert done.returncode == 0, done.stderr
    assert not (out / "1080p").exists()
    assert read_manifest(out)["job_id"] != "old"
    # AND the folder is made as any under the user's umask (027 here): not mkdtemp's 0700
    assert out.stat().st_mode & 0o777 == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["game"]


def test_names_an_uploader_chose_reach_the_terminal_shown_not_acted_on() -> None:
    # GIVEN an upload whose key sets the terminal's title, recolours it, erases a line and
    # returns the carriage to overwrite its own row with a status it does not have
    key = "uploads/\x1b]0;OWNED\x07\x1b[31mred\x1b[0m\x1b[2K\rSUCCEEDED.mp4"
    with vidflow_up() as stack:
        ready = stack.ready
        stack.client("s3").put_object(Bucket=ready["ingest_bucket"], Key=key, Body=b"text\n")
        sfn, deadline, listed = stack.client("stepfunctions"), time.monotonic() + 120, []
        while time.monotonic() < deadline and [e["status"] for e in listed] != ["FAILED"]:
            time.sleep(0.5)
            listed = sfn.list_executions(stateMachineArn=ready["state_machine_arn"])["executions"]
        assert [e["status"] for e in listed] == ["FAILED"]
        endpoint = ("--endpoint-url", ready["endpoint_url"])
        # WHEN the user lists, shows and watches it, and reads the events
        outputs = [
            subprocess.run([*VIDFLOW, *command, *endpoint], capture_output=True, text=True)
            for command in (
                ["executions", "list"],
                ["executions", "show", listed[0]["name"]],
                ["executions", "watch", listed[0]["name"]],
                ["events"],
            )
        ]
        # (AND a reader that goes away, as `| head -1` does, ends the listing quietly)
        reading, writing = os.pipe()
        os.close(reading)
        piped = subprocess.run(
            [*VIDFLOW, "executions", "list", *endpoint], stdout=writing, stderr=subprocess.PIPE
        )
        os.close(writing)
        assert (piped.returncode, piped.stderr) == (141, b"")
    # THEN the list and the execution show the name, every control character as \xNN,
    # and no command sends one
    for done in outputs[:2]:
        assert "\\x1b]0;OWNED\\x07" in done.stdout, done.args
    for done in outputs:
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", done.stdout + done.stderr)


def test_up_serves_a_stack_any_s3_client_can_use(clip: Any) -> None:
    # GIVEN `vidflow up` running in its own process
    with vidflow_up() as stack:
        ready = stack.ready
        assert set(ready) >= {"endpoint_url", "ingest_bucket", "output_bucket", "region"}
        s3, sfn = stack.client("s3"), stack.client("stepfunctions")
        # AND `vidflow events --follow` watching it
        endpoint = ("--endpoint-url", ready["endpoint_url"])
        follower = subprocess.Popen(
            [*VIDFLOW, "events", "--follow", "--json", *endpoint],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # WHEN a client uploads to the ingest bucket
        s3.upload_file(str(clip("half_second")), ready["ingest_bucket"], "uploads/from-client.mp4")
        # THEN an execution appears and succeeds, and the asset is in the output bucket
        deadline = time.monotonic() + 300
        status = None
        while time.monotonic() < deadline and status != "SUCCEEDED":
            executions = sfn.list_executions(stateMachineArn=ready["state_machine_arn"])
            statuses = [e["status"] for e in executions["executions"]]
            status = statuses[0] if statuses else None
            assert status != "FAILED"
            time.sleep(0.5)
        assert status == "SUCCEEDED"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ready["output_bucket"])["Contents"]]
        assert any(k.endswith("/master.m3u8") for k in keys)
        # AND the follower printed the job's one event as it came
        assert follower.stdout is not None
        try:
            ready_to_read, _, _ = select.select([follower.stdout], [], [], 60)
            line = follower.stdout.readline() if ready_to_read else ""
        finally:
            follower.terminate()
            follower.wait(timeout=30)
        event = json.loads(line)
        assert event["detail-type"] == "Job Published"
        master = event["detail"]["urls"]["master"]
        assert master.removeprefix(f"s3://{ready['output_bucket']}/") in keys
        # AND `vidflow events` prints it as one line
        done = _run("events", *endpoint)
        assert done.returncode == 0, done.stderr
        [printed] = done.stdout.splitlines()
        assert "Job Published" in printed and master in printed
    # AND it stops cleanly on SIGTERM
    assert stack.process.returncode == 0


@pytest.mark.parametrize(("taken_at", "use"), [(0, "the endpoint"), (1, "the playback origin")])
def test_up_names_a_port_that_is_taken(taken_at: int, use: str) -> None:
    # GIVEN a port taken by another program: the one asked for, or the next (the origin's)
    port = free_port(next_free=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + taken_at))
        # WHEN `vidflow up --port` is asked for it
        done = _run("up", "--port", str(port))
    # THEN it starts nothing and names the port and what needed it
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: port {port + taken_at} on 127.0.0.1 ({use}) is in use; "
        "pick another with --port (the stack takes it and the next)"
    )


def test_up_killed_with_clients_connected_starts_again_on_its_port_at_once() -> None:
    # GIVEN `vidflow up` serving clients that keep their connections open (a player on
    # the origin, an SDK on the endpoint), as when a job runs
    port = free_port(next_free=True)
    command = [*VIDFLOW, "up", "--port", str(port)]
    up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert up.stdout is not None
    ready = json.loads(up.stdout.readline())
    clients = []
    for served in (port, port + 1):
        for _ in range(3):
            client = socket.create_connection(("127.0.0.1", served))
            client.sendall(b"GET / HTTP/1.1\r\nHost: local\r\n\r\n")
            client.recv(1024)
            clients.append(client)
    # WHEN it is killed, which leaves its side of each connection waiting out TIME_WAIT
    up.kill()
    up.wait(timeout=30)
    for client in clients:
        client.close()
    Path(ready["function_log"]).unlink()
    # THEN it starts again on the same port at once, as its servers can bind it
    again = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert again.stdout is not None and again.stderr is not None
        line = again.stdout.readline()
        assert line, again.stderr.read()
        assert json.loads(line)["endpoint_url"] == f"http://127.0.0.1:{port}"
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=60)
    Path(json.loads(line)["function_log"]).unlink()


def test_live_simulate_pushes_a_stream_to_a_running_stack_and_times_each_segment(
    clip: Any,
) -> None:
    # GIVEN `vidflow up` running, and a 10 s file; on a loaded two-core machine a segment
    # can take longer than the default gap wait (three segments) to transcode, so this
    # stack waits longer (gaps are tested in tests/e2e/test_live.py and test_live_venue.py)
    with vidflow_up("--parameter", "LiveGapSeconds=30") as stack:
        # WHEN a simulated venue encoder pushes it in 2 s segments, shuffled and duplicated
        done = _run(
            "live", "simulate", str(clip("mpegts_bframes")), "--stream", "cli-game",
            "--segment", "2", "--shuffle", "--duplicates", "--seed", "1",
            "--endpoint-url", stack.ready["endpoint_url"],
        )  # fmt: skip
        # THEN every segment is reported with its latency, and the stream closed
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        timed = [line for line in lines if line.startswith("segment ")]
        pushed = int(done.stderr.split("pushing ")[1].split()[0])
        assert pushed >= 5
        assert sorted(int(line.split()[1]) for line in timed) == list(range(pushed))
        assert "gaps none" in lines[-1] and "live/cli-game/master.m3u8" in lines[-1]
        # AND the recording is in the running stack's output bucket
        s3 = stack.client("s3")
        s3.head_object(Bucket=stack.ready["output_bucket"], Key="live/cli-game/master.m3u8")
        # AND the same stream pushed again is refused by name before any upload (every
        # segment was refused as reused, and the run before's playlists read as this
        # one's: it said every segment was in them, exit 0)
        again = _run(
            "live", "simulate", str(clip("mpegts_bframes")), "--stream", "cli-game",
            "--segment", "2", "--endpoint-url", stack.ready["endpoint_url"],
        )  # fmt: skip
        assert again.returncode == 2, again.stdout + again.stderr
        assert "a new broadcast needs a new stream name" in again.stderr
        assert "pushing" not in again.stderr
    assert "Traceback" not in done.stderr + again.stderr


def test_live_simulate_without_a_stack_says_the_recording_goes_with_its_own(clip: Any) -> None:
    # GIVEN no stack at the endpoint
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    # WHEN a stream is simulated against it (all its segments pushed at once to a stack
    # starting cold, on a machine shared with other tests: waited for, not made gaps)
    done = _run("live", "simulate", str(clip("mpegts_bframes")), "--stream", "own",
                "--segment", "2", "--endpoint-url", f"http://127.0.0.1:{port}",
                "--parameter", "LiveGapSeconds=120")  # fmt: skip
    # THEN it runs on a stack of its own, and says the recording ends with that stack
    assert done.returncode == 0, done.stderr
    assert "the recording goes with it when the run ends" in done.stderr
    assert "gaps none" in done.stdout.strip().splitlines()[-1]


def test_live_simulate_says_when_a_shuffle_cannot_change_the_order(clip: Any) -> None:
    # GIVEN a clip shorter than one segment, and no stack at the endpoint
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    # WHEN it is simulated with --shuffle
    done = _run("live", "simulate", str(clip("half_second")), "--stream", "one", "--segment", "2",
                "--shuffle", "--endpoint-url", f"http://127.0.0.1:{port}")  # fmt: skip
    # THEN the one segment goes out, and the run says it could not be shuffled
    assert done.returncode == 0, done.stderr
    assert "--shuffle: a stream of one segment cannot go out of order" in done.stderr
    assert "pushing 1 segments" in done.stderr


def test_live_simulate_names_a_file_without_video(clip: Any) -> None:
    # GIVEN a file with sound only / WHEN it is simulated / THEN it is refused as having
    # no video, before any stack starts (ffmpeg's last line said "Invalid argument")
    done = _run("live", "simulate", str(clip("audio_only")), "--stream", "one")
    assert done.returncode == 2
    assert done.stderr.strip().endswith("into segments: it has no video stream"), done.stderr


def test_live_simulate_names_a_bad_stream_id(clip: Any) -> None:
    done = _run("live", "simulate", str(clip("half_second")), "--stream", "a b")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --stream takes 1 to 48 letters, digits, - or _"


def test_an_installed_vidflow_runs_a_project_named_with_project(tmp_path: Path) -> None:
    # GIVEN vidflow installed from a wheel, not from this checkout
    root = Path(__file__).resolve().parents[2]
    source, site = tmp_path / "source", tmp_path / "site"
    skip = shutil.ignore_patterns("node_modules", "__pycache__")
    shutil.copytree(root / "workflow", source / "workflow", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
         str(source)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("VIDFLOW_ROOT", None)

    def installed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workflow.cli.main", *args],
            capture_output=True, text=True, env=env, cwd=elsewhere, timeout=120,
        )  # fmt: skip

    # WHEN it runs outside any project, THEN it says what it needs, in one line
    lost = installed("process", str(root / "README.md"), "--out", "out")
    assert lost.returncode == 2
    assert lost.stderr.startswith("error: no sam-template.yaml in ")
    assert lost.stderr.strip().endswith("run it in a clone or name one with --project DIR")
    # AND with --project it reads that project's template (a bad parameter is named by it)
    named = installed("--project", str(root), "process", str(root / "README.md"), "--out", "out",
                      "--parameter", "Packaging=dash")  # fmt: skip
    assert named.stderr.strip() == (
        "error: parameter Packaging must be one of hls-ts, cmaf, got 'dash'"
    )
    assert installed("--version").stdout.startswith("vidflow ")
    assert (site / "workflow" / "formats" / "manifest.schema.json").is_file()


def _failed_upload(engine: Any, key: str) -> str:
    """The name of the execution a text file uploaded as ``key`` ends in, once FAILED."""
    endpoints = engine.endpoints
    bucket = endpoints.ingest_bucket
    etag = engine.client("s3").put_object(Bucket=bucket, Key=key, Body=b"text\n")["ETag"]
    name = job_id(bucket, key, etag)
    arn = execution_arn(endpoints.state_machine_arn, name)
    sfn, deadline = engine.client("stepfunctions"), time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(sfn.exceptions.ExecutionDoesNotExist):
            if sfn.describe_execution(executionArn=arn)["status"] == "FAILED":
                return name
        time.sleep(0.5)
    raise AssertionError(f"no failed execution for {key}")


def test_a_locale_that_cannot_write_a_name_shows_it_escaped(engine: Any) -> None:
    # GIVEN an upload whose key has a character ISO-8859-1 has not
    name = _failed_upload(engine, "uploads/snow\u2603man.mp4")
    endpoint = ("--endpoint-url", engine.endpoints.endpoint_url)
    # WHEN the user lists and shows it in a terminal whose locale is ISO-8859-1
    latin = {**os.environ, "PYTHONIOENCODING": "iso8859-1"}
    outputs = [
        # (read as that terminal would: other executions' names may hold an "é")
        subprocess.run(
            [*VIDFLOW, *command, *endpoint], capture_output=True, encoding="iso8859-1", env=latin
        )
        for command in (["executions", "list"], ["executions", "show", name])
    ]
    # THEN each prints all it has, the snowman as \u2603, and exits as for any failed
    # execution (show: 1), not with exit status 3 part-way through
    for done, status in zip(outputs, (0, 1), strict=True):
        assert (done.returncode, done.stderr) == (status, ""), done.args
        assert "snow\\u2603man.mp4" in done.stdout, done.args


def test_a_closed_output_is_said_and_a_closed_error_output_is_no_failure(engine: Any) -> None:
    endpoint = ("--endpoint-url", engine.endpoints.endpoint_url)

    def run_with(closing: str) -> subprocess.CompletedProcess[str]:
        # As a shell runs `vidflow executions list >&-`: the descriptor itself closed.
        command = [*VIDFLOW, "executions", "list", *endpoint]
        script = f'exec "$@" {closing}'
        return subprocess.run(["sh", "-c", script, "sh", *command], capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    # WHEN the user runs a command with its error output closed / THEN it succeeds as it
    # would with it open, its results printed
    quiet = run_with("2>&-")
    assert (quiet.returncode, quiet.stdout) == (0, _run("executions", "list", *endpoint).stdout)
    # WHEN its output is closed / THEN one line says so, a usage error, not a traceback
    closed = run_with(">&-")
    assert (closed.returncode, closed.stdout) == (2, "")
    assert closed.stderr.startswith("error: standard output is closed")
    assert "Traceback" not in closed.stderr
