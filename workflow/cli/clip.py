"""``vidflow clip``: publish a span of a live stream (live or ended) as an on-demand asset.

It writes the clip request ``clips/<stream>/<name>.json`` to the running stack's ingest
bucket, as an app would on AWS, and follows the execution that request starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from workflow.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    endpoint_url,
    engine_options,
    failed_execution,
    local_stack,
    no_stack,
    positive_seconds,
    reachable,
)

if TYPE_CHECKING:
    from workflow.cli.common import Commands


def add_clip(commands: Commands) -> None:
    clip = commands.add_parser(
        "clip",
        help="publish a span of a live stream (live or ended) as an on-demand asset",
        description="Times are stream time: seconds from the stream's first segment, as its "
        "live playlist (and a player's currentTime) count them.",
    )
    clip.add_argument("stream", help="the stream id")
    clip.add_argument("--from", dest="start", type=float, required=True, help="start, seconds")
    clip.add_argument("--to", dest="end", type=float, required=True, help="end, seconds")
    clip.add_argument("--name", help="the clip's name: 1 to 22 letters, digits, - _")
    clip.add_argument(
        "--timeout", type=positive_seconds, default=300.0, help="seconds to wait for the clip (300)"
    )
    clip.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        default="http://127.0.0.1:4566",
        help="the running stack (vidflow up's)",
    )
    engine_options(clip)
    clip.set_defaults(run=make_clip)


def default_name(start: float, end: float) -> str:
    """``61.5`` to ``68.8`` is ``t61_500-68_800``."""
    return f"t{start:.3f}-{end:.3f}".replace(".", "_")


def make_clip(args: argparse.Namespace) -> int:
    """``vidflow clip``: ask the running stack for the clip and wait for its asset."""
    import boto3

    from workflow.errors import ClipRequestError
    from workflow.live.clip import ClipRequest
    from workflow.live.paths import clip_execution_name, is_stream_id, parse_clip_key
    from workflow.local.engine import use_local_stack

    name = args.name or default_name(args.start, args.end)
    clip = parse_clip_key(f"clips/{args.stream}/{name}.json")
    body = json.dumps({"from": args.start, "to": args.end}).encode()
    try:
        ClipRequest.parse(body)
    except ClipRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if clip is None:
        takes = "letters, digits, - or _"
        if not is_stream_id(args.stream):
            said = f"the stream id {args.stream!r:.60} is not one: it takes 1 to 48 {takes}"
        elif args.name:
            said = f"the clip name {name!r:.60} is not one: it takes 1 to 22 {takes}"
        else:
            said = f"the clip name made of the span, {name}, is longer: give --name"
        print(f"error: {said}", file=sys.stderr)
        return EXIT_USAGE
    if not reachable(args.endpoint_url):
        return no_stack(args.endpoint_url)
    stack = local_stack(args)
    outputs = stack.outputs()
    use_local_stack(args.endpoint_url, stack.region)
    put = boto3.client("s3").put_object(
        Bucket=outputs["IngestBucketName"], Key=clip.request_key, Body=body
    )
    machine = outputs["ClipStateMachineArn"]
    execution = (
        machine.replace(":stateMachine:", ":execution:")
        + ":"
        + clip_execution_name(clip, put["ETag"], put.get("VersionId"))
    )
    print(f"asked for {clip.request_key}; following {execution}", file=sys.stderr)
    described = _follow(boto3.client("stepfunctions"), execution, args.timeout)
    if described is None:
        print(
            f"error: the clip was not done {args.timeout:g} s after it was asked for",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if described["status"] != "SUCCEEDED":
        print(failed_execution(described.get("error"), described.get("cause")), file=sys.stderr)
        return EXIT_FAILED
    result = json.loads(described["output"])
    print(
        json.dumps({**result, "master": f"s3://{outputs['OutputBucketName']}/{result['master']}"})
    )
    return 0


def _follow(sfn: Any, execution: str, timeout: float) -> dict[str, Any] | None:
    """The execution once it has finished; None if it has not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        except sfn.exceptions.ExecutionDoesNotExist:
            described = {"status": "PENDING"}  # its S3 event is still on its way
        if described["status"] not in ("PENDING", "RUNNING"):
            return described
        time.sleep(0.5)
    return None
