"""``vidflow``: run the pipeline locally from the same template and state machines."""

from __future__ import annotations

import argparse
import os
import sys

from workflow import __version__
from workflow.cli import invoke, live, run, watch
from workflow.cli.common import EXIT_INTERNAL, EXIT_USAGE
from workflow.local.build import BuildError
from workflow.local.faults import FaultSpecError
from workflow.local.parameters import ParameterError


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
    except ParameterError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
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
    """The command line: each subcommand, added by the module that carries it out, sets
    ``run``, the function that does."""
    parser = argparse.ArgumentParser(prog="vidflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vidflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        run.add_process,
        run.add_up,
        invoke.add_invoke,
        invoke.add_redrive,
        live.add_live,
        watch.add_console,
        watch.add_executions,
        run.add_demo,
    ):
        add(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
