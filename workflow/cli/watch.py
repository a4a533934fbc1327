"""``vidflow console`` and ``executions``: watch a stack's executions (local, or deployed with
``--aws``) in the browser or the terminal."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from workflow.cli.common import (
    EXIT_USAGE,
    endpoint_url,
    engine_options,
    engine_parameters,
    function_log,
    monitored_stack,
    stack_ports_free,
    start_engine,
    tcp_port,
    wait_until_stopped,
)

if TYPE_CHECKING:
    from workflow.cli.common import Commands


def add_console(commands: Commands) -> None:
    console = commands.add_parser(
        "console", help="a web console for the stack's executions (local, or --aws)"
    )
    console.add_argument("--port", type=tcp_port, default=8080, help="on 127.0.0.1 (8080)")
    monitor_options(console)
    console.set_defaults(run=serve_console)


def add_executions(commands: Commands) -> None:
    executions = commands.add_parser("executions", help="the stack's executions in the terminal")
    verbs = executions.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="newest first")
    listing.add_argument(
        "--status", choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    )
    monitor_options(listing)
    for verb, text in (
        ("show", "states, progress, error, manifest and cost of one execution"),
        ("watch", "follow one execution until it ends (exit 1 unless it succeeded)"),
        ("history", "every event of one execution"),
    ):
        one = verbs.add_parser(verb, help=text)
        one.add_argument("execution", help="its name or ARN")
        monitor_options(one)
    executions.set_defaults(run=show_executions)


def monitor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        default="http://127.0.0.1:4566",
        help="the local stack (vidflow up's); ignored with --aws",
    )
    parser.add_argument("--aws", action="store_true", help="read a deployed stack instead")
    parser.add_argument("--profile", help="with --aws: the AWS profile")
    parser.add_argument("--region", help="with --aws: the region (default: the profile's)")
    parser.add_argument("--stack-name", default="vidflow", help="with --aws: the stack's name")
    engine_options(parser)


def _monitor(args: argparse.Namespace) -> Any:
    """A Monitor over the deployed stack (--aws) or the local one, or None if none runs."""
    from workflow.cli.billing import VodBilling
    from workflow.cli.monitor import Monitor
    from workflow.keys.service import PlaybackSecret

    found = monitored_stack(args)
    if found is None:
        return None
    stack, client = found
    outputs = stack.outputs()
    return Monitor(
        sfn=client("stepfunctions"),
        s3=client("s3"),
        stack=stack.name,
        output_bucket=outputs["OutputBucketName"],
        billing=VodBilling.from_stack(stack),
        logs=client("logs"),
        function_log_group=stack.function_log_group(),
        playback=PlaybackSecret(client("secretsmanager"), outputs["PlaybackSecretName"]),
    )


def serve_console(args: argparse.Namespace) -> int:
    """``vidflow console``: serve the page until interrupted; start a stack if none runs."""
    from workflow.cli.console import ConsoleServer

    engine = None
    monitor = _monitor(args)
    if monitor is None:
        port = urllib.parse.urlsplit(args.endpoint_url).port or 4566
        if port > 65534:
            said = f"a stack at port {port} leaves its playback origin none (it takes the next)"
            print(f"error: {said}; pick an --endpoint-url port from 1 to 65534", file=sys.stderr)
            return EXIT_USAGE
        if not stack_ports_free(port, "pick another --endpoint-url port"):
            return EXIT_USAGE
        print(f"no stack at {args.endpoint_url}: starting one", file=sys.stderr)
        log_file = function_log(port)
        engine = start_engine(port, engine_parameters(args), log_file)
        print(json.dumps(engine.endpoints.to_dict()), flush=True)
        monitor = _monitor(args)
    try:
        console = ConsoleServer(monitor, args.port).start()
    except OSError:
        if engine is not None:
            engine.stop()  # the stack started for this console, which cannot be served
        print(f"error: port {args.port} on 127.0.0.1 is in use; pick another with --port",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    print(f"console: {console.url}", flush=True)
    wait_until_stopped()
    console.stop()
    if engine is not None:
        engine.stop()
    return 0


def show_executions(args: argparse.Namespace) -> int:
    """``vidflow executions list|show|watch|history``."""
    from workflow.cli import terminal

    monitor = _monitor(args)
    if monitor is None:
        print(f"error: no local stack at {args.endpoint_url}; start one with vidflow up",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    if args.verb == "list":
        return terminal.list_executions(monitor, args.status)
    arn = terminal.resolve(monitor, args.execution)
    if arn is None:
        print(f"error: no execution {args.execution!r}", file=sys.stderr)
        return EXIT_USAGE
    verb = {"show": terminal.show, "watch": terminal.watch, "history": terminal.history}
    try:
        result: int = verb[args.verb](monitor, arn)
    except ClientError as exc:
        # An ARN is taken as given: Step Functions says whether it names an execution.
        if exc.response.get("Error", {}).get("Code") not in ("ExecutionDoesNotExist", "InvalidArn"):
            raise
        print(f"error: no execution {args.execution!r}", file=sys.stderr)
        return EXIT_USAGE
    return result
