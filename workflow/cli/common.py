"""What several ``vidflow`` subcommands share: exit codes, the project root, the options
that pick a stack or shape its engine, and starting a local engine."""

from __future__ import annotations

import argparse
import errno
import io
import math
import os
import re
import signal
import socket
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from workflow.local.template import Stack

    # What ``add_subparsers`` returns; each command module's ``add_*`` adds one subcommand to it.
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

# What a terminal acts on rather than shows: C0 controls but the newline and the tab, DEL
# and C1 controls (escape sequences, carriage returns, OSC 52 clipboard writes...).
_CONTROLS = {
    code: f"\\x{code:02x}"
    for code in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0))
}


class Printable(io.TextIOBase):
    """``raw``, with control characters shown as ``\\xNN`` instead of sent.

    Names and messages that come from uploads (keys, stream names, ffmpeg's words) reach
    the user's terminal in tables, errors and events; an uploader must not be able to
    recolour, rewrite or retitle it (a key holding ``\\r`` and ``SUCCEEDED`` would
    overwrite its own row). ``vidflow`` writes through this; what means to draw (the
    progress bar) writes to ``raw``.
    """

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        shown = text.translate(_CONTROLS)
        if getattr(self.raw, "errors", None) == "strict" and self.raw.encoding:
            # A locale that cannot write every name (ISO-8859-1, ASCII) shows what it
            # cannot as ``\\u2603``: a key with a snowman once ended `executions list`
            # part-way, with a UnicodeEncodeError and exit status 3.
            shown = shown.encode(self.raw.encoding, "backslashreplace").decode(self.raw.encoding)
        self.raw.write(shown)
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.raw.encoding


def function_log(port: int) -> Path:
    """Where a stack served on ``port`` writes its functions' log: in a folder of its own
    that only this user can enter (a fixed name in the shared /tmp could be taken first,
    or be a link, by another user of the machine)."""
    return Path(tempfile.mkdtemp(prefix=f"vidflow-{port}-")) / "functions.log"


EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class ProjectNotFoundError(Exception):
    """No vidflow project (``sam-template.yaml`` and what it names) where one was looked for."""


def stack_ports_free(port: int, pick: str = "pick another with --port") -> bool:
    """Whether a local stack may take ``port`` and the next; if not, say which and why.

    The playback origin takes the port after the endpoint's: `vidflow sign` and the
    README's URLs count on it, so a stack that would have to put it elsewhere starts not.
    """
    for wanted, use in ((port, "the endpoint"), (port + 1, "the playback origin")):
        with socket.socket() as probe:
            # As the servers bind (SO_REUSEADDR): a port left only with connections in
            # TIME_WAIT by the stack before, killed or stopped mid-job, is free to them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", wanted))
            except OSError as exc:
                # (a port below 1024 is refused to a user that is not root: not in use)
                why = "may not be bound by this user" if exc.errno == errno.EACCES else "is in use"
                print(
                    f"error: port {wanted} on 127.0.0.1 ({use}) {why}; "
                    f"{pick} (the stack takes it and the next)",
                    file=sys.stderr,
                )
                return False
    return True


def project_root() -> Path:
    """The project folder: ``--project`` (``$VIDFLOW_ROOT``), else the checkout this code
    runs from, else the current folder; the one that holds ``sam-template.yaml``."""
    configured = os.environ.get("VIDFLOW_ROOT")
    if configured:
        candidates = [Path(configured)]
    else:
        candidates = [Path(__file__).resolve().parents[2], Path.cwd()]
    for folder in candidates:
        if (folder / "sam-template.yaml").is_file():
            return folder.resolve()
    raise ProjectNotFoundError(
        f"no sam-template.yaml in {' or '.join(str(c) for c in candidates)}: vidflow runs "
        "the template, state machines and functions of a vidflow project; run it in a clone "
        "or name one with --project DIR"
    )


def target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        default=os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:4566",
        help="the local stack to run against (default: $AWS_ENDPOINT_URL, else vidflow up's)",
    )
    parser.add_argument("--profile", help="run against real AWS with this profile instead")
    parser.add_argument("--region", help="with --profile: the region (default: the profile's)")
    parser.add_argument(
        "--stack-name", default="vidflow", help="with --profile: the deployed stack's name"
    )


def engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, like sam deploy --parameter-overrides",
    )


def fault_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="TARGET:KIND[:COUNT]",
        help="inject a fault into the local engine (see workflow/local/faults.py), e.g. "
        "transcode_chunk:kill, s3put:slowdown:2 or s3get:reset; also VIDFLOW_FAULTS",
    )


def fault_spec(args: argparse.Namespace) -> str | None:
    return ",".join(args.fault) if args.fault else None


def engine_parameters(args: argparse.Namespace) -> dict[str, str]:
    # One chunk per CPU this process may use (a container's cpuset, not the host's count).
    values = {"MapMaxConcurrency": str(len(os.sched_getaffinity(0)))}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            from workflow.local.parameters import ParameterError

            raise ParameterError([f"--parameter takes NAME=VALUE, got {item!r}"])
        values[name] = value
    return values


