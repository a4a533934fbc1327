"""``vidflow live simulate``: be a venue encoder for one stream, on a running stack or one
started for the run, and time each segment until it is in every playlist."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from workflow.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    endpoint_url,
    engine_options,
    engine_parameters,
    local_stack,
    positive_seconds,
    reachable,
    start_engine,
)
from workflow.live.paths import END_MARKER, segment_sequence

if TYPE_CHECKING:
    from workflow.cli.common import Commands
    from workflow.cli.venue import Report


def add_live(commands: Commands) -> None:
    live = commands.add_parser("live", help="live streams on a local stack")
    live_commands = live.add_subparsers(dest="live_command", required=True)
    simulate = live_commands.add_parser(
        "simulate",
        help="cut a file into segments and push them like a venue encoder, printing latency",
    )
    simulate.add_argument("source", type=Path, help="a video file to cut into live segments")
    simulate.add_argument("--stream", required=True, help="the stream id: letters, digits, - _")
    simulate.add_argument("--segment", type=float, default=4.0, help="segment seconds (4)")
    simulate.add_argument("--realtime", action="store_true", help="one segment per its duration")
    simulate.add_argument("--shuffle", action="store_true", help="upload slightly out of order")
    simulate.add_argument("--duplicates", action="store_true", help="upload some segments twice")
    simulate.add_argument("--seed", type=int, default=0, help="for --shuffle and --duplicates")
    simulate.add_argument(
        "--height", type=_height, help="scale the source to this height first (even, 32 to 4320)"
    )
    simulate.add_argument(
        "--timeout",
        type=positive_seconds,
        default=180.0,
        help="seconds after the last upload to wait for every segment and the recording (180)",
    )
    simulate.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        default="http://127.0.0.1:4566",
        help="the running stack (vidflow up's); if none answers, one is started for the run",
    )
    engine_options(simulate)
    simulate.set_defaults(run=simulate_live)


def simulate_live(args: argparse.Namespace) -> int:
    """``vidflow live simulate``: be a venue encoder for one stream and time each segment."""
    import boto3

    from workflow.cli import venue
    from workflow.local.binaries import ffmpeg_binary

    problem = _live_usage_error(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.ExitStack() as cleanup:
        scratch = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="vidflow-live-")))
        # Cut first: a file ffmpeg cannot read is said before any stack starts.
        print(f"cutting {args.source} into {args.segment:g} s segments", file=sys.stderr)
        try:
            segments = venue.cut_segments(
                args.source,
                scratch / "segments",
                args.segment,
                binary=ffmpeg_binary(),
                height=args.height,
            )
        except subprocess.CalledProcessError as exc:
            said = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
            why = said[-1] if said else f"ffmpeg exited {exc.returncode}"
            if any("matches no streams" in line for line in said):
                why = "it has no video stream"  # (ffmpeg's last line: "Invalid argument")
            print(f"error: cannot cut {args.source} into segments: {why}", file=sys.stderr)
            return EXIT_USAGE
        ingest, output = _live_buckets(args, cleanup, scratch)
        s3 = boto3.client("s3")
        prefix = f"live/{args.stream}/"
        listed = s3.list_objects_v2(Bucket=ingest, Prefix=prefix).get("Contents", [])
        names = [item["Key"][len(prefix) :] for item in listed]
        if any(n == END_MARKER or segment_sequence(n) is not None for n in names):
            # Its numbers are taken: every segment would be refused (SegmentReusedError),
            # and the playlists of the run before read as this run's.
            print(
                f"error: stream {args.stream} has been pushed to on this stack already; a new "
                "broadcast needs a new stream name (--stream)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        order = venue.delivery_order(
            len(segments), shuffle=args.shuffle, duplicates=args.duplicates, seed=args.seed
        )
        if args.shuffle and len(segments) < 2:
            # (delivery_order moves at least one of two or more: only one stays in place)
            print("--shuffle: a stream of one segment cannot go out of order", file=sys.stderr)
        print(f"pushing {len(segments)} segments in the order {order}", file=sys.stderr)
        report = venue.push(
            s3,
            ingest_bucket=ingest,
            output_bucket=output,
            stream=args.stream,
            segments=segments,
            order=order,
            segment_seconds=args.segment,
            realtime=args.realtime,
            timeout=args.timeout,
            on_segment=lambda sequence, latency: _print_latency(sequence, latency, args.segment),
        )
    p50, p95 = report.percentile(50), report.percentile(95)
    master = f"s3://{output}/live/{args.stream}/master.m3u8"
    print(
        f"latency p50 {p50:.2f} s ({p50 / args.segment:.2f}x), p95 {p95:.2f} s "
        f"({p95 / args.segment:.2f}x); gaps {report.gaps or 'none'}; "
        f"recording {master if report.ended else 'not closed'}"
    )
    for line in stream_failures(report, master, args.timeout):
        print(f"error: {line}", file=sys.stderr)
    complete = len(report.latencies) == len(segments) and report.ended
    return 0 if complete else EXIT_FAILED


def _height(text: str) -> int:
    """argparse's type for a picture height the encoder can make (4:2:0: even)."""
    try:
        height = int(text)
    except ValueError:
        height = 0
    if not (32 <= height <= 4320 and height % 2 == 0):
        raise argparse.ArgumentTypeError(f"takes an even height from 32 to 4320, got {text!r}")
    return height


