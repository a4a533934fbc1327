"""``vidflow``: run the pipeline locally from the same template and state machines."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.local.build import BuildError
from workflow.local.faults import FaultSpecError
from workflow.vod.jobs import UPLOAD_PREFIX, JobPaths, execution_arn, job_id

if TYPE_CHECKING:
    from workflow.cli.monitor import Monitor

    # What ``add_subparsers`` returns; each ``_add_*`` adds one subcommand to it.
    _Commands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def project_root() -> Path:
    """The folder holding ``sam-template.yaml``: ``$VIDFLOW_ROOT`` or this checkout."""
    configured = os.environ.get("VIDFLOW_ROOT")
    return Path(configured) if configured else Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except KeyboardInterrupt:
        return 130
    except FaultSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BuildError as exc:
        print(f"error: BuildError: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:
        if os.environ.get("VIDFLOW_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc} (VIDFLOW_DEBUG=1 shows where)", file=sys.stderr)
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    """The command line: each subcommand sets ``run``, the function that carries it out."""
    parser = argparse.ArgumentParser(prog="vidflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_process,
        _add_up,
        _add_invoke,
        _add_redrive,
        _add_live,
        _add_console,
        _add_executions,
        _add_demo,
    ):
        add(commands)
    return parser


def _add_process(commands: _Commands) -> None:
    process = commands.add_parser("process", help="process one video end to end on a local stack")
    process.add_argument("input", type=Path)
    process.add_argument("--out", type=Path, required=True, help="where the HLS asset is copied")
    _engine_options(process)
    _faults(process)
    process.set_defaults(
        run=lambda args: process_file(args.input, args.out, _parameters(args), _fault_spec(args))
    )


def _add_up(commands: _Commands) -> None:
    up = commands.add_parser("up", help="serve the local stack until interrupted")
    up.add_argument("--port", type=int, default=4566)
    _engine_options(up)
    _faults(up)
    up.set_defaults(run=lambda args: serve(args.port, _parameters(args), _fault_spec(args)))


def _add_invoke(commands: _Commands) -> None:
    invoke = commands.add_parser(
        "invoke", help="run one function with an event, like sam local invoke (no Docker)"
    )
    invoke.add_argument("function", help="logical id (ProbeFunction) or code folder (probe)")
    invoke.add_argument("--event", type=Path, required=True, help="a JSON event file")
    _target_options(invoke)
    _engine_options(invoke)
    invoke.set_defaults(run=invoke_function)


def _add_redrive(commands: _Commands) -> None:
    replay = commands.add_parser(
        "redrive", help="run again the upload and live events that failed every attempt"
    )
    _target_options(replay)
    _engine_options(replay)
    replay.set_defaults(run=redrive)


def _add_live(commands: _Commands) -> None:
    live = commands.add_parser("live", help="live streams on a local stack")
    live_commands = live.add_subparsers(dest="live_command", required=True)
    simulate = live_commands.add_parser(
        "simulate",
        help="cut a file into segments and push them like a venue encoder, printing latency",
    )
    simulate.add_argument("source", type=Path)
    simulate.add_argument("--stream", required=True, help="the stream id: letters, digits, - _")
    simulate.add_argument("--segment", type=float, default=4.0, help="segment seconds (4)")
    simulate.add_argument("--realtime", action="store_true", help="one segment per its duration")
    simulate.add_argument("--shuffle", action="store_true", help="upload slightly out of order")
    simulate.add_argument("--duplicates", action="store_true", help="upload some segments twice")
    simulate.add_argument("--seed", type=int, default=0, help="for --shuffle and --duplicates")
    simulate.add_argument("--height", type=int, help="scale the source to this height first")
    simulate.add_argument(
        "--endpoint-url",
        default="http://127.0.0.1:4566",
        help="the running stack (vidflow up's); if none answers, one is started for the run",
    )
    _engine_options(simulate)
    simulate.set_defaults(run=simulate_live)


def _add_console(commands: _Commands) -> None:
    console = commands.add_parser(
        "console", help="a web console for the stack's executions (local, or --aws)"
    )
    console.add_argument("--port", type=int, default=8080, help="on 127.0.0.1 (8080)")
    _monitor_options(console)
    console.set_defaults(run=serve_console)


def _add_executions(commands: _Commands) -> None:
    executions = commands.add_parser("executions", help="the stack's executions in the terminal")
    verbs = executions.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="newest first")
    listing.add_argument(
        "--status", choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    )
    _monitor_options(listing)
    for verb, text in (
        ("show", "states, progress, error, manifest and cost of one execution"),
        ("watch", "follow one execution until it ends (exit 1 unless it succeeded)"),
        ("history", "every event of one execution"),
    ):
        one = verbs.add_parser(verb, help=text)
        one.add_argument("execution", help="its name or ARN")
        _monitor_options(one)
    executions.set_defaults(run=show_executions)


def _add_demo(commands: _Commands) -> None:
    demo = commands.add_parser("demo", help="process a generated 1080p clip")
    demo.add_argument("--out", type=Path, default=Path("demo-output"))
    _engine_options(demo)
    demo.set_defaults(run=lambda args: run_demo(args.out, _parameters(args)))


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        default="http://127.0.0.1:4566",
        help="the local stack to run against (default: vidflow up's)",
    )
    parser.add_argument("--profile", help="run against real AWS with this profile instead")
    parser.add_argument("--region", help="with --profile: the region (default: the profile's)")
    parser.add_argument(
        "--stack-name", default="vidflow", help="with --profile: the deployed stack's name"
    )


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, like sam deploy --parameter-overrides",
    )


def _faults(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="TARGET:KIND[:COUNT]",
        help="inject a fault into the local engine (see workflow/local/faults.py), e.g. "
        "transcode_chunk:kill or s3put:slowdown:2; also VIDFLOW_FAULTS",
    )


def _fault_spec(args: argparse.Namespace) -> str | None:
    return ",".join(args.fault) if args.fault else None


def _parameters(args: argparse.Namespace) -> dict[str, str]:
    values = {"MapMaxConcurrency": str(os.cpu_count() or 2)}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --parameter takes NAME=VALUE, got {item!r}")
        values[name] = value
    return values


def _start_engine(
    port: int, parameters: dict[str, str], log_file: Path, faults: str | None = None
) -> Any:
    from workflow.local.engine import LocalEngine

    engine = LocalEngine(
        project_root(), port=port, parameters=parameters, log_file=log_file, faults=faults
    )
    engine.start()
    return engine


def serve(port: int, parameters: dict[str, str], faults: str | None = None) -> int:
    """``vidflow up``: print the endpoints as one JSON line and serve until interrupted."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            print(
                f"error: port {port} on 127.0.0.1 is in use; pick another with --port",
                file=sys.stderr,
            )
            return EXIT_USAGE
    log_file = Path(tempfile.gettempdir()) / f"vidflow-{port}.log"
    engine = _start_engine(port, parameters, log_file, faults)
    print(json.dumps({**engine.endpoints.to_dict(), "function_log": str(log_file)}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    engine.stop()
    return 0


def process_file(
    source: Path, out: Path, parameters: dict[str, str], faults: str | None = None
) -> int:
    """``vidflow process``: upload like a user, follow the execution, copy the asset out."""
    if not source.is_file():
        print(f"error: no such file: {source}", file=sys.stderr)
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="vidflow-") as scratch:
        engine = _start_engine(0, parameters, Path(scratch) / "functions.log", faults)
        try:
            return _process_with(engine, source, out)
        finally:
            engine.stop()


def _process_with(engine: Any, source: Path, out: Path) -> int:
    from workflow.cli.billing import VodBilling
    from workflow.cli.monitor import Monitor

    endpoints = engine.endpoints
    s3, sfn = engine.client("s3"), engine.client("stepfunctions")
    key = f"{UPLOAD_PREFIX}{source.name}"
    began = time.monotonic()
    s3.upload_file(str(source), endpoints.ingest_bucket, key)
    etag = s3.head_object(Bucket=endpoints.ingest_bucket, Key=key)["ETag"]
    job = job_id(endpoints.ingest_bucket, key, etag)
    execution = execution_arn(endpoints.state_machine_arn, job)
    monitor = Monitor(
        sfn=sfn,
        s3=s3,
        stack=engine.stack.name,
        output_bucket=endpoints.output_bucket,
        billing=VodBilling.from_stack(engine.stack),
    )
    status = _follow(monitor, execution, job, began)
    if status["status"] != "SUCCEEDED":
        error = status.get("error") or "ExecutionFailed"
        cause = " ".join((status.get("cause") or status["status"].lower()).split())
        print(f"error: {error}: {cause}", file=sys.stderr)
        return EXIT_FAILED
    copied = _download(s3, endpoints.output_bucket, JobPaths(job).output_prefix, out)
    print(f"published {copied} files to {out} in {time.monotonic() - began:.1f} s", file=sys.stderr)
    print(out / "master.m3u8")
    return 0


def _follow(monitor: Monitor, arn: str, job: str, began: float) -> dict[str, Any]:
    """Wait for the execution, drawing its state and work-item progress on stderr."""
    sfn = monitor.sfn
    tty = sys.stderr.isatty()
    progress = _Progress(monitor, arn, job)
    last = ""
    while True:
        try:
            status = dict(sfn.describe_execution(executionArn=arn))
        except sfn.exceptions.ExecutionDoesNotExist:
            status = {"status": "STARTING"}
        line = progress.describe(status["status"])
        stamp = f"[{time.monotonic() - began:6.1f}s] "
        if tty:
            print(f"\r\033[K{stamp}{line}", end="", file=sys.stderr, flush=True)
        elif line != last:
            print(stamp + line, file=sys.stderr, flush=True)
        last = line
        if status["status"] not in ("STARTING", "RUNNING"):
            if tty:
                print(file=sys.stderr)
            return status
        time.sleep(1.0)


class _Progress:
    """One line about a running VOD execution: its state, and items done in the Map.

    Each refresh costs API calls on the same CPUs that transcode, so the history is
    read only while it can change the line: not while the Map has items left to do.
    """

    def __init__(self, monitor: Monitor, arn: str, job: str) -> None:
        self.monitor, self.arn, self.job = monitor, arn, job
        self.state = "starting"
        self.items_left = True

    def describe(self, status: str) -> str:
        if status == "STARTING":
            return "waiting for the upload event"
        if status != "RUNNING":
            return status.lower()
        map_state = self.monitor.billing.map_state
        if self.state != map_state or not self.items_left:
            self.state = self.monitor.current_state(self.arn) or "starting"
        if self.state != map_state:
            return self.state
        p = self.monitor.progress(self.job)
        self.items_left = len(p.done) < p.items
        also = "".join(f" + {name}" for name in p.others)
        plural = "s" if p.chunks != 1 else ""
        return (
            f"{map_state}: {len(p.done)}/{p.items} items "
            f"({p.chunks} chunk{plural} x {p.rungs} rungs{also})"
        )


def _download(s3: Any, bucket: str, prefix: str, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    paginator = s3.get_paginator("list_objects_v2")
    count = 0
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = out / item["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
            count += 1
    return count


def invoke_function(args: argparse.Namespace) -> int:
    """``vidflow invoke``: one handler, its template environment, one event, no Docker.

    Against a running ``vidflow up`` by default, or real AWS with ``--profile`` (the
    template is resolved for the deployed stack's name, account and region). Prints
    the function's result, or its error payload, as JSON on stdout.
    """
    from workflow.local.engine import built_runtime

    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read event {args.event}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    target = _target(args)
    if isinstance(target, int):
        return target
    stack, aws_env, _ = target
    if stack.find_function(args.function) is None:
        known = ", ".join(sorted(f.logical_id for f in stack.functions()))
        print(f"error: no function {args.function!r} in the template ({known})", file=sys.stderr)
        return EXIT_USAGE
    lambdas = built_runtime(stack, aws_env)
    try:
        result, error = lambdas.invoke(args.function, event)
    finally:
        lambdas.stop()
    if error is not None:
        print(json.dumps({k: v for k, v in error.items() if k != "stackTrace"}, indent=2))
        print(f"error: {error['errorType']}: {error['errorMessage']}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result, indent=2))
    return 0


def _target(args: argparse.Namespace) -> tuple[Any, dict[str, str], Any] | int:
    """The stack ``--profile`` names on AWS, or the local one at ``--endpoint-url``: its
    template resolved, the environment its functions run with, and a boto3 session for
    this process; or the exit status of saying why there is none."""
    import boto3

    from workflow.local.engine import (
        LOCAL_ACCESS_KEY_ID,
        LOCAL_SECRET_ACCESS_KEY,
        local_function_env,
    )
    from workflow.local.template import Stack

    if args.profile:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        account = session.client("sts").get_caller_identity()["Account"]
        stack = Stack(
            project_root(),
            name=args.stack_name,
            region=session.region_name,
            account=account,
            overrides=_parameters(args),
        )
        # The profile lives in the user's ~/.aws, found through HOME.
        return stack, {"AWS_PROFILE": args.profile, "HOME": str(Path.home())}, session
    if not _reachable(args.endpoint_url):
        print(
            f"error: no local stack at {args.endpoint_url}; start one with vidflow up",
            file=sys.stderr,
        )
        return EXIT_USAGE
    stack = Stack(project_root(), overrides=_parameters(args))
    session = boto3.Session(
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        region_name=stack.region,
    )
    return stack, local_function_env(args.endpoint_url), session


def redrive(args: argparse.Namespace) -> int:
    """``vidflow redrive``: run again each event that failed every asynchronous attempt.

    Reads the template's on-failure queues (``FailedEventsQueue``); each message names the
    function and the event. An event that succeeds now is deleted from the queue; one that
    fails again stays there (visible again after 15 minutes). Job and segment starts are
    idempotent, so an event that had in fact gone through starts nothing twice.
    """
    from workflow.local.engine import built_runtime

    target = _target(args)
    if isinstance(target, int):
        return target
    stack, aws_env, session = target
    endpoint = None if args.profile else args.endpoint_url
    sqs = session.client("sqs", endpoint_url=endpoint)
    lambdas = built_runtime(stack, aws_env)
    replayed = failed = 0
    try:
        for queue in stack.queues().values():
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            for message in _queued(sqs, url):
                name, error = _redrive_one(lambdas, json.loads(message["Body"]))
                if error is None:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    replayed += 1
                    print(f"redriven: {name}", flush=True)
                else:
                    failed += 1
                    print(f"failed again: {name}: {error}", flush=True)
    finally:
        lambdas.stop()
    print(f"{replayed} redriven, {failed} failed again")
    return 0 if failed == 0 else EXIT_FAILED


def _queued(sqs: Any, url: str) -> Iterator[dict[str, Any]]:
    """Every message in the queue, each hidden for 15 minutes once received."""
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=900
        ).get("Messages", [])
        if not messages:
            return
        yield from messages


def _redrive_one(lambdas: Any, record: dict[str, Any]) -> tuple[str, str | None]:
    """Invoke again the function of one on-failure record with its event: the function's
    name, and its error (``Type: message``) if it failed again."""
    function = record["requestContext"]["functionArn"].rsplit(":", 1)[0]
    _, error = lambdas.invoke(function, record["requestPayload"])
    failure = None if error is None else f"{error['errorType']}: {error['errorMessage']}"
    return function.rsplit(":", 1)[-1], failure


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
        ingest, output = _live_buckets(args, cleanup, scratch)
        s3 = boto3.client("s3")
        print(f"cutting {args.source} into {args.segment:g} s segments", file=sys.stderr)
        segments = venue.cut_segments(
            args.source,
            scratch / "segments",
            args.segment,
            binary=ffmpeg_binary(),
            height=args.height,
        )
        order = venue.delivery_order(
            len(segments), shuffle=args.shuffle, duplicates=args.duplicates, seed=args.seed
        )
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
            on_segment=lambda sequence, latency: _print_latency(sequence, latency, args.segment),
        )
    p50, p95 = report.percentile(50), report.percentile(95)
    recording = f"s3://{output}/live/{args.stream}/master.m3u8" if report.ended else "not closed"
    print(
        f"latency p50 {p50:.2f} s ({p50 / args.segment:.2f}x), p95 {p95:.2f} s "
        f"({p95 / args.segment:.2f}x); gaps {report.gaps or 'none'}; recording {recording}"
    )
    complete = len(report.latencies) == len(segments) and report.ended
    return 0 if complete else EXIT_FAILED


def _live_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with ``live simulate``'s arguments, if anything."""
    from workflow.live.paths import parse_live_key

    if not args.source.is_file():
        return f"no such file: {args.source}"
    if parse_live_key(f"live/{args.stream}/0.ts") is None:
        return "--stream takes 1 to 48 letters, digits, - or _"
    if not 0.5 <= args.segment <= 60:
        return "--segment must be 0.5 to 60 seconds"
    return None


def _live_buckets(
    args: argparse.Namespace, cleanup: contextlib.ExitStack, scratch: Path
) -> tuple[str, str]:
    """The ingest and output buckets of the stack at ``--endpoint-url``, or of one started
    for this run (stopped by ``cleanup``); boto3's default clients reach that stack."""
    from workflow.local.engine import use_local_stack
    from workflow.local.template import Stack

    if _reachable(args.endpoint_url):
        stack = Stack(project_root(), overrides=_parameters(args))
        outputs = stack.outputs()
        use_local_stack(args.endpoint_url, stack.region)
        return outputs["IngestBucketName"], outputs["OutputBucketName"]
    print(f"no stack at {args.endpoint_url}: starting one for this run", file=sys.stderr)
    engine = _start_engine(0, _parameters(args), scratch / "functions.log")
    cleanup.callback(engine.stop)
    return engine.endpoints.ingest_bucket, engine.endpoints.output_bucket


def _print_latency(sequence: int, latency: float, segment: float) -> None:
    print(
        f"segment {sequence:5d}  in every playlist {latency:6.2f} s after upload "
        f"({latency / segment:.2f}x segment)",
        flush=True,
    )


def _monitor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        default="http://127.0.0.1:4566",
        help="the local stack (vidflow up's); ignored with --aws",
    )
    parser.add_argument("--aws", action="store_true", help="read a deployed stack instead")
    parser.add_argument("--profile", help="with --aws: the AWS profile")
    parser.add_argument("--region", help="with --aws: the region (default: the profile's)")
    parser.add_argument("--stack-name", default="vidflow", help="with --aws: the stack's name")
    _engine_options(parser)


def _monitor(args: argparse.Namespace) -> Any:
    """A Monitor over the deployed stack (--aws) or the local one, or None if none runs."""
    import boto3

    from workflow.cli.billing import VodBilling
    from workflow.cli.monitor import Monitor
    from workflow.local.engine import use_local_stack
    from workflow.local.template import Stack

    if args.aws:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        account = session.client("sts").get_caller_identity()["Account"]
        stack = Stack(
            project_root(), name=args.stack_name, region=session.region_name, account=account
        )
        sfn, s3 = session.client("stepfunctions"), session.client("s3")
    else:
        if not _reachable(args.endpoint_url):
            return None
        stack = Stack(project_root(), overrides=_parameters(args))
        use_local_stack(args.endpoint_url, stack.region)
        sfn, s3 = boto3.client("stepfunctions"), boto3.client("s3")
    return Monitor(
        sfn=sfn,
        s3=s3,
        stack=stack.name,
        output_bucket=stack.outputs()["OutputBucketName"],
        billing=VodBilling.from_stack(stack),
    )


def serve_console(args: argparse.Namespace) -> int:
    """``vidflow console``: serve the page until interrupted; start a stack if none runs."""
    from workflow.cli.console import ConsoleServer

    engine = None
    monitor = _monitor(args)
    if monitor is None:
        print(f"no stack at {args.endpoint_url}: starting one", file=sys.stderr)
        port = urllib.parse.urlsplit(args.endpoint_url).port or 4566
        log_file = Path(tempfile.gettempdir()) / f"vidflow-{port}.log"
        engine = _start_engine(port, _parameters(args), log_file)
        print(json.dumps(engine.endpoints.to_dict()), flush=True)
        monitor = _monitor(args)
    try:
        console = ConsoleServer(monitor, args.port).start()
    except OSError:
        print(f"error: port {args.port} on 127.0.0.1 is in use; pick another with --port",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    print(f"console: {console.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
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
    result: int = verb[args.verb](monitor, arn)
    return result


def _reachable(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), 2):
            return True
    except OSError:
        return False


def run_demo(out: Path, parameters: dict[str, str]) -> int:
    """``vidflow demo``: generate a 24 s 1080p clip with audio and process it."""
    from workflow.local.binaries import ffmpeg_binary

    with tempfile.TemporaryDirectory(prefix="vidflow-demo-") as scratch:
        clip = Path(scratch) / "demo-1080p.mp4"
        subprocess.run(
            [
                ffmpeg_binary(),
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30:duration=24",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000:duration=24",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-g",
                "60",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
                str(clip),
            ],
            check=True,
        )
        print(f"processing a generated 24 s 1080p clip into {out}/", file=sys.stderr)
        return process_file(clip, out, parameters)


if __name__ == "__main__":
    sys.exit(main())