def local_stack(args: argparse.Namespace) -> Stack:
    """The template as the running local stack resolves it, its parameters checked."""
    from workflow.local.parameters import check
    from workflow.local.template import Stack

    stack = Stack(project_root(), overrides=engine_parameters(args))
    check(stack)
    return stack


def monitored_stack(args: argparse.Namespace) -> tuple[Stack, Callable[..., Any]] | None:
    """The stack ``monitor_options`` name, and what makes its clients: with --aws the
    deployed one, through the profile and region; else the local one at --endpoint-url.
    None where no local stack answers."""
    import boto3

    from workflow.local.engine import use_local_stack
    from workflow.local.template import Stack

    if args.aws:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        account = session.client("sts").get_caller_identity()["Account"]
        stack = Stack(
            project_root(), name=args.stack_name, region=session.region_name, account=account
        )
        return stack, session.client
    if not reachable(args.endpoint_url):
        return None
    stack = local_stack(args)
    use_local_stack(args.endpoint_url, stack.region)
    return stack, boto3.client


def start_engine(
    port: int,
    parameters: dict[str, str],
    log_file: Path,
    faults: str | None = None,
    prewarm: Callable[[Stack], Sequence[str]] | None = None,
) -> Any:
    from workflow.local.engine import LocalEngine

    engine = LocalEngine(
        project_root(),
        port=port,
        parameters=parameters,
        log_file=log_file,
        faults=faults,
        prewarm=prewarm,
    )
    engine.start()
    return engine


_SPAN = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# The longest span a command takes (a token's life, how far back to read events).
MAX_SPAN_SECONDS = 3650 * 86400


def span_seconds(text: str) -> float:
    """argparse's type for a span: ``90s``, ``30m``, ``2h`` or ``7d`` in seconds, more than
    none and at most ten years."""
    matched = _SPAN.fullmatch(text.strip())
    if matched is None:
        raise argparse.ArgumentTypeError(f"takes a number and s, m, h or d, got {text!r}")
    seconds = float(matched[1]) * _SECONDS[matched[2]]
    if not 0 < seconds <= MAX_SPAN_SECONDS:
        raise argparse.ArgumentTypeError(f"takes more than 0 s and at most 3650d, got {text!r}")
    return seconds


def positive_seconds(text: str) -> float:
    """argparse's type for a wait in seconds: a finite number above 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"takes a number of seconds above 0, got {text!r}")
    return seconds


def _port(text: str, highest: int) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 1 <= number <= highest:
        raise argparse.ArgumentTypeError(f"takes a TCP port from 1 to {highest}, got {text!r}")
    return number


def endpoint_url(text: str) -> str:
    """argparse's type for ``--endpoint-url``: an http(s) URL with a host, and a port if
    any from 1 to 65535 (``http://[::1`` and ``:99999`` once ended a command with exit
    status 3, a ValueError from deep in it)."""
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise argparse.ArgumentTypeError(
            f"takes an http:// or https:// URL with a host (and a port from 1 to 65535), "
            f"got {text!r}"
        )
    return text


def tcp_port(text: str) -> int:
    """argparse's type for a port to listen on."""
    return _port(text, 65535)


def tcp_port_pair(text: str) -> int:
    """argparse's type for ``vidflow up``'s port: the playback origin takes the next one."""
    return _port(text, 65534)


def failed_execution(error: str | None, cause: str | None, where: str = "") -> str:
    """The ``error: Name[ in State]: cause`` line for an execution that failed: a cause
    that is a Lambda error payload (where RecordFailure itself failed) gives its message,
    never its stack trace."""
    from workflow.failures import describe_error

    name, line = describe_error({"Error": error or "ExecutionFailed", "Cause": cause or ""})
    return f"error: {name}{where}: {line}"


def no_stack(endpoint_url: str) -> int:
    """Say that no local stack answers at ``endpoint_url``; the exit code that goes with it."""
    print(f"error: no stack at {endpoint_url}: start `vidflow up` first", file=sys.stderr)
    return EXIT_FAILED


def reachable(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), 2):
            return True
    except OSError:
        return False


def wait_until_stopped() -> None:
    """Return on Ctrl-C or SIGTERM. The main thread, where Python runs signal handlers,
    wakes twice a second, so a handler it is owed runs: a ``vidflow up`` that waited on
    an ``Event`` its SIGTERM handler set once outlived the README tour's ``kill`` by 40
    minutes, its stack serving (why that handler never ran was not found)."""
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopped.append(signum))
    try:
        while not stopped:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    hold_signals()


def hold_signals() -> None:
    """Ignore Ctrl-C, SIGTERM and SIGHUP from the first on: what they began (the stack stopping,
    its workers killed, scratch folders removed) is not cut short by another. A second
    Ctrl-C, pressed as users do, once ended the stop part-way: workers and their
    scratch folders were left behind."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
