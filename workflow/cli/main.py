"""``vidflow``: run the pipeline locally from the same template and state machines."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from workflow import __version__
from workflow.cli import clip, events, invoke, live, run, sign, watch
from workflow.cli.common import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_USAGE,
    Printable,
    ProjectNotFoundError,
    hold_signals,
)
from workflow.local.build import BuildError
from workflow.local.faults import FaultSpecError
from workflow.local.parameters import ParameterError

# As a command killed by SIGPIPE exits (128 + 13), which Python's own handler prevents.
EXIT_PIPE = 141


class Terminated(BaseException):
    """SIGTERM, raised where the program is so that every ``finally`` runs: the stack
    stops, its workers and their ffmpeg end, scratch folders go."""


def _terminate(signum: int, frame: object) -> None:
    hold_signals()
    raise Terminated(signum)


def _interrupt(signum: int, frame: object) -> None:
    hold_signals()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one command, everything it prints shown, not acted on (``Printable``)."""
    streams = sys.stdout, sys.stderr
    if sys.stderr is None:
        # Started with its error output closed (`2>&-`): what it would say goes nowhere,
        # and the descriptor is not left for a socket or a log to take, where a worker's
        # or ffmpeg's error output would land. (Once, a command that succeeded exited 1.)
        # (workflow.cli gave fd 2 /dev/null already, before anything could take it.)
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    if sys.stdout is None:
        # Started with its output closed (`>&-`): what it is run for could not be printed.
        sys.stderr.write(
            "error: standard output is closed: vidflow prints its results there "
            "(>/dev/null drops them)\n"
        )
        return EXIT_USAGE
    sys.stdout, sys.stderr = Printable(sys.stdout), Printable(sys.stderr)
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`vidflow executions list | head -1`): nothing more to say,
        # and nothing to say it to. Later writes, at exit too, go nowhere.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    finally:
        sys.stdout, sys.stderr = streams


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.project is not None:
        os.environ["VIDFLOW_ROOT"] = str(args.project.resolve())
    # (SIGHUP: the terminal closed, the SSH session dropped; it ended the command where it
    # was, leaving a half-copied folder beside --out and the stack's scratch)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where ignored
        signal.signal(signal.SIGINT, _interrupt)
    try:
        status: int = args.run(args)
        return status
    except KeyboardInterrupt:
        return _interrupted(130)
    except Terminated as stopped:
        return _interrupted(128 + stopped.args[0])
    except BrokenPipeError:
        raise  # main's to answer, as for one while the command line is read
    except FaultSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ProjectNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ParameterError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except BuildError as exc:
        print(f"error: BuildError: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except (NoCredentialsError, ProfileNotFound, NoRegionError) as exc:
        # How this machine reaches AWS (--aws, --profile), not a fault of vidflow's.
        print(
            f"error: {type(exc).__name__}: {exc}: set up AWS access with .venv/bin/aws "
            "configure, or name a profile that has it (--profile, --region)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except (EndpointConnectionError, ConnectionClosedError) as exc:
        # What answered stopped answering mid-command (`vidflow up` ended, the network
        # went): not a fault of vidflow's.
        print(f"error: {exc}: is the stack still running?", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        if os.environ.get("VIDFLOW_DEBUG"):
            raise
        answered = _http_status(exc)
        if answered is not None:
            # Something answers at the endpoint, but not as the AWS APIs do.
            endpoint = getattr(args, "endpoint_url", None) or "the endpoint"
            print(
                f"error: {endpoint} answered HTTP {answered}, not as a vidflow stack does: give "
                "the endpoint `vidflow up` prints (its playback origin is the port after it)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        interrupt = _interrupt_behind(exc)
        if interrupt is not None:
            # An error while stopping after Ctrl-C or SIGTERM is part of that stop.
            return _interrupted(130 if isinstance(interrupt, KeyboardInterrupt) else 143)
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:
            # This machine's disk (full, over quota, read-only): the user's to free or fix.
            where = f": {exc.filename}" if exc.filename else ""
            print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
            return EXIT_FAILED
        print(f"error: {type(exc).__name__}: {exc} (VIDFLOW_DEBUG=1 shows where)", file=sys.stderr)
        return EXIT_INTERNAL


def _http_status(exc: Exception) -> str | None:
    """The bare HTTP status of a ClientError whose answer was no AWS error at all (botocore
    names such an error by its status: an HTML page, a web server's 501), else None. (S3
    answers a HEAD with no body, so its errors are named by status too: not those.)"""
    if not isinstance(exc, ClientError) or exc.operation_name.startswith("Head"):
        return None
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code if code.isdigit() else None


# A write this machine refused for want of room, or on a file system mounted read-only.
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The Ctrl-C or SIGTERM ``exc`` was raised while handling, if any."""
    seen: BaseException | None = exc.__context__
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt | Terminated):
            return seen
        seen = seen.__context__
    return None


def _interrupted(status: int) -> int:
    """Say why the command stopped, exit 128 + signal. (A progress display has ended its
    own line by now.)"""
    print("interrupted", file=sys.stderr)
    return status


def _parser() -> argparse.ArgumentParser:
    """The command line: each subcommand, added by the module that carries it out, sets
    ``run``, the function that does."""
    parser = argparse.ArgumentParser(prog="vidflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vidflow {__version__}")
    parser.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help="the vidflow project to run (sam-template.yaml, lambdas/, layers/, statemachine/); "
        "by default the checkout vidflow runs from, or the current folder",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        run.add_process,
        run.add_up,
        invoke.add_invoke,
        invoke.add_redrive,
        live.add_live,
        clip.add_clip,
        watch.add_console,
        watch.add_executions,
        events.add_events,
        sign.add_sign,
        run.add_demo,
    ):
        add(commands)
    return parser


def command() -> NoReturn:
    """The ``vidflow`` command: ``main``, then out without the interpreter's teardown.

    When ``main`` returns, everything it started has stopped; what is left of a normal exit
    is CPython freeing every module's objects (moto's backends, botocore's models): 0.4-0.5 s
    after a ``vidflow process`` job, measured, on the user's wait. The exit handlers still
    run (logging's flush among them) and the output is flushed; then the process ends with
    ``main``'s status. A thread still running is waited for as usual.
    """
    status = main()
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # None where closed
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    command()