def stream_failures(report: Report, recording: str, timeout: float) -> list[str]:
    """Why a simulated stream is not complete, one line per reason: a segment not in
    every playlist, or no ``recording`` ``timeout`` seconds after the last upload."""
    failures = []
    if report.missing:
        failures.append(
            f"the playlists closed without segments {report.missing}: neither shown nor "
            "marked a gap"
        )
    if report.gaps:
        failures.append(
            f"segments {report.gaps} were marked gaps: the stack stopped waiting for them "
            "(the stream's gap_seconds) before they were transcoded"
        )
    if report.problem is not None:
        failures.append(report.problem)
    if not report.ended:
        failures.append(f"no recording {recording} {timeout:g} s after the last upload")
    return failures


def _live_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with ``live simulate``'s arguments, if anything."""
    from workflow.live.paths import parse_live_key

    if not args.source.is_file():
        return f"no such file: {args.source}"
    if parse_live_key(f"live/{args.stream}/0.ts") is None:
        return "--stream takes 1 to 48 letters, digits, - or _"
    if not 0.5 <= args.segment <= 60:
        return "--segment must be 0.5 to 60 seconds"
    if not args.timeout > 0:
        return "--timeout must be positive"
    return None


def _live_buckets(
    args: argparse.Namespace, cleanup: contextlib.ExitStack, scratch: Path
) -> tuple[str, str]:
    """The ingest and output buckets of the stack at ``--endpoint-url``, or of one started
    for this run (stopped by ``cleanup``); boto3's default clients reach that stack."""
    from workflow.local.engine import use_local_stack

    if reachable(args.endpoint_url):
        stack = local_stack(args)
        outputs = stack.outputs()
        use_local_stack(args.endpoint_url, stack.region)
        return outputs["IngestBucketName"], outputs["OutputBucketName"]
    print(
        f"no stack at {args.endpoint_url}: starting one for this run; the recording goes "
        "with it when the run ends (start `vidflow up` first to keep it)",
        file=sys.stderr,
    )
    engine = start_engine(0, engine_parameters(args), scratch / "functions.log")
    cleanup.callback(engine.stop)
    return engine.endpoints.ingest_bucket, engine.endpoints.output_bucket


def _print_latency(sequence: int, latency: float, segment: float) -> None:
    print(
        f"segment {sequence:5d}  in every playlist {latency:6.2f} s after upload "
        f"({latency / segment:.2f}x segment)",
        flush=True,
    )
